from engine.ops.health import health, http_status
from engine.store import open_store


def test_no_worker_is_degraded_not_down(store, settings):
    report = health(store, settings)
    assert report["status"] == "degraded" and http_status(report) == 200
    assert report["checks"]["database"]["status"] == "ok"
    assert any("No worker" in r for r in report["reasons"])


def test_live_worker_with_models_is_ok_and_a_stale_one_is_not(store, settings):
    store.register_worker("w", 1, "host")
    store.heartbeat(
        "w",
        state="ready",
        lease_s=60,
        model_loaded=True,
        now=1_000_000,
        info={"random_weights": {"asr": False}},
    )
    assert health(store, settings, now=1_002_000)["status"] == "ok"
    late = health(store, settings, now=1_000_000 + 3_600_000)
    assert late["status"] == "degraded"
    assert "last heartbeat 3600 s ago" in late["checks"]["worker"]["detail"]


def test_model_error_is_reported_with_its_reason(store, settings):
    store.register_worker("w", 1, "host")
    store.heartbeat(
        "w",
        state="model_error",
        lease_s=60,
        model_loaded=False,
        model_error="ASR model directory /m lacks model.pt",
    )
    report = health(store, settings)
    assert report["status"] == "degraded"
    assert "lacks model.pt" in report["checks"]["model"]["detail"]


def test_random_weight_models_are_flagged(store, settings):
    store.register_worker("w", 1, "host")
    store.heartbeat(
        "w",
        state="ready",
        lease_s=60,
        model_loaded=True,
        info={"random_weights": {"asr": True, "vad": True}},
    )
    model = health(store, settings)["checks"]["model"]
    assert model["random_weights"] is True and "RANDOM-WEIGHT" in model["detail"]


def test_unreadable_database_is_down_with_503(settings):
    store = open_store(settings.db_path)
    store.close()
    settings.db_path.write_bytes(b"this is not a database" * 100)
    for suffix in ("-wal", "-shm"):
        settings.db_path.with_name(settings.db_path.name + suffix).unlink(missing_ok=True)
    report = health(store, settings)
    assert report["status"] == "down" and http_status(report) == 503
    assert "database could not be used" in report["checks"]["database"]["detail"]
