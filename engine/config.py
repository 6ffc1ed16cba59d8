"""Settings, read once from `SEACO_*` environment variables and an optional `.env` file.

Each setting is declared once, as a field of `Settings`: its type, the default as a user
would write it, a description (Markdown), a kind that parses and checks it, and whether it
is secret. The environment variable is `SEACO_<FIELD>`. From those declarations come
`load_settings`, `Settings.as_env`, `seaco config` (and `seaco config --markdown`, the
README's settings table) and the System page's table. Other modules receive a `Settings`
value; none reads the environment itself (starlette's habit: configuration in one place,
plain values elsewhere).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from dotenv import dotenv_values

from engine.cron import OFF, cron_trigger, is_off
from engine.errors import ConfigError

SOURCES_ENV = "SEACO_SETTING_SOURCES"  # not a setting: set by `seaco serve` for its children

PROD_ASR_MODEL = "iic/speech_seaco_paraformer_large_asr_nat-zh-cn-16k-common-vocab8404-pytorch"
PROD_VAD_MODEL = "iic/speech_fsmn_vad_zh-cn-16k-common-pytorch"
PROD_PUNC_MODEL = "iic/punc_ct-transformer_zh-cn-common-vocab272727-pytorch"
PRECISIONS = ("fp32", "fp16", "bf16")  # SEACO_PRECISION: the ASR model under torch autocast
MAX_WORKERS = 64  # SEACO_WORKERS: more worker processes than this on one machine is a typo
# SEACO_WORKERS=auto on a CPU: torch threads per worker process, from the measurement in
# BENCHMARKS.md ("Worker layout on a CPU"): on 2 cores, 2 workers of 1 thread beat 1 worker
# of 2 threads (median wall time over the corpus, and 18 % less CPU time). So auto means
# cores // this many workers, each with the cores shared out, at most AUTO_CPU_MAX_WORKERS
# and no more than the RAM allows at SEACO_WORKER_MAX_RSS_MB each. None would mean one
# worker with every core.
AUTO_CPU_THREADS_PER_WORKER: int | None = 1
AUTO_CPU_MAX_WORKERS = 8


# --- kinds: how a setting's text becomes its value. `parse(name, raw)` returns the value or
# raises ConfigError naming SEACO_<name>.


@dataclass(frozen=True)
class Int:
    """A whole number, at least `minimum` (and at most `maximum` when given)."""

    minimum: int
    maximum: int | None = None

    def parse(self, name: str, raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"SEACO_{name} must be a whole number, got {raw!r}.") from None
        if value < self.minimum:
            raise ConfigError(f"SEACO_{name} must be at least {self.minimum}, got {value}.")
        if self.maximum is not None and value > self.maximum:
            raise ConfigError(f"SEACO_{name} must be at most {self.maximum}, got {value}.")
        return value


@dataclass(frozen=True)
class Float:
    """A number, at least `minimum` (NaN is refused)."""

    minimum: float

    def parse(self, name: str, raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"SEACO_{name} must be a number, got {raw!r}.") from None
        if not value >= self.minimum:  # also refuses NaN
            raise ConfigError(f"SEACO_{name} must be at least {self.minimum}, got {raw}.")
        return value


@dataclass(frozen=True)
class Text:
    """Text with surrounding blanks removed; `required` refuses an empty one. Comma-separated
    lists (tokens, hosts, addresses) are kept as text; `Settings` has properties that split
    the ones code needs as lists."""

    required: bool = False

    def parse(self, name: str, raw: str) -> str:
        value = raw.strip()
        if self.required and not value:
            raise ConfigError(f"SEACO_{name} must not be empty.")
        return value


@dataclass(frozen=True)
class Choice:
    """One of `values` (case-insensitive), or anything starting with one of `prefixes`
    (`cuda:1`). `wording` is how the error message lists them."""

    values: tuple[str, ...]
    prefixes: tuple[str, ...] = ()
    wording: str = ""

    def parse(self, name: str, raw: str) -> str:
        value = raw.strip().lower()
        if value not in self.values and not any(value.startswith(p) for p in self.prefixes):
            allowed = self.wording or ", ".join(self.values)
            raise ConfigError(f"SEACO_{name} must be {allowed}, got {raw!r}.")
        return value


@dataclass(frozen=True)
class Cron:
    """A five-field crontab expression in the server's local time (minute hour day month
    weekday, Sunday = 0 or 7), or "off". Checked now, so a typo stops the start, not a
    midnight run."""

    def parse(self, name: str, raw: str) -> str:
        expr = " ".join(raw.split())
        if is_off(expr):
            return OFF
        try:
            cron_trigger(expr)
        except ValueError as exc:
            raise ConfigError(
                f"SEACO_{name} must be a crontab expression (minute hour day month weekday) "
                f"or 'off', got {raw!r}: {exc}."
            ) from None
        return expr


@dataclass(frozen=True)
class Directory:
    """A directory path; `~` is expanded and a relative path is made absolute against the
    working directory at load time."""

    def parse(self, name: str, raw: str) -> Path:
        return Path(raw).expanduser().resolve()


_SLOT = re.compile(r"(auto|cpu|cuda(?::\d+)?)(?:\*(\d+))?(?:/(\d+))?")
_WORKERS_WORDING = (
    "auto, a number of workers, or a comma-separated list of slots DEVICE[*COUNT][/THREADS] "
    "(e.g. cpu*2, cuda:0,cuda:1, cpu*2/1)"
)


@dataclass(frozen=True)
class WorkerLayout:
    """`SEACO_WORKERS`: "auto", a number of workers on SEACO_DEVICE, or slots
    `DEVICE[*COUNT][/THREADS]` separated by commas (DEVICE auto, cpu, cuda or cuda:N).
    Kept as text with blanks removed; `worker_slots` turns it into slots."""

    def parse(self, name: str, raw: str) -> str:
        value = "".join(raw.split()).lower()
        if value == "auto":
            return value
        if value.isdigit():
            count = int(value)
            if not 1 <= count <= MAX_WORKERS:
                raise ConfigError(
                    f"SEACO_{name} must be between 1 and {MAX_WORKERS} workers, got {raw!r}."
                )
            return str(count)
        total = 0
        for part in value.split(","):
            match = _SLOT.fullmatch(part)
            if match is None:
                raise ConfigError(
                    f"SEACO_{name} must be {_WORKERS_WORDING}; {part!r} in {raw!r} is not."
                )
            count, threads = int(match[2] or 1), int(match[3] or 1)
            if count < 1 or threads < 1:
                raise ConfigError(
                    f"SEACO_{name}: counts and thread numbers must be at least 1, got {part!r}."
                )
            total += count
        if total > MAX_WORKERS:
            raise ConfigError(
                f"SEACO_{name} asks for {total} workers; at most {MAX_WORKERS} are allowed."
            )
        return value


Kind = Int | Float | Text | Choice | Cron | Directory | WorkerLayout
_SPEC = "seaco.setting"


def setting(
    raw_default: str, description: str, kind: Kind = Text(), *, secret: bool = False
) -> Any:
    """Declare one field of `Settings`. `raw_default` is the default as a user would write
    it in `.env` (parsed like any value); `description` is Markdown; `secret` values are
    masked wherever settings are shown. The field has no Python default: every `Settings`
    comes from `load_settings` (the parameter is not called `default`, so mypy agrees)."""
    return field(metadata={_SPEC: (raw_default, description, kind, secret)})


_T = TypeVar("_T")

if TYPE_CHECKING:  # tells mypy that `setting(...)` declares a field (typing has it from 3.11)
    from typing_extensions import dataclass_transform
else:

    def dataclass_transform(**_kwargs: object) -> Callable[[_T], _T]:
        return lambda decorated: decorated


@dataclass_transform(frozen_default=True, field_specifiers=(setting, field))
def _settings_dataclass(cls: type[_T]) -> type[_T]:
    return dataclass(frozen=True)(cls)


@_settings_dataclass
class Settings:
    """Every setting, in the README's order. Build one with `load_settings`."""

    data_dir: Path = setting(
        "./data", "Holds jobs.db, uploaded audio, logs/ and tmp/.", Directory()
    )
    host: str = setting(
        "127.0.0.1",
        "Listen address. Loopback by default; set 0.0.0.0 to serve the network (see README).",
        Text(required=True),
    )
    port: int = setting(
        "7860", "Listen port for the dashboard, /health and the API.", Int(1, maximum=65535)
    )
    asr_model: str = setting(
        PROD_ASR_MODEL,
        "SeACo-Paraformer: a ModelScope id or a local directory.",
        Text(required=True),
    )
    vad_model: str = setting(
        PROD_VAD_MODEL, "FSMN-VAD: a ModelScope id or a local directory.", Text(required=True)
    )
    punc_model: str = setting(
        PROD_PUNC_MODEL,
        "CT-Transformer punctuation: a ModelScope id or a local dir.",
        Text(required=True),
    )
    device: str = setting(
        "auto",
        "auto (CUDA when available), cuda, or cpu.",
        Choice(("auto", "cuda", "cpu"), prefixes=("cuda:",), wording="auto, cuda or cpu"),
    )
    precision: str = setting(
        "fp32",
        "The ASR model's compute precision: fp32, or fp16/bf16 under torch autocast (weights "
        "stay fp32; faster on a GPU with tensor cores, and bf16 on a CPU with bfloat16 "
        "instructions such as AVX512-BF16 or AMX). fp16 needs CUDA. Check accuracy with "
        "seaco eval before switching.",
        Choice(PRECISIONS),
    )
    ncpu: int = setting(
        "0",
        "Torch threads in each worker; 0 means all cores (at most 8) shared out between the "
        "workers (SEACO_WORKERS).",
        Int(0),
    )
    workers: str = setting(
        "auto",
        "Worker processes `seaco serve` runs, each with its own models, device and torch "
        "threads: `auto` (one per visible GPU; on a CPU one single-threaded worker per core, "
        "the layout measured fastest, at most 8 and RAM / SEACO_WORKER_MAX_RSS_MB; one worker "
        "when SEACO_NCPU is set), a number (that many on SEACO_DEVICE), or slots "
        "`DEVICE[*COUNT][/THREADS]` separated by commas, e.g. `cpu*2`, `cuda:0,cuda:1`, "
        "`cpu*2/1`.",
        WorkerLayout(),
    )
    batch_size_s: int = setting(
        "300", "Seconds of audio decoded together by the ASR model.", Int(1)
    )
    cpu_batch_s: int = setting(
        "60",
        "On CPU, VAD segments are recognised in length-sorted batches of up to this many "
        "seconds of padded audio (funasr decodes them one at a time on CPU); 0 keeps "
        "funasr's one-at-a-time path. SEACO_BATCH_SIZE_S applies on GPU.",
        Int(0),
    )
    batch_jobs: int = setting(
        "1",
        "Queued jobs of the same priority and hotwords recognised together (their VAD "
        "segments batched), while their audio adds up to at most SEACO_BATCH_SIZE_S; 1 "
        "(default) turns cross-job batching off. Pays most on a GPU; a job's text can then "
        "depend slightly on the jobs it was batched with (padding).",
        Int(1),
    )
    hotwords: str = setting(
        "",
        "Default hotwords merged into every job (comma or space separated); the initial "
        "value of the list edited on the Hotwords page.",
    )
    queue_max: int = setting(
        "20", "Queued jobs beyond which new submissions are refused (503).", Int(1)
    )
    max_upload_mb: int = setting("512", "Largest accepted upload, in MB.", Int(1))
    max_duration_s: int = setting(
        "14400", "Longest accepted audio, in seconds (default 4 h).", Int(1)
    )
    lease_s: int = setting(
        "60", "A running job's lease; renewed by the worker's heartbeat.", Int(5)
    )
    max_attempts: int = setting(
        "3", "Claims before a job that keeps killing workers is failed as poison.", Int(1)
    )
    job_timeout_s: int = setting(
        "600",
        "Hard limit for one attempt at a job: this many seconds plus "
        "`SEACO_JOB_TIMEOUT_FACTOR` x the audio's length. Past it `seaco serve` kills the "
        "worker and the attempt counts toward `SEACO_MAX_ATTEMPTS`.",
        Int(1),
    )
    job_timeout_factor: float = setting(
        "1.0",
        "Seconds added to the hard job limit per second of audio (see `SEACO_JOB_TIMEOUT_S`).",
        Float(0.0),
    )
    worker_max_rss_mb: int = setting(
        "8192",
        "Worker memory (RSS, MB) above which the worker, after its current job, exits cleanly "
        "and a fresh one starts; 0 turns the check off.",
        Int(0),
    )
    worker_max_vram_mb: int = setting(
        "0",
        "The same for GPU memory held by torch (reserved, MB); 0 turns the check off.",
        Int(0),
    )
    worker_max_jobs: int = setting(
        "0",
        "Jobs after which the worker exits cleanly and a fresh one starts; 0 means never.",
        Int(0),
    )
    db_busy_timeout_s: int = setting(
        "30",
        "How long a write waits for jobs.db's lock before giving up (the API answers 503).",
        Int(1),
    )
    decode_ahead: int = setting(
        "2",
        "Queued jobs whose audio a separate process decodes to 16 kHz while the model works "
        "on the current one; 0 turns decode-ahead off.",
        Int(0),
    )
    pcm_cache_mb: int = setting(
        "1024",
        "Bound on decoded audio kept in `<data>/tmp/pcm` for decode-ahead (oldest use evicted).",
        Int(1),
    )
    heartbeat_s: int = setting("5", "Seconds between worker heartbeats.", Int(1))
    idle_poll_ms: int = setting("50", "How often an idle worker looks for new work, in ms.", Int(5))
    model_retry_s: int = setting(
        "60", "Seconds between attempts to load a model that failed to load.", Int(1)
    )
    api_tokens: str = setting(
        "",
        "Comma-separated bearer tokens for /api and /v1; empty means no auth.",
        secret=True,
    )
    sync_timeout_s: int = setting(
        "300", "How long POST /v1/audio/transcriptions waits for its result.", Int(1)
    )
    callback_hosts: str = setting(
        "",
        "Host names a job's callback_url may point at (comma separated); empty allows any "
        "host. Set it when API clients must not make the server call internal addresses.",
    )
    callback_secret: str = setting(
        "",
        "When set, every callback carries "
        "`X-Seaco-Signature: sha256=<HMAC-SHA256 of the body with this secret>`, so "
        "receivers can check it came from this service.",
        secret=True,
    )
    # --- operations: telemetry, self-probe, maintenance, alerts (engine/ops). Schedules
    # are crontab expressions (the Cron kind); "off" turns a task off.
    telemetry_s: int = setting(
        "10",
        "Seconds between the worker's telemetry samples (GPU, worker RSS, CPU, RAM, queue); "
        "0 turns sampling off.",
        Int(0),
    )
    telemetry_raw_days: int = setting(
        "3",
        "Days telemetry is kept at full resolution; older samples become 1-minute means.",
        Int(1),
    )
    telemetry_keep_days: int = setting(
        "30", "Days 1-minute telemetry means and `/health` probe results are kept.", Int(1)
    )
    probe_s: int = setting(
        "30",
        "Seconds between the worker's `GET /health` self-probes (availability); 0 turns it off.",
        Int(0),
    )
    log_rotate_cron: str = setting(
        "0 0 * * *",
        "When `app.log` is rotated to `app.log.YYYY-MM-DD.gz` (default: daily at midnight).",
        Cron(),
    )
    log_keep: int = setting("7", "Rotated `app.log` files kept; older ones are deleted.", Int(1))
    temp_cleanup_cron: str = setting(
        "0 */2 * * *",
        "When files in `<data>/tmp` not accessed for `SEACO_TEMP_MAX_AGE_S` are deleted.",
        Cron(),
    )
    temp_max_age_s: int = setting(
        "3600",
        "Seconds since a temporary file was last read or written before cleanup deletes it.",
        Int(60),
    )
    gpu_check_cron: str = setting(
        "*/15 * * * *",
        "When GPU memory is read for the memory alert (default every 15 minutes).",
        Cron(),
    )
    gpu_alert_pct: float = setting(
        "95",
        "GPU memory use (% of the card) above which a reading counts as high (the article: "
        "11.5 GB of 12 GB).",
        Float(1.0),
    )
    gpu_alert_mb: int = setting(
        "0",
        "An absolute threshold in MB instead of `SEACO_GPU_ALERT_PCT`; 0 means use the percentage.",
        Int(0),
    )
    gpu_alert_readings: int = setting(
        "3",
        "Consecutive high readings that raise the GPU memory alert (once, until a reading is "
        "below the threshold again).",
        Int(1),
    )
    alert_webhook_url: str = setting(
        "",
        "Alerts are POSTed here as JSON (`kind`, `message`, `at`, `host`, `data`); empty: no "
        "webhook.",
        secret=True,
    )
    alert_smtp: str = setting(
        "",
        "Mail server for alerts: `smtp://user:password@host:587` (STARTTLS) or "
        "`smtps://user:password@host:465`; empty: no e-mail.",
        secret=True,
    )
    alert_email_from: str = setting(
        "", "Sender address of alert e-mails (default: `seaco-asr@<host>`)."
    )
    alert_email_to: str = setting("", "Comma-separated recipients of alert e-mails.")
    audio_retention_days: int = setting(
        "0",
        "Delete stored audio of jobs finished this many days ago (transcripts are kept); "
        "0 keeps audio for ever.",
        Int(0),
    )
    retention_cron: str = setting(
        "30 0 * * *", "When the audio retention runs (default daily at 00:30).", Cron()
    )
    vacuum_cron: str = setting(
        "0 3 * * 0",
        "When jobs.db gets `VACUUM` and `ANALYZE` (default Sundays at 03:00; put off while "
        "jobs are queued or running).",
        Cron(),
    )
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

    def worker_slots(
        self, *, gpu_count: int = 0, cpu_count: int | None = None, ram_mb: int | None = None
    ) -> tuple[WorkerSlot, ...]:
        """The worker processes SEACO_WORKERS asks for on a machine with `cpu_count` cores
        (default: this one's), `gpu_count` visible GPUs and `ram_mb` MB of memory (None: no
        bound; only `auto` looks at these two), in slot order. A slot without its own thread
        count gets SEACO_NCPU, or else the cores shared out evenly between all the workers
        (at least 1, at most 8 each)."""
        cores = cpu_count or os.cpu_count() or 1
        groups: list[tuple[str, int, int | None]]
        if self.workers == "auto":
            groups = _auto_groups(self, cores, gpu_count, ram_mb)
        elif self.workers.isdigit():
            groups = [(self.device, int(self.workers), None)]
        else:
            groups = []
            for part in self.workers.split(","):
                match = _SLOT.fullmatch(part)
                assert match is not None  # checked by WorkerLayout when loaded
                threads = int(match[3]) if match[3] else None
                groups.append((match[1], int(match[2] or 1), threads))
        total = sum(count for _, count, _ in groups)
        shared = self.ncpu or max(1, min(8, cores // total))
        slots: list[WorkerSlot] = []
        for device, count, threads in groups:
            for _ in range(count):
                slots.append(WorkerSlot(len(slots), device, threads or shared))
        return tuple(slots)

    def for_slot(self, slot: WorkerSlot) -> Settings:
        """These settings as the worker of `slot` runs with them: its device and its torch
        threads (SEACO_NCPU) instead of the instance's."""
        return dataclasses.replace(self, device=slot.device, ncpu=slot.threads)

    @property
    def token_list(self) -> list[str]:
        return [t.strip() for t in self.api_tokens.split(",") if t.strip()]

    @property
    def callback_host_list(self) -> list[str]:
        return [h.strip().lower() for h in self.callback_hosts.split(",") if h.strip()]

    def display_value(self, name: str) -> str:
        """A setting's value for pages and `seaco config` ("PORT" -> "7860"): secrets are
        masked as "(set)", API tokens as "(2 set)". KeyError for an unknown name."""
        spec = SETTINGS_BY_NAME[name]
        value = str(getattr(self, spec.field))
        if spec.secret and value:
            return f"({len(self.token_list)} set)" if spec.field == "api_tokens" else "(set)"
        return value

    def ensure_dirs(self) -> None:
        for directory in (self.data_dir, self.audio_dir, self.log_dir, self.tmp_dir):
            directory.mkdir(parents=True, exist_ok=True)

    def as_env(self) -> dict[str, str]:
        """The settings as SEACO_* variables, to hand to child processes unchanged."""
        return {spec.env: str(getattr(self, spec.field)) for spec in SETTINGS}

    def supervised_env(self) -> dict[str, str]:
        """`as_env()` plus where each value came from (SOURCES_ENV), for the web and worker
        processes `seaco serve` starts: they show the supervisor's sources, not "env"."""
        return {**self.as_env(), SOURCES_ENV: json.dumps(self.sources)}

    def child_env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The environment for a `seaco` child process that must run with exactly these
        settings: this process's environment without its own SEACO_* variables (which could
        disagree), then these settings, then `extra`."""
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("SEACO_")}
        return {**inherited, **self.as_env(), **(extra or {})}


@dataclass(frozen=True)
class WorkerSlot:
    """One worker process of `seaco serve` (SEACO_WORKERS): `index` 0, 1, ... (the worker is
    called `name`, "w0", "w1", ...), the torch `device` its models load on ("cpu", "cuda:1",
    or "auto"/"cuda" as SEACO_DEVICE says) and its torch `threads`."""

    index: int
    device: str
    threads: int

    @property
    def name(self) -> str:
        return f"w{self.index}"


def _auto_groups(
    settings: Settings, cores: int, gpu_count: int, ram_mb: int | None
) -> list[tuple[str, int, int | None]]:
    """SEACO_WORKERS=auto as (device, count, threads or None) groups: one worker per visible
    GPU, or one on a named GPU; on a CPU, the measured layout (AUTO_CPU_THREADS_PER_WORKER):
    cores // T workers, at most AUTO_CPU_MAX_WORKERS and at most `ram_mb` //
    SEACO_WORKER_MAX_RSS_MB, the cores shared out between them. With SEACO_NCPU set, one worker
    of that many threads, as before SEACO_WORKERS existed."""
    device = settings.device
    if device.startswith("cuda:"):
        return [(device, 1, None)]
    if device != "cpu" and gpu_count >= 2:
        return [(f"cuda:{i}", 1, None) for i in range(gpu_count)]
    if device == "cuda" or (device == "auto" and gpu_count == 1):
        return [(device, 1, None)]
    if settings.ncpu or AUTO_CPU_THREADS_PER_WORKER is None:
        return [(device, 1, None)]
    count = min(cores // AUTO_CPU_THREADS_PER_WORKER, AUTO_CPU_MAX_WORKERS)
    if ram_mb and settings.worker_max_rss_mb:
        count = min(count, ram_mb // settings.worker_max_rss_mb)
    count = max(1, count)
    return [(device, count, max(1, min(8, cores // count)))]


@dataclass(frozen=True)
class Setting:
    """One declared setting, read from a `Settings` field: `name` "PORT" (the variable is
    `env`, SEACO_PORT), `field` "port", `default` as a user writes it, `description` in
    Markdown (`plain_description` without the backticks), its `kind` and `secret`."""

    name: str
    field: str
    default: str
    description: str
    kind: Kind
    secret: bool

    @property
    def env(self) -> str:
        return f"SEACO_{self.name}"

    @property
    def plain_description(self) -> str:
        return self.description.replace("`", "")

    def parse(self, raw: str) -> Any:
        return self.kind.parse(self.name, raw)


SETTINGS: tuple[Setting, ...] = tuple(
    Setting(f.name.upper(), f.name, *f.metadata[_SPEC])
    for f in fields(Settings)
    if _SPEC in f.metadata
)
SETTINGS_BY_NAME = {spec.name: spec for spec in SETTINGS}

# Variables read where they are used (engine/logging_setup.py, `seaco submit`), not
# settings of a running service; here so the README table lists them too:
# (name, default cell, description).
OTHER_VARIABLES = (
    ("LOG_LEVEL", "`INFO`", "Log level of every process."),
    (
        "API_TOKEN",
        "(none)",
        "Token `seaco submit` sends (defaults to the first of `SEACO_API_TOKENS`).",
    ),
)


def settings_markdown() -> str:
    """The README's settings table (`seaco config --markdown`): a header, then one row per
    setting in declaration order, then `OTHER_VARIABLES`; newline-terminated."""
    rows = [(spec.name, f"`{spec.default or '(empty)'}`", spec.description) for spec in SETTINGS]
    lines = ["| setting | default | meaning |", "|---|---|---|"]
    for name, default, description in [*rows, *OTHER_VARIABLES]:
        cell = description.replace("|", "\\|")
        lines.append(f"| `SEACO_{name}` | {default} | {cell} |")
    return "\n".join(lines) + "\n"


def load_settings(
    environ: dict[str, str] | None = None, env_file: str | Path | None = ".env"
) -> Settings:
    """Environment wins over `.env`, which wins over the defaults. Each value is parsed and
    checked by its setting's kind, in declaration order; the first bad one raises
    ConfigError naming its variable."""
    environ = dict(os.environ if environ is None else environ)
    file_values: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        file_values = {k: v for k, v in dotenv_values(env_file).items() if v is not None}

    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for spec in SETTINGS:
        if spec.env in environ:
            raw, sources[spec.name] = environ[spec.env], "env"
        elif spec.env in file_values:
            raw, sources[spec.name] = file_values[spec.env], ".env"
        else:
            raw, sources[spec.name] = spec.default, "default"
        values[spec.field] = spec.parse(raw)
    # A child of `seaco serve` gets every setting in its environment; where the supervisor
    # found each one (env, .env or default) comes along, so the System page says the truth.
    for name, source in json.loads(environ.get(SOURCES_ENV) or "{}").items():
        if sources.get(name) == "env":
            sources[name] = source
    return Settings(**values, sources=sources)
