"""Settings, read once from `SEACO_*` environment variables and an optional `.env` file.

Everything configurable lives in `SETTINGS_DOC` so the README table, `seaco config` and the
parser cannot drift apart. Other modules receive a `Settings` value; none reads the
environment itself (starlette's habit: configuration in one place, plain values elsewhere).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path

from dotenv import dotenv_values

from engine.errors import ConfigError

PROD_ASR_MODEL = "iic/speech_seaco_paraformer_large_asr_nat-zh-cn-16k-common-vocab8404-pytorch"
PROD_VAD_MODEL = "iic/speech_fsmn_vad_zh-cn-16k-common-pytorch"
PROD_PUNC_MODEL = "iic/punc_ct-transformer_zh-cn-common-vocab272727-pytorch"

# name -> (default, description). The order is the README's order.
SETTINGS_DOC: dict[str, tuple[str, str]] = {
    "DATA_DIR": ("./data", "Holds jobs.db, uploaded audio, logs/ and tmp/."),
    "HOST": (
        "127.0.0.1",
        "Listen address. Loopback by default; set 0.0.0.0 to serve the network (see README).",
    ),
    "PORT": ("7860", "Listen port for the dashboard, /health and the API."),
    "ASR_MODEL": (PROD_ASR_MODEL, "SeACo-Paraformer: a ModelScope id or a local directory."),
    "VAD_MODEL": (PROD_VAD_MODEL, "FSMN-VAD: a ModelScope id or a local directory."),
    "PUNC_MODEL": (PROD_PUNC_MODEL, "CT-Transformer punctuation: a ModelScope id or a local dir."),
    "DEVICE": ("auto", "auto (CUDA when available), cuda, or cpu."),
    "NCPU": ("0", "Torch threads in the worker; 0 means all cores (at most 8)."),
    "BATCH_SIZE_S": ("300", "Seconds of audio decoded together by the ASR model."),
    "HOTWORDS": (
        "",
        "Default hotwords merged into every job (comma or space separated); the initial "
        "value of the list edited on the Hotwords page.",
    ),
    "QUEUE_MAX": ("20", "Queued jobs beyond which new submissions are refused (503)."),
    "MAX_UPLOAD_MB": ("512", "Largest accepted upload, in MB."),
    "MAX_DURATION_S": ("14400", "Longest accepted audio, in seconds (default 4 h)."),
    "LEASE_S": ("60", "A running job's lease; renewed by the worker's heartbeat."),
    "MAX_ATTEMPTS": ("3", "Claims before a job that keeps killing workers is failed as poison."),
    "HEARTBEAT_S": ("5", "Seconds between worker heartbeats."),
    "IDLE_POLL_MS": ("50", "How often an idle worker looks for new work, in ms."),
    "MODEL_RETRY_S": ("60", "Seconds between attempts to load a model that failed to load."),
    "API_TOKENS": ("", "Comma-separated bearer tokens for /api and /v1; empty means no auth."),
    "SYNC_TIMEOUT_S": ("300", "How long POST /v1/audio/transcriptions waits for its result."),
}
SECRET_SETTINGS = {"API_TOKENS"}


def _int(name: str, raw: str, minimum: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"SEACO_{name} must be a whole number, got {raw!r}.") from None
    if value < minimum:
        raise ConfigError(f"SEACO_{name} must be at least {minimum}, got {value}.")
    return value


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    host: str
    port: int
    asr_model: str
    vad_model: str
    punc_model: str
    device: str
    ncpu: int
    batch_size_s: int
    hotwords: str
    queue_max: int
    max_upload_mb: int
    max_duration_s: int
    lease_s: int
    max_attempts: int
    heartbeat_s: int
    idle_poll_ms: int
    model_retry_s: int
    api_tokens: str
    sync_timeout_s: int
    # where each value came from, for the System page: "env", ".env" or "default"
    sources: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def db_path(self) -> Path:
        return self.data_dir / "jobs.db"

    @property
    def audio_dir(self) -> Path:
        return self.data_dir / "audio"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def tmp_dir(self) -> Path:
        return self.data_dir / "tmp"

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024

    @property
    def torch_threads(self) -> int:
        return self.ncpu or min(os.cpu_count() or 1, 8)

    @property
    def token_list(self) -> list[str]:
        return [t.strip() for t in self.api_tokens.split(",") if t.strip()]

    def display_value(self, name: str) -> str:
        """A setting's value for pages and `seaco config`: secrets are masked."""
        value = str(getattr(self, name.lower()))
        if name in SECRET_SETTINGS and value:
            return f"({len(self.token_list)} set)"
        return value

    def ensure_dirs(self) -> None:
        for directory in (self.data_dir, self.audio_dir, self.log_dir, self.tmp_dir):
            directory.mkdir(parents=True, exist_ok=True)

    def as_env(self) -> dict[str, str]:
        """The settings as SEACO_* variables, to hand to child processes unchanged."""
        return {
            f"SEACO_{f.name.upper()}": str(getattr(self, f.name))
            for f in fields(self)
            if f.name != "sources"
        }


def load_settings(
    environ: dict[str, str] | None = None, env_file: str | Path | None = ".env"
) -> Settings:
    """Environment wins over `.env`, which wins over the defaults."""
    environ = dict(os.environ if environ is None else environ)
    file_values: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        file_values = {k: v for k, v in dotenv_values(env_file).items() if v is not None}

    raw: dict[str, str] = {}
    sources: dict[str, str] = {}
    for name, (default, _doc) in SETTINGS_DOC.items():
        key = f"SEACO_{name}"
        if key in environ:
            raw[name], sources[name] = environ[key], "env"
        elif key in file_values:
            raw[name], sources[name] = file_values[key], ".env"
        else:
            raw[name], sources[name] = default, "default"

    device = raw["DEVICE"].strip().lower()
    if device not in ("auto", "cuda", "cpu") and not device.startswith("cuda:"):
        raise ConfigError(f"SEACO_DEVICE must be auto, cuda or cpu, got {raw['DEVICE']!r}.")
    port = _int("PORT", raw["PORT"], 1)
    if port > 65535:
        raise ConfigError(f"SEACO_PORT must be at most 65535, got {port}.")
    for name in ("ASR_MODEL", "VAD_MODEL", "PUNC_MODEL", "HOST"):
        if not raw[name].strip():
            raise ConfigError(f"SEACO_{name} must not be empty.")

    return Settings(
        data_dir=Path(raw["DATA_DIR"]).expanduser().resolve(),
        host=raw["HOST"].strip(),
        port=port,
        asr_model=raw["ASR_MODEL"].strip(),
        vad_model=raw["VAD_MODEL"].strip(),
        punc_model=raw["PUNC_MODEL"].strip(),
        device=device,
        ncpu=_int("NCPU", raw["NCPU"], 0),
        batch_size_s=_int("BATCH_SIZE_S", raw["BATCH_SIZE_S"], 1),
        hotwords=raw["HOTWORDS"].strip(),
        queue_max=_int("QUEUE_MAX", raw["QUEUE_MAX"], 1),
        max_upload_mb=_int("MAX_UPLOAD_MB", raw["MAX_UPLOAD_MB"], 1),
        max_duration_s=_int("MAX_DURATION_S", raw["MAX_DURATION_S"], 1),
        lease_s=_int("LEASE_S", raw["LEASE_S"], 5),
        max_attempts=_int("MAX_ATTEMPTS", raw["MAX_ATTEMPTS"], 1),
        heartbeat_s=_int("HEARTBEAT_S", raw["HEARTBEAT_S"], 1),
        idle_poll_ms=_int("IDLE_POLL_MS", raw["IDLE_POLL_MS"], 5),
        model_retry_s=_int("MODEL_RETRY_S", raw["MODEL_RETRY_S"], 1),
        api_tokens=raw["API_TOKENS"].strip(),
        sync_timeout_s=_int("SYNC_TIMEOUT_S", raw["SYNC_TIMEOUT_S"], 1),
        sources=sources,
    )
