"""The job store against real SQLite files: lifecycle, leases, poison, migrations, search,
and two real processes claiming at once."""

from __future__ import annotations

import multiprocessing
import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.errors import (
    DatabaseUnusableError,
    InvalidJobStateError,
    JobNotFoundError,
    QueueFullError,
)
from engine.jobs import JobState, Sentence
from engine.store import SCHEMA_DIR, JobFilter, JobResult, NewJob, Store, open_store

LATEST = max(int(p.name[:3]) for p in SCHEMA_DIR.glob("[0-9][0-9][0-9]_*.sql"))


def new_job(n: int = 0, **kw) -> NewJob:
    return NewJob(
        audio_sha256=f"{n:064x}",
        audio_path=f"audio/00/{n:064x}",
        audio_bytes=100,
        original_name=f"file{n}.wav",
        duration_ms=2000,
        **kw,
    )


def result(text: str = "今天天气很好。", sentences: list[Sentence] | None = None) -> JobResult:
    return JobResult(
        text=text,
        raw_text=text,
        confidence=0.8,
        sentences=sentences if sentences is not None else [Sentence(text, 0, 1500)],
        effective_hotwords=["科哥"],
        duration_ms=2000,
        decode_ms=5,
        inference_ms=50,
        model_info={"random_weights": True},
    )


def submit(store: Store, n: int = 0, queue_max: int = 100, **kw):
    return store.submit(new_job(n, **kw), queue_max=queue_max, max_attempts=3)


def test_wal_mode_and_migrations_are_idempotent(settings):
    store = open_store(settings.db_path)
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.schema_version() >= 1
    assert store.migrate() == []  # second run applies nothing
    assert open_store(settings.db_path).migrate() == []


def test_new_migration_applies_to_an_existing_database_and_keeps_its_rows(settings, tmp_path):
    job = submit(open_store(settings.db_path))
    schema = tmp_path / "schema"
    shutil.copytree(SCHEMA_DIR, schema)
    (schema / "900_add_note.sql").write_text("ALTER TABLE jobs ADD COLUMN note TEXT;\n")
    upgraded = Store(settings.db_path, schema_dir=schema)
    assert upgraded.migrate() == [900]
    assert upgraded.migrate() == []
    assert upgraded.get(job.id).original_name == "file0.wav"
    assert "note" in upgraded.db["jobs"].columns_dict


def test_a_failing_migration_leaves_nothing_half_applied(settings, tmp_path):
    open_store(settings.db_path)
    schema = tmp_path / "schema"
    shutil.copytree(SCHEMA_DIR, schema)
    (schema / "901_broken.sql").write_text(
        "CREATE TABLE half (x INTEGER);\nINSERT INTO no_such_table VALUES (1);\n"
    )
    broken = Store(settings.db_path, schema_dir=schema)
    with pytest.raises(DatabaseUnusableError, match="no_such_table") as failed:
        broken.migrate()
    assert "no such table" in str(failed.value.__cause__)  # SQLite's error, kept as the cause
    assert "half" not in broken.db.table_names()
    assert broken.schema_version() == LATEST


def test_lifecycle_queued_running_done(store):
    job = submit(store, hotwords=("科哥",))
    assert job.state is JobState.QUEUED and job.hotwords == ["科哥"]
    assert store.queue_position(job.id) == 1
    claimed = store.claim("w1", lease_s=30)
    assert claimed.id == job.id and claimed.state is JobState.RUNNING and claimed.attempts == 1
    assert claimed.queue_wait_ms is not None and claimed.queue_wait_ms >= 0
    assert store.queue_position(job.id) is None
    assert store.complete(job.id, "w1", 1, result())
    done = store.get(job.id)
    assert done.state is JobState.DONE and done.text == "今天天气很好。"
    assert done.sentences == [Sentence("今天天气很好。", 0, 1500)]
    assert done.effective_hotwords == ["科哥"] and 0 <= done.confidence <= 1
    assert done.total_ms is not None and done.rtf is not None and done.lease_owner is None


def test_claim_order_is_priority_then_oldest(store):
    low = submit(store, 1, priority=0)
    high = submit(store, 2, priority=20)
    mid_old = submit(store, 3, priority=10)
    mid_new = submit(store, 4, priority=10)
    order = [store.claim("w", 30).id for _ in range(4)]
    assert order == [high.id, mid_old.id, mid_new.id, low.id]
    assert store.claim("w", 30) is None


def test_queue_full_is_refused_and_nothing_is_added(store):
    for n in range(3):
        submit(store, n, queue_max=3)
    with pytest.raises(QueueFullError, match="queue is full"):
        submit(store, 9, queue_max=3)
    assert store.counts_by_state()["queued"] == 3


def test_result_written_only_by_the_lease_holder(store):
    job = submit(store)
    store.claim("w1", lease_s=1, now=1_000)
    # w1's lease expires, the job is re-queued and claimed by w2
    assert store.requeue_abandoned(now=10_000).requeued == [job.id]
    store.claim("w2", lease_s=30, now=10_001)
    assert not store.complete(job.id, "w1", 1, result("stale"))  # w1 wakes up late
    assert store.complete(job.id, "w2", 2, result("fresh"))
    assert store.get(job.id).text == "fresh"
    assert not store.complete(job.id, "w2", 2, result("again"))  # never twice
    assert store.get(job.id).text == "fresh"


def test_heartbeat_renews_the_lease(store):
    job = submit(store)
    store.register_worker("w1", 1, "host")
    store.claim("w1", lease_s=10, now=1_000)
    store.heartbeat(
        "w1", state="busy", lease_s=10, model_loaded=True, current_job_id=job.id, now=9_000
    )
    assert store.requeue_abandoned(now=15_000).requeued == []  # lease now ends at 19 000
    assert store.requeue_abandoned(now=19_001).requeued == [job.id]


def test_poison_after_max_attempts(store):
    job = submit(store)
    now = 0
    for attempt in range(1, 4):
        claimed = store.claim("w", lease_s=1, now=now)
        assert claimed.attempts == attempt
        now += 5_000
        recovery = store.requeue_abandoned(now=now)
    assert recovery.poisoned == [job.id]
    failed = store.get(job.id)
    assert failed.state is JobState.FAILED and failed.error_class == "PoisonJob"
    assert "3 times" in failed.error


def test_release_puts_the_job_back_without_costing_an_attempt(store):
    job = submit(store)
    store.claim("w", 30)
    assert store.release(job.id, "w")
    again = store.get(job.id)
    assert again.state is JobState.QUEUED and again.attempts == 0


def test_fail_records_the_reason(store):
    job = submit(store)
    store.claim("w", 30)
    assert store.fail(job.id, "w", 1, "The file is empty (0 bytes).", "EmptyAudioError")
    failed = store.get(job.id)
    assert failed.state is JobState.FAILED and failed.error.startswith("The file is empty")


def test_cancel_queued_running_and_finished(store):
    queued = submit(store, 1)
    assert store.cancel(queued.id).state is JobState.CANCELLED
    running = submit(store, 2)
    store.claim("w", 30)
    assert store.cancel(running.id).cancel_requested
    assert not store.complete(running.id, "w", 1, result())  # the worker's result is dropped
    assert store.get(running.id).state is JobState.CANCELLED
    with pytest.raises(InvalidJobStateError, match="already cancelled"):
        store.cancel(running.id)
    with pytest.raises(JobNotFoundError):
        store.cancel(999_999)


def test_unknown_job(store):
    with pytest.raises(JobNotFoundError, match="no job 42"):
        store.get(42)


def test_full_text_search_finds_chinese_words_and_their_time(store):
    job = submit(store)
    store.claim("w", 30)
    store.complete(
        job.id,
        "w",
        1,
        result(
            "今天天气很好。我们去公园。",
            [Sentence("今天天气很好。", 0, 1500), Sentence("我们去公园。", 1600, 3000)],
        ),
    )
    hits = store.search("公园")
    assert [(h.job_id, h.sentence_idx, h.start_ms) for h in hits] == [(job.id, 1, 1600)]
    assert "【公】【园】" in hits[0].snippet or "【公园】" in hits[0].snippet
    assert store.search("天气 很好")[0].sentence_idx == 0
    assert store.search("火车") == []
    for nasty in ['"', "AND", "NEAR(", "*", "a OR", "'; DROP TABLE jobs; --", "", "   ", "()"]:
        store.search(nasty)  # never raises
    assert store.get(job.id).state is JobState.DONE


def _claimer(db_path: str, owner: str, start, out) -> None:
    store = Store(db_path)
    start.wait()
    got = []
    while (job := store.claim(owner, lease_s=60)) is not None:
        got.append(job.id)
        store.complete(job.id, owner, job.attempts, result())
    out.put(got)


def test_two_processes_claim_concurrently_without_double_claims(settings):
    store = open_store(settings.db_path)
    ids = {submit(store, n, queue_max=1000).id for n in range(200)}
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(target=_claimer, args=(str(settings.db_path), f"w{i}", start, out))
        for i in range(2)
    ]
    for p in procs:
        p.start()
    start.set()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    claimed = results[0] + results[1]
    assert sorted(claimed) == sorted(ids)  # every job exactly once, no "database is locked"
    assert store.counts_by_state()["done"] == 200


@given(query=st.text(max_size=40))
@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_no_search_query_raises(store, query):
    store.search(query)


def test_mean_processing_time_of_recent_jobs(store):
    assert store.mean_processing_s() is None
    for n, (start, end) in enumerate([(0, 2_000), (10_000, 14_000)]):
        job = submit(store, n)
        store.claim("w", 30, now=start)
        store.complete(job.id, "w", 1, result(), now=end)
    assert store.mean_processing_s() == 3.0


def test_filters_by_time_name_and_state_with_like_metacharacters_escaped(store):
    a = store.submit(new_job(1), queue_max=100, max_attempts=3, now=1_000)
    b = store.submit(
        NewJob(audio_sha256="b" * 64, audio_path="x", audio_bytes=1, original_name="100%_会议.wav"),
        queue_max=100,
        max_attempts=3,
        now=5_000,
    )
    assert [j.id for j in store.list_jobs(where=JobFilter(name_contains="%_"))] == [b.id]
    assert [j.id for j in store.list_jobs(where=JobFilter(name_contains="会议"))] == [b.id]
    assert store.count_jobs(where=JobFilter(name_contains="_")) == 1
    assert [j.id for j in store.list_jobs(where=JobFilter(submitted_to=5_000))] == [a.id]
    assert [j.id for j in store.list_jobs(where=JobFilter(submitted_from=5_000))] == [b.id]
    assert store.list_jobs(where=JobFilter(state="done")) == []
    assert store.list_jobs(limit=-5, offset=-1) == [] and len(store.list_jobs(offset=0)) == 2


def test_retry_requeues_failed_jobs_only(store):
    job = submit(store)
    store.claim("w", 30)
    store.fail(job.id, "w", 1, "broken", "CorruptAudioError")
    again = store.retry(job.id, queue_max=10)
    assert again.state is JobState.QUEUED and again.attempts == 0 and again.error is None
    with pytest.raises(InvalidJobStateError, match="only failed or cancelled"):
        store.retry(job.id, queue_max=10)


def test_default_hotwords_edited_in_the_store_win_over_the_environment(store, settings):
    from engine.hotwords import default_hotwords, save_default_hotwords

    assert default_hotwords(store, settings) == []
    assert save_default_hotwords(store, "科哥，Paraformer 科哥") == ["科哥", "Paraformer"]
    assert default_hotwords(store, settings) == ["科哥", "Paraformer"]
    assert store.batch_counts("none")["queued"] == 0 and store.database_bytes() > 0


def test_migration_004_rekeys_existing_search_rows_by_job(settings, tmp_path):
    """A database from before 004 (search rows with automatic rowids) keeps its search
    results, and re-completing or deleting a job afterwards touches only that job's rows."""
    old_schema = tmp_path / "schema-003"
    old_schema.mkdir()
    for path in SCHEMA_DIR.glob("00[123]_*.sql"):
        shutil.copy(path, old_schema)
    # today's submit() and claim() write 008's and 010's columns too; both only add columns,
    # so applying them early leaves what this test is about (004's search rows) as before 004
    for early in ("008", "010"):
        shutil.copy(next(SCHEMA_DIR.glob(f"{early}_*.sql")), old_schema)
    old = Store(settings.db_path, schema_dir=old_schema)
    old.migrate()
    for n in range(3):
        submit(old, n)
        job = old.claim("w", 30)
        with old._write() as conn:  # what the pre-004 code wrote: automatic rowids
            conn.execute(
                "UPDATE jobs SET state = 'done', text = ? WHERE id = ?", ("今天天气很好。", job.id)
            )
            conn.execute(
                "INSERT INTO transcript_fts (body, job_id, idx, start_ms) VALUES (?, ?, 0, 0)",
                ("今 天 天 气 很 好 。", job.id),
            )
    old.close()

    store = open_store(settings.db_path)
    assert store.schema_version() >= 4
    assert [h.job_id for h in store.search("天气")] == [3, 2, 1]  # newest job first
    rowids = [r[0] for r in store.conn.execute("SELECT rowid FROM transcript_fts ORDER BY rowid")]
    assert rowids == [n * (1 << 20) for n in (1, 2, 3)]

    store.delete_job(2)
    assert [h.job_id for h in store.search("天气")] == [3, 1]


def test_completing_again_replaces_only_that_jobs_search_rows(store):
    for n in range(2):
        submit(store, n)
        job = store.claim("w", 30)
        store.complete(
            job.id,
            "w",
            1,
            result(
                "今天天气很好。明天下雨。",
                [Sentence("今天天气很好。", 0, 1000), Sentence("明天下雨。", 1000, 2000)],
            ),
        )
    retried = store.get(1)
    with store._write() as conn:  # a second completion of job 1 (retry after a lost lease)
        conn.execute(
            "UPDATE jobs SET state = 'running', lease_owner = 'w', attempts = 2 WHERE id = ?",
            (retried.id,),
        )
    store.complete(1, "w", 2, result("下雨。", [Sentence("下雨。", 0, 900)]))
    assert [(h.job_id, h.sentence_idx) for h in store.search("下雨")] == [(2, 1), (1, 0)]
    assert [h.job_id for h in store.search("天气")] == [2]
