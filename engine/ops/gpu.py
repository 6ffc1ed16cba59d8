"""GPU facts from NVML (pynvml): the one seam between the service and the GPU driver.

Everything that wants to know about GPUs (the System page, telemetry, the GPU memory check)
calls `read_gpus()`. On a machine without an NVIDIA driver NVML cannot initialise; that is
normal, not an error: the snapshot then says "CPU mode" and why. Tests hand `read_gpus` a
stand-in for the pynvml module, because NVML cannot exist on a machine without a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType
from typing import Any


@dataclass(frozen=True)
class GpuReading:
    index: int
    name: str
    memory_used_bytes: int
    memory_total_bytes: int
    utilization_pct: float | None  # None when the driver does not report it
    temperature_c: float | None
    power_w: float | None

    @property
    def memory_used_fraction(self) -> float:
        return self.memory_used_bytes / self.memory_total_bytes if self.memory_total_bytes else 0


@dataclass(frozen=True)
class GpuSnapshot:
    gpus: list[GpuReading] = field(default_factory=list)
    driver_version: str | None = None
    cuda_version: str | None = None  # the highest CUDA version the driver supports
    unavailable_reason: str | None = None  # set when NVML gave nothing

    @property
    def cpu_mode(self) -> bool:
        return not self.gpus

    def summary(self) -> str:
        if self.cpu_mode:
            return f"CPU mode: {self.unavailable_reason or 'no GPU found'}"
        names = ", ".join(g.name for g in self.gpus)
        versions = f"driver {self.driver_version}, CUDA {self.cuda_version}"
        return f"{len(self.gpus)} GPU(s): {names}; {versions}"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _optional(fn, *args) -> Any:
    """Some readings are not supported on every board (power on many laptops): None."""
    try:
        return fn(*args)
    except Exception:  # pynvml raises NVMLError_NotSupported and friends
        return None


def _cuda_version(nvml: ModuleType) -> str | None:
    version = _optional(nvml.nvmlSystemGetCudaDriverVersion)
    if not version:
        return None
    return f"{version // 1000}.{(version % 1000) // 10}"  # 12040 -> "12.4"


def read_gpus(nvml: ModuleType | None = None) -> GpuSnapshot:
    """Every GPU's memory, utilisation, temperature and power, plus driver and CUDA versions.
    Never raises: without a usable NVML the snapshot says why (CPU mode)."""
    if nvml is None:
        try:
            import pynvml
        except ImportError as exc:
            return GpuSnapshot(unavailable_reason=f"pynvml is not installed ({exc})")
        nvml = pynvml
    try:
        nvml.nvmlInit()
    except Exception as exc:  # NVMLError_LibraryNotFound / DriverNotLoaded
        return GpuSnapshot(
            unavailable_reason=f"no NVIDIA driver ({_text(exc) or type(exc).__name__})"
        )
    try:
        gpus = []
        for index in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            memory = nvml.nvmlDeviceGetMemoryInfo(handle)
            utilization = _optional(nvml.nvmlDeviceGetUtilizationRates, handle)
            temperature = _optional(nvml.nvmlDeviceGetTemperature, handle, 0)  # 0 = GPU die
            power_mw = _optional(nvml.nvmlDeviceGetPowerUsage, handle)
            gpus.append(
                GpuReading(
                    index=index,
                    name=_text(nvml.nvmlDeviceGetName(handle)),
                    memory_used_bytes=int(memory.used),
                    memory_total_bytes=int(memory.total),
                    utilization_pct=None if utilization is None else float(utilization.gpu),
                    temperature_c=None if temperature is None else float(temperature),
                    power_w=None if power_mw is None else power_mw / 1000,
                )
            )
        return GpuSnapshot(
            gpus=gpus,
            driver_version=_text(_optional(nvml.nvmlSystemGetDriverVersion) or "") or None,
            cuda_version=_cuda_version(nvml),
            unavailable_reason=None if gpus else "NVML found no GPU",
        )
    except Exception as exc:  # a driver hiccup must not break a page
        return GpuSnapshot(unavailable_reason=f"NVML error: {_text(exc)}")
    finally:
        _optional(nvml.nvmlShutdown)
