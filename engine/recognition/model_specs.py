"""Which models the service runs and where, decided without loading them.

Model directories and specs (a local directory is checked here, because funasr silently runs random
weights when `model.pt` is missing and silently drops hotwords without `seg_dict`), random-weight
detection, device and precision resolution, and the message for a failed load. Split from
engine/recognition/pipeline.py so these checks stay cheap and apart from the pipeline: torch is
imported only inside the functions that need it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from engine.errors import ModelError, ModelFilesMissingError

ASR_FILES = ("config.yaml", "model.pt", "tokens.json", "am.mvn", "seg_dict")
VAD_FILES = ("config.yaml", "model.pt", "am.mvn")
PUNC_FILES = ("config.yaml", "model.pt", "tokens.json")

_KIND_FILES = {"asr": ASR_FILES, "vad": VAD_FILES, "punc": PUNC_FILES}
_KIND_LABEL = {"asr": "ASR", "vad": "VAD", "punc": "Punctuation"}
_KIND_SETTING = {"asr": "SEACO_ASR_MODEL", "vad": "SEACO_VAD_MODEL", "punc": "SEACO_PUNC_MODEL"}

# What funasr does when a file is missing (it says nothing in most cases).
_MISSING_EFFECT = {
    "config.yaml": "funasr cannot tell which network to build",
    "model.pt": "funasr would silently run random weights",
    "tokens.json": "funasr cannot turn the model's output into text",
    "am.mvn": "funasr would silently skip feature normalisation and produce wrong text",
    "seg_dict": "funasr would silently turn every hotword into <unk>",
}


# --- model directories ----------------------------------------------------------------------
def validate_model_dir(path: Path, kind: str) -> None:
    """Check that a local model directory holds every file funasr would quietly do without.

    Raises `ModelFilesMissingError` naming the missing (or empty) files and the directory.
    """
    if kind not in _KIND_FILES:
        raise ValueError(f"kind must be one of {', '.join(_KIND_FILES)}, not {kind!r}")
    path = Path(path)
    label = _KIND_LABEL[kind]
    if not path.is_dir():
        raise ModelError(f"{label} model directory {path} does not exist or is not a directory.")
    missing = [name for name in _KIND_FILES[kind] if not (path / name).is_file()]
    problems = [f"lacks {name}: {_MISSING_EFFECT[name]}" for name in missing]
    model_pt = path / "model.pt"
    if "model.pt" not in missing and model_pt.stat().st_size == 0:
        problems.append(f"has an empty model.pt (0 bytes): {_MISSING_EFFECT['model.pt']}")
    if problems:
        raise ModelFilesMissingError(
            f"{label} model directory {path} {'; '.join(problems)}. A complete directory holds "
            f"{', '.join(_KIND_FILES[kind])}: copy the whole model directory, or set "
            f"{_KIND_SETTING[kind]} to a ModelScope id to download it."
        )


def _looks_like_path(spec: str) -> bool:
    if spec in (".", "..") or spec.startswith(("/", "./", "../", "~", ".\\", "..\\")):
        return True
    return Path(spec).expanduser().exists()


def resolve_model_spec(spec: str, kind: str) -> str:
    """Turn a setting into what `AutoModel` gets: a validated absolute directory or a hub id.

    Anything that looks like a path (absolute, `./`, `../`, `~`, or existing) must be an
    existing, complete model directory; it never falls through to a hub download the way a
    mistyped path does inside funasr. Anything else is a ModelScope id, returned unchanged.
    """
    if kind not in _KIND_FILES:
        raise ValueError(f"kind must be one of {', '.join(_KIND_FILES)}, not {kind!r}")
    spec = (spec or "").strip()
    label = _KIND_LABEL[kind]
    if not spec:
        raise ModelError(f"No {label} model is configured: set {_KIND_SETTING[kind]}.")
    if not _looks_like_path(spec):
        return spec
    path = Path(spec).expanduser().resolve()
    if not path.exists():
        raise ModelError(
            f"{label} model directory {path} ({_KIND_SETTING[kind]}={spec}): no such directory. "
            "Fix the path; a local path is never looked up on the model hub."
        )
    if not path.is_dir():
        raise ModelError(f"{label} model path {path} is a file, not a model directory.")
    validate_model_dir(path, kind)
    return str(path)


def is_random_weight_model(path_or_id: str) -> bool:
    """True for a directory built by `engine.recognition.random_models` (random weights, not a
    real model)."""
    try:
        path = Path(path_or_id).expanduser()
        if not path.is_dir():
            return False
        if (path / "RANDOM_WEIGHTS.txt").exists():
            return True
        conf = path / "configuration.json"
        if conf.is_file():
            data = json.loads(conf.read_text(encoding="utf-8"))
            return bool(isinstance(data, dict) and data.get("random_weights"))
    except (OSError, ValueError):
        return False
    return False


# --- device and precision -------------------------------------------------------------------
def resolve_device(setting: str) -> str:
    """`auto` -> `cuda:0` when CUDA is usable, else `cpu`; `cuda`/`cuda:N` must be usable."""
    import torch

    value = (setting or "auto").strip().lower()
    if value == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if value == "cpu":
        return "cpu"
    match = re.fullmatch(r"cuda(?::(\d+))?", value)
    if match is None:
        raise ModelError(f"Unknown device {setting!r}: use auto, cpu, cuda or cuda:N.")
    if not torch.cuda.is_available():
        raise ModelError(
            f"Device {setting!r} was requested but CUDA is not available to torch "
            f"{torch.__version__} (a CPU-only build, no GPU, or no driver). "
            "Set SEACO_DEVICE=cpu or auto, or install the CUDA build of torch."
        )
    index = int(match.group(1) or 0)
    if index >= torch.cuda.device_count():
        raise ModelError(
            f"Device {setting!r} does not exist: torch sees {torch.cuda.device_count()} GPU(s)."
        )
    return f"cuda:{index}"


def resolve_precision(precision: str, device: str) -> str:
    """Check SEACO_PRECISION against the resolved device; the torch autocast dtype's name."""
    import torch

    value = (precision or "fp32").strip().lower()
    if value not in ("fp32", "fp16", "bf16"):
        raise ModelError(f"Unknown precision {precision!r}: use fp32, fp16 or bf16.")
    if value == "fp16" and not device.startswith("cuda"):
        raise ModelError(
            f"SEACO_PRECISION=fp16 needs a CUDA device, but the models run on {device}. "
            "Use fp32 (or bf16) on CPU."
        )
    if value == "bf16" and device.startswith("cuda") and not torch.cuda.is_bf16_supported():
        raise ModelError(
            f"SEACO_PRECISION=bf16: {torch.cuda.get_device_name(torch.device(device))} does not "
            "support bfloat16. Use fp16 or fp32."
        )
    return value


# --- load failures --------------------------------------------------------------------------
def load_failure_message(specs: dict[str, str], exc: Exception) -> str:
    first_line = (str(exc).strip().splitlines() or [""])[0]
    detail = f"{type(exc).__name__}: {first_line}".strip()
    if len(detail) > 600:
        detail = detail[:600] + " ..."
    hub = {k: s for k, s in specs.items() if not Path(s).is_absolute()}
    named = [k for k, s in hub.items() if s in str(exc)] or list(hub)
    if named:
        parts = [
            f"could not download or load the {_KIND_LABEL[k]} model '{hub[k]}' from ModelScope "
            f"(no network, or not in the local cache); set {_KIND_SETTING[k]} to a local "
            "model directory"
            for k in named
        ]
        return "; ".join(parts) + f". funasr said: {detail}"
    listed = ", ".join(f"{_KIND_LABEL[k]} {s}" for k, s in specs.items())
    return (
        f"funasr could not load the models ({listed}): {detail}. Check that each directory "
        "is a complete FunASR model of the right kind and that their files are not corrupt."
    )
