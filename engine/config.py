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

from engine.cron import OFF, cron_trigger, is_off
from engine.errors import ConfigError

PROD_ASR_MODEL = "iic/speech_seaco_paraformer_large_asr_nat-zh-cn-16k-common-vocab8404-pytorch"
PROD_VAD_MODEL = "iic/speech_fsmn_vad_zh-cn-16k-common-pytorch"
PROD_PUNC_MODEL = "iic/punc_ct-transformer_zh-cn-common-vocab272727-pytorch"
PRECISIONS = ("fp32", "fp16", "bf16")  # SEACO_PRECISION: the ASR model under torch autocast

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
    "PRECISION": (
        "fp32",
        "The ASR model's compute precision: fp32, or fp16/bf16 under torch autocast (weights "
        "stay fp32; faster on a GPU with tensor cores, and bf16 on a CPU with bfloat16 "
        "instructions such as AVX512-BF16 or AMX). fp16 needs CUDA. Check accuracy with "
        "seaco eval before switching.",
    ),
    "NCPU": ("0", "Torch threads in the worker; 0 means all cores (at most 8)."),
    "BATCH_SIZE_S": ("300", "Seconds of audio decoded together by the ASR model."),
    "CPU_BATCH_S": (
        "60",
        "On CPU, VAD segments are recognised in length-sorted batches of up to this many "
        "seconds of padded audio (funasr decodes them one at a time on CPU); 0 keeps "
        "funasr's one-at-a-time path. SEACO_BATCH_SIZE_S applies on GPU.",
    ),
    "BATCH_JOBS": (
        "1",
        "Queued jobs of the same priority and hotwords recognised together (their VAD "
        "segments batched), while their audio adds up to at most SEACO_BATCH_SIZE_S; 1 "
        "(default) turns cross-job batching off. Pays most on a GPU; a job's text can then "
        "depend slightly on the jobs it was batched with (padding).",
    ),
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
    "JOB_TIMEOUT_S": (
        "600",
        "Hard limit for one attempt at a job: this many seconds plus SEACO_JOB_TIMEOUT_FACTOR x "
        "the audio's length. Past it `seaco serve` kills the worker and the attempt counts "
        "toward SEACO_MAX_ATTEMPTS.",
    ),
    "JOB_TIMEOUT_FACTOR": (
        "1.0",
        "Seconds added to the hard job limit per second of audio (see SEACO_JOB_TIMEOUT_S).",
    ),
    "WORKER_MAX_RSS_MB": (
        "8192",
        "Worker memory (RSS, MB) above which the worker, after its current job, exits cleanly "
        "and a fresh one starts; 0 turns the check off.",
    ),
    "WORKER_MAX_VRAM_MB": (
        "0",
        "The same for GPU memory held by torch (reserved, MB); 0 turns the check off.",
    ),
    "WORKER_MAX_JOBS": (
        "0",
        "Jobs after which the worker exits cleanly and a fresh one starts; 0 means never.",
    ),
    "DB_BUSY_TIMEOUT_S": (
        "30",
        "How long a write waits for jobs.db's lock before giving up (the API answers 503).",
    ),
    "DECODE_AHEAD": (
        "2",
        "Queued jobs whose audio a separate process decodes to 16 kHz while the model works "
        "on the current one; 0 turns decode-ahead off.",
    ),
    "PCM_CACHE_MB": (
        "1024",
        "Bound on decoded audio kept in <data>/tmp/pcm for decode-ahead (oldest use evicted).",
    ),
    "HEARTBEAT_S": ("5", "Seconds between worker heartbeats."),
    "IDLE_POLL_MS": ("50", "How often an idle worker looks for new work, in ms."),
    "MODEL_RETRY_S": ("60", "Seconds between attempts to load a model that failed to load."),
    "API_TOKENS": ("", "Comma-separated bearer tokens for /api and /v1; empty means no auth."),
    "SYNC_TIMEOUT_S": ("300", "How long POST /v1/audio/transcriptions waits for its result."),
    "CALLBACK_HOSTS": (
        "",
        "Host names a job's callback_url may point at (comma separated); empty allows any "
        "host. Set it when API clients must not make the server call internal addresses.",
    ),
    "CALLBACK_SECRET": (
        "",
        "When set, every callback carries X-Seaco-Signature: sha256=<HMAC-SHA256 of the body "
        "with this secret>, so receivers can check it came from this service.",
    ),
    # --- operations: telemetry, self-probe, maintenance, alerts (engine/telemetry.py,
    # engine/maintenance.py). Schedules are crontab expressions in the server's local time
    # (minute hour day month weekday, Sunday = 0 or 7); "off" turns a task off.
    "TELEMETRY_S": (
        "10",
        "Seconds between the worker's telemetry samples (GPU, worker RSS, CPU, RAM, queue); "
        "0 turns sampling off.",
    ),
    "TELEMETRY_RAW_DAYS": (
        "3",
        "Days telemetry is kept at full resolution; older samples become 1-minute means.",
    ),
    "TELEMETRY_KEEP_DAYS": (
        "30",
        "Days 1-minute telemetry means and /health probe results are kept.",
    ),
    "PROBE_S": (
        "30",
        "Seconds between the worker's GET /health self-probes (availability); 0 turns it off.",
    ),
    "LOG_ROTATE_CRON": (
        "0 0 * * *",
        "When app.log is rotated to app.log.YYYY-MM-DD.gz (default: daily at midnight).",
    ),
    "LOG_KEEP": ("7", "Rotated app.log files kept; older ones are deleted."),
    "TEMP_CLEANUP_CRON": (
        "0 */2 * * *",
        "When files in <data>/tmp not accessed for SEACO_TEMP_MAX_AGE_S are deleted.",
    ),
    "TEMP_MAX_AGE_S": (
        "3600",
        "Seconds since a temporary file was last read or written before cleanup deletes it.",
    ),
    "GPU_CHECK_CRON": (
        "*/15 * * * *",
        "When GPU memory is read for the memory alert (default every 15 minutes).",
    ),
    "GPU_ALERT_PCT": (
        "95",
        "GPU memory use (% of the card) above which a reading counts as high (the article: "
        "11.5 GB of 12 GB).",
    ),
    "GPU_ALERT_MB": (
        "0",
        "An absolute threshold in MB instead of SEACO_GPU_ALERT_PCT; 0 means use the percentage.",
    ),
    "GPU_ALERT_READINGS": (
        "3",
        "Consecutive high readings that raise the GPU memory alert (once, until a reading is "
        "below the threshold again).",
    ),
    "ALERT_WEBHOOK_URL": (
        "",
        "Alerts are POSTed here as JSON (kind, message, at, host, data); empty: no webhook.",
    ),
    "ALERT_SMTP": (
        "",
        "Mail server for alerts: smtp://user:password@host:587 (STARTTLS) or "
        "smtps://user:password@host:465; empty: no e-mail.",
    ),
    "ALERT_EMAIL_FROM": ("", "Sender address of alert e-mails (default: seaco-asr@<host>)."),
    "ALERT_EMAIL_TO": ("", "Comma-separated recipients of alert e-mails."),
    "AUDIO_RETENTION_DAYS": (
        "0",
        "Delete stored audio of jobs finished this many days ago (transcripts are kept); "
        "0 keeps audio for ever.",
    ),
    "RETENTION_CRON": ("30 0 * * *", "When the audio retention runs (default daily at 00:30)."),
    "VACUUM_CRON": (
        "0 3 * * 0",
        "When jobs.db gets VACUUM and ANALYZE (default Sundays at 03:00; postponed while jobs "
        "are queued or running).",
    ),
}
SECRET_SETTINGS = {"API_TOKENS", "ALERT_SMTP", "ALERT_WEBHOOK_URL", "CALLBACK_SECRET"}
CRON_SETTINGS = ("LOG_ROTATE_CRON", "TEMP_CLEANUP_CRON", "GPU_CHECK_CRON", "RETENTION_CRON",
                 "VACUUM_CRON")  # fmt: skip


def _int(name: str, raw: str, minimum: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"SEACO_{name} must be a whole number, got {raw!r}.") from None
    if value < minimum:
        raise ConfigError(f"SEACO_{name} must be at least {minimum}, got {value}.")
    return value


def _float(name: str, raw: str, minimum: float) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"SEACO_{name} must be a number, got {raw!r}.") from None
    if not value >= minimum:  # also refuses NaN
        raise ConfigError(f"SEACO_{name} must be at least {minimum}, got {raw}.")
    return value


def _cron(name: str, raw: str) -> str:
    """A crontab expression (checked now, so a typo stops the start, not a midnight run)."""
    expr = " ".join(raw.split())
    if is_off(expr):
        return OFF
    try:
        cron_trigger(expr)
    except ValueError as exc:
        raise ConfigError(
            f"SEACO_{name} must be a crontab expression (minute hour day month weekday) or "
            f"'off', got {raw!r}: {exc}."
        ) from None
    return expr


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    host: str
    port: int
    asr_model: str
    vad_model: str
    punc_model: str
    device: str
    precision: str
    ncpu: int
    batch_size_s: int
    cpu_batch_s: int
    batch_jobs: int
    hotwords: str
    queue_max: int
    max_upload_mb: int
    max_duration_s: int
    lease_s: int
    max_attempts: int
    job_timeout_s: int
    job_timeout_factor: float
    worker_max_rss_mb: int
    worker_max_vram_mb: int
    worker_max_jobs: int
    db_busy_timeout_s: int
    decode_ahead: int
    pcm_cache_mb: int
    heartbeat_s: int
    idle_poll_ms: int
    model_retry_s: int
    api_tokens: str
    sync_timeout_s: int
    callback_hosts: str
    callback_secret: str
    telemetry_s: int
    telemetry_raw_days: int
    telemetry_keep_days: int
    probe_s: int
    log_rotate_cron: str
    log_keep: int
    temp_cleanup_cron: str
    temp_max_age_s: int
    gpu_check_cron: str
    gpu_alert_pct: float
    gpu_alert_mb: int
    gpu_alert_readings: int
    alert_webhook_url: str
    alert_smtp: str
    alert_email_from: str
    alert_email_to: str
    audio_retention_days: int
    retention_cron: str
    vacuum_cron: str
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

    def job_time_limit_s(self, audio_ms: int | None) -> float:
        """The hard limit for one attempt at a job with this much audio (unknown: none)."""
        return self.job_timeout_s + self.job_timeout_factor * (audio_ms or 0) / 1000

    @property
    def torch_threads(self) -> int:
        return self.ncpu or min(os.cpu_count() or 1, 8)

    @property
    def token_list(self) -> list[str]:
        return [t.strip() for t in self.api_tokens.split(",") if t.strip()]

    @property
    def callback_host_list(self) -> list[str]:
        return [h.strip().lower() for h in self.callback_hosts.split(",") if h.strip()]

    def display_value(self, name: str) -> str:
        """A setting's value for pages and `seaco config`: secrets are masked."""
        value = str(getattr(self, name.lower()))
        if name in SECRET_SETTINGS and value:
            return f"({len(self.token_list)} set)" if name == "API_TOKENS" else "(set)"
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

    def child_env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The environment for a `seaco` child process that must run with exactly these
        settings: this process's environment without its own SEACO_* variables (which could
        disagree), then these settings, then `extra`."""
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("SEACO_")}
        return {**inherited, **self.as_env(), **(extra or {})}


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
    precision = raw["PRECISION"].strip().lower()
    if precision not in PRECISIONS:
        raise ConfigError(
            f"SEACO_PRECISION must be {', '.join(PRECISIONS)}, got {raw['PRECISION']!r}."
        )
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
        precision=precision,
        ncpu=_int("NCPU", raw["NCPU"], 0),
        batch_size_s=_int("BATCH_SIZE_S", raw["BATCH_SIZE_S"], 1),
        cpu_batch_s=_int("CPU_BATCH_S", raw["CPU_BATCH_S"], 0),
        batch_jobs=_int("BATCH_JOBS", raw["BATCH_JOBS"], 1),
        hotwords=raw["HOTWORDS"].strip(),
        queue_max=_int("QUEUE_MAX", raw["QUEUE_MAX"], 1),
        max_upload_mb=_int("MAX_UPLOAD_MB", raw["MAX_UPLOAD_MB"], 1),
        max_duration_s=_int("MAX_DURATION_S", raw["MAX_DURATION_S"], 1),
        lease_s=_int("LEASE_S", raw["LEASE_S"], 5),
        max_attempts=_int("MAX_ATTEMPTS", raw["MAX_ATTEMPTS"], 1),
        job_timeout_s=_int("JOB_TIMEOUT_S", raw["JOB_TIMEOUT_S"], 1),
        job_timeout_factor=_float("JOB_TIMEOUT_FACTOR", raw["JOB_TIMEOUT_FACTOR"], 0.0),
        worker_max_rss_mb=_int("WORKER_MAX_RSS_MB", raw["WORKER_MAX_RSS_MB"], 0),
        worker_max_vram_mb=_int("WORKER_MAX_VRAM_MB", raw["WORKER_MAX_VRAM_MB"], 0),
        worker_max_jobs=_int("WORKER_MAX_JOBS", raw["WORKER_MAX_JOBS"], 0),
        db_busy_timeout_s=_int("DB_BUSY_TIMEOUT_S", raw["DB_BUSY_TIMEOUT_S"], 1),
        decode_ahead=_int("DECODE_AHEAD", raw["DECODE_AHEAD"], 0),
        pcm_cache_mb=_int("PCM_CACHE_MB", raw["PCM_CACHE_MB"], 1),
        heartbeat_s=_int("HEARTBEAT_S", raw["HEARTBEAT_S"], 1),
        idle_poll_ms=_int("IDLE_POLL_MS", raw["IDLE_POLL_MS"], 5),
        model_retry_s=_int("MODEL_RETRY_S", raw["MODEL_RETRY_S"], 1),
        api_tokens=raw["API_TOKENS"].strip(),
        sync_timeout_s=_int("SYNC_TIMEOUT_S", raw["SYNC_TIMEOUT_S"], 1),
        callback_hosts=raw["CALLBACK_HOSTS"].strip(),
        callback_secret=raw["CALLBACK_SECRET"].strip(),
        telemetry_s=_int("TELEMETRY_S", raw["TELEMETRY_S"], 0),
        telemetry_raw_days=_int("TELEMETRY_RAW_DAYS", raw["TELEMETRY_RAW_DAYS"], 1),
        telemetry_keep_days=_int("TELEMETRY_KEEP_DAYS", raw["TELEMETRY_KEEP_DAYS"], 1),
        probe_s=_int("PROBE_S", raw["PROBE_S"], 0),
        log_rotate_cron=_cron("LOG_ROTATE_CRON", raw["LOG_ROTATE_CRON"]),
        log_keep=_int("LOG_KEEP", raw["LOG_KEEP"], 1),
        temp_cleanup_cron=_cron("TEMP_CLEANUP_CRON", raw["TEMP_CLEANUP_CRON"]),
        temp_max_age_s=_int("TEMP_MAX_AGE_S", raw["TEMP_MAX_AGE_S"], 60),
        gpu_check_cron=_cron("GPU_CHECK_CRON", raw["GPU_CHECK_CRON"]),
        gpu_alert_pct=_float("GPU_ALERT_PCT", raw["GPU_ALERT_PCT"], 1.0),
        gpu_alert_mb=_int("GPU_ALERT_MB", raw["GPU_ALERT_MB"], 0),
        gpu_alert_readings=_int("GPU_ALERT_READINGS", raw["GPU_ALERT_READINGS"], 1),
        alert_webhook_url=raw["ALERT_WEBHOOK_URL"].strip(),
        alert_smtp=raw["ALERT_SMTP"].strip(),
        alert_email_from=raw["ALERT_EMAIL_FROM"].strip(),
        alert_email_to=raw["ALERT_EMAIL_TO"].strip(),
        audio_retention_days=_int("AUDIO_RETENTION_DAYS", raw["AUDIO_RETENTION_DAYS"], 0),
        retention_cron=_cron("RETENTION_CRON", raw["RETENTION_CRON"]),
        vacuum_cron=_cron("VACUUM_CRON", raw["VACUUM_CRON"]),
        sources=sources,
    )
