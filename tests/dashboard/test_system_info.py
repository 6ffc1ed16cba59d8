"""The System page's facts: the NVML seam (faked only there: no GPU here), the worker's
report from a real jobs.db, and the page through AppTest."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from streamlit.testing.v1 import AppTest

from engine import web_process
from engine.dashboard import system_info
from engine.ops import gpu

ROOT = Path(__file__).resolve().parents[2]


class NVMLError(Exception):
    pass


def fake_nvml(*, init_error: str | None = None, power: bool = True) -> SimpleNamespace:
    """A stand-in for the pynvml module with one 80 GB GPU (the shape pynvml returns)."""
    calls = []

    def init():
        calls.append("init")
        if init_error:
            raise NVMLError(init_error)

    def power_usage(_handle):
        if not power:
            raise NVMLError("Not Supported")
        return 312_500  # mW

    return SimpleNamespace(
        calls=calls,
        nvmlInit=init,
        nvmlShutdown=lambda: calls.append("shutdown"),
        nvmlDeviceGetCount=lambda: 1,
        nvmlDeviceGetHandleByIndex=lambda i: f"handle{i}",
        nvmlDeviceGetName=lambda _h: b"NVIDIA H100 80GB HBM3",
        nvmlDeviceGetMemoryInfo=lambda _h: SimpleNamespace(used=20 * 1024**3, total=80 * 1024**3),
        nvmlDeviceGetUtilizationRates=lambda _h: SimpleNamespace(gpu=57, memory=30),
        nvmlDeviceGetTemperature=lambda _h, _sensor: 61,
        nvmlDeviceGetPowerUsage=power_usage,
        nvmlSystemGetDriverVersion=lambda: "550.54.15",
        nvmlSystemGetCudaDriverVersion=lambda: 12040,
    )


def test_gpu_snapshot_from_nvml():
    nvml = fake_nvml()
    snap = gpu.read_gpus(nvml)
    assert not snap.cpu_mode
    (g,) = snap.gpus
    assert (g.name, g.utilization_pct, g.temperature_c, g.power_w) == (
        "NVIDIA H100 80GB HBM3",
        57.0,
        61.0,
        312.5,
    )
    assert g.memory_used_fraction == 0.25
    assert (snap.driver_version, snap.cuda_version) == ("550.54.15", "12.4")
    assert nvml.calls == ["init", "shutdown"]
    assert snap.summary() == "1 GPU(s): NVIDIA H100 80GB HBM3; driver 550.54.15, CUDA 12.4"


def test_unsupported_readings_are_none_not_errors():
    (g,) = gpu.read_gpus(fake_nvml(power=False)).gpus
    assert g.power_w is None and g.temperature_c == 61.0


def test_no_driver_is_cpu_mode_with_the_reason():
    snap = gpu.read_gpus(fake_nvml(init_error="Driver Not Loaded"))
    assert snap.cpu_mode and snap.summary() == "CPU mode: no NVIDIA driver (Driver Not Loaded)"


def test_this_machine_without_a_gpu_is_cpu_mode():
    snap = gpu.read_gpus()  # the real pynvml: no NVIDIA driver here
    assert snap.cpu_mode and snap.unavailable_reason


def test_gpu_rows_and_device_label():
    snap = gpu.read_gpus(fake_nvml())
    assert system_info.gpu_rows(snap)[0]["used %"] == 25.0
    assert system_info.gpu_rows(snap)[0]["memory total"] == "80.0 GB"
    worker = SimpleNamespace(device="cuda:0", info={"gpu": "NVIDIA H100 80GB HBM3"})
    assert system_info.device_label(worker, snap, "auto") == "cuda:0 (NVIDIA H100 80GB HBM3)"
    cpu = SimpleNamespace(device="cpu", info={})
    assert system_info.device_label(cpu, snap, "cpu") == "cpu (a GPU is present but not used)"
    assert system_info.device_label(cpu, gpu.GpuSnapshot(), "auto") == "cpu"
    assert "not known yet" in system_info.device_label(None, snap, "auto")


@pytest.mark.parametrize(
    ("n", "text"), [(None, "–"), (0, "0 B"), (1536, "1.5 KB"), (5 * 1024**3, "5.0 GB")]
)
def test_human_bytes(n, text):
    assert system_info.human_bytes(n) == text


WORKER_INFO = {
    "device": "cpu",
    "models": {"asr": "/models/seaco-asr", "vad": "/models/fsmn-vad", "punc": "iic/ct-punc"},
    "random_weights": {"asr": True, "vad": True, "punc": False},
    "parameters": {"asr": 220_000_000, "vad": 400_000, "punc": 0},
}


def test_worker_view_and_models_from_a_real_heartbeat(store, settings):
    assert system_info.worker_view(store) is None and system_info.model_rows(None) == []
    store.register_worker("w1", 4242, "box")
    store.heartbeat(
        "w1", state="ready", lease_s=30, model_loaded=True, info=WORKER_INFO, now=1_000_000
    )
    view = system_info.worker_view(store, now=1_004_500)
    assert (view.state, view.heartbeat_age_s, view.pid, view.device) == ("ready", 4.5, 4242, "cpu")
    rows = {r["model"]: r for r in system_info.model_rows(view)}
    assert rows["asr"]["random weights"] == "YES: test model"
    assert rows["asr"]["parameters"] == "220.0 M" and rows["punc"]["parameters"] == "–"
    assert rows["punc"]["random weights"] == "no"
    facts = system_info.overview(store, settings, gpu.GpuSnapshot(unavailable_reason="x"))
    assert facts["Device"] == "cpu" and facts["Test models"] == "YES"
    assert facts["Queue"] == f"0 / {settings.queue_max}"


def test_versions_come_from_package_metadata():
    versions = system_info.package_versions()
    assert versions["funasr"] == "1.4.16" and versions["torch"].startswith("2.13")
    assert set(versions) == set(system_info.PACKAGES)


def test_system_page_with_a_worker(data_env):
    store = web_process.store()
    store.register_worker("w1", 4242, "box")
    store.heartbeat("w1", state="ready", lease_s=30, model_loaded=True, info=WORKER_INFO)
    at = AppTest.from_file(str(ROOT / "pages" / "system.py"), default_timeout=30).run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Device"] == "cpu" and metrics["Test models"] == "YES"
    assert any("CPU mode" in i.value for i in at.info)
    assert any("Random-weight" in w.value for w in at.warning)
    models = next(d.value for d in at.dataframe if "model" in d.value.columns)
    assert list(models["model"]) == ["asr", "vad", "punc"]
