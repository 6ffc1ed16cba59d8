"""The worker: the one process that owns the model and works through the queue in order.

Shape (huey's consumer, rq's worker): `initialize()` registers and recovers, `loop()` is one
turn of the queue, `shutdown()` tears down. The queue is a plain loop on a thread of its own:
it loads the model (retrying every `SEACO_MODEL_RETRY_S`), then calls `loop()` until a stop
is requested; a turn takes at most one job, and when there was none it waits on an event for
`SEACO_IDLE_POLL_MS`, a wait that a stop request or `wake()` ends at once. Nothing has to
re-arm it, so it cannot be lost. APScheduler runs the periodic work beside it: heartbeats
that also renew the running job's lease, the sweep that re-queues jobs of dead workers,
telemetry, probes, maintenance and job-completion callbacks. Signal handlers only set flags:
the first SIGTERM/SIGINT finishes the current job and stops, a second one gives the job back
to the queue and exits at once.

Several workers on one machine (SEACO_WORKERS): each process runs one slot (`seaco worker
--slot N`), with that slot's device and torch threads, its own heartbeat, leases, memory
guard and decode-ahead helper; its id names the slot (`<host>-w1-<pid>-<random>`). Claims
stay exclusive (one `UPDATE ... RETURNING` in a write transaction). The work that must
happen once per machine, not once per worker (telemetry of the machine, the /health
self-probe, maintenance, callbacks) runs in slot 0 only: every instance has a slot 0, the
supervisor keeps it alive like any other, and maintenance already makes up a run that fell
due while it was down, so no lock is needed (and none can be left behind by a killed
holder). The stale-lease sweep runs in every worker: it only re-queues jobs whose lease
expired, which a live sibling's heartbeat never lets happen, so running it twice is safe.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeGuard

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from engine import audio, callbacks
from engine.config import Settings, WorkerSlot
from engine.errors import ConfigError, DatabaseError, SeacoError, StorageFullError
from engine.hotword_vocabulary import HotwordSelection, select_hotwords
from engine.hotwords import default_hotwords, merge_hotwords
from engine.jobs import Job
from engine.ops import maintenance, telemetry
from engine.ops.health import configured_workers
from engine.store import JobResult, Store, open_store
from engine.worker.decode_ahead import PcmCache, Prefetcher
from engine.worker.job_batching import pick_companions
from engine.worker.memory_guard import recycle_reason, rss_mb, vram_mb
from engine.worker.watchdog import record_recovery

log = logging.getLogger("seaco.worker")
WORKER_ROWS_KEPT_MS = 7 * 24 * 3600 * 1000  # each (re)start adds a row; keep a week of them


class Pipeline(Protocol):
    def transcribe(self, samples: Any, hotwords: list[str] | None = None) -> Any: ...
    def info(self) -> dict[str, Any]: ...


class BatchingPipeline(Pipeline, Protocol):
    """A pipeline that also recognises several recordings together (AsrPipeline does; a test
    seam's pipeline may not), for cross-job batching."""

    def transcribe_many(self, recordings: list[Any], hotwords: list[str] | None = None) -> Any: ...


def can_batch(pipeline: Pipeline | None) -> TypeGuard[BatchingPipeline]:
    return callable(getattr(pipeline, "transcribe_many", None))


PipelineFactory = Callable[[Settings], Pipeline]


def load_pipeline(settings: Settings) -> Pipeline:
    """The production pipeline; imported here so only the worker pays for funasr/torch."""
    from engine.recognition.pipeline import pipeline_for

    return pipeline_for(settings)


def user_error(exc: BaseException) -> str:
    """A sentence for the job's error column. Our own errors are already written for users;
    anything else is a bug or a resource problem, named with its class."""
    if isinstance(exc, SeacoError):
        return str(exc)
    if isinstance(exc, FileNotFoundError):
        return "The job's audio file is missing from the data directory (deleted or moved)."
    if isinstance(exc, MemoryError) or "out of memory" in str(exc).lower():
        return (
            "Recognition ran out of memory on this file. Try a shorter file, or lower "
            "SEACO_BATCH_SIZE_S."
        )
    return f"Recognition failed unexpectedly ({type(exc).__name__}: {exc}). See the service log."


class Worker:
    def __init__(
        self,
        settings: Settings,
        store: Store | None = None,
        *,
        pipeline_factory: PipelineFactory = load_pipeline,
        burst: bool = False,
        max_jobs: int | None = None,
        slot: int = 0,
    ):
        self.slot = worker_slot(settings, slot)
        settings = settings.for_slot(self.slot)  # its device and torch threads
        self.settings = settings
        self.store = store or open_store(
            settings.db_path, busy_timeout_s=settings.db_busy_timeout_s
        )
        self.pipeline_factory = pipeline_factory
        self.burst = burst  # drain the queue, then stop (rq's work(burst=True); for tests)
        self.max_jobs = max_jobs  # `--max-jobs`; otherwise SEACO_WORKER_MAX_JOBS applies
        self.hostname = socket.gethostname()
        self.id = f"{self.hostname}-{self.slot.name}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.pipeline: Pipeline | None = None
        self.model_error: str | None = None
        self.model_info: dict[str, Any] = {}
        self.current: Job | None = None
        self.companions: list[Job] = []  # claimed with `current` (cross-job batching)
        self.jobs_done = 0
        self.jobs_failed = 0
        self.state = "starting"
        self.stop_requested = threading.Event()
        self.abort_requested = threading.Event()
        self._wake = threading.Event()  # ends the queue thread's idle wait at once
        self._scheduler: BackgroundScheduler | None = None
        self._queue_failed = False  # the queue thread died of a bug: exit as a crash
        self.prefetcher: Prefetcher | None = None
        if settings.decode_ahead > 0:  # decode the next jobs while the model works
            cache = PcmCache(settings.tmp_dir / "pcm", settings.pcm_cache_mb * 2**20)
            self.prefetcher = Prefetcher(
                cache, settings.data_dir, settings.max_duration_s, settings.decode_ahead
            )

    # --- lifecycle ---------------------------------------------------------------------------
    @property
    def machine_work(self) -> bool:
        """Whether this worker runs the once-per-machine work (slot 0; module docstring)."""
        return self.slot.index == 0

    def describe(self) -> dict[str, Any]:
        """Who this worker is, for its events: slot name, index, host, device, threads."""
        return {
            "worker": self.slot.name, "slot": self.slot.index, "host": self.hostname,
            "device": self.slot.device, "threads": self.slot.threads, "id": self.id,
        }  # fmt: skip

    def initialize(self) -> None:
        self.settings.ensure_dirs()
        self.store.register_worker(
            self.id, os.getpid(), self.hostname,
            slot=self.slot.index, device=self.slot.device, threads=self.slot.threads,
        )  # fmt: skip
        self.store.prune_workers(older_than_ms=WORKER_ROWS_KEPT_MS)
        self.recover()
        self.store.add_event(
            "worker.start",
            f"Worker {self.slot.name} ({self.id}, {self.slot.device}, "
            f"{self.slot.threads} thread{'s' if self.slot.threads != 1 else ''}) started.",
            data={**self.describe(), "pid": os.getpid()},
        )

    def load_model(self) -> bool:
        """Load the pipeline; on failure remember why (for /health) and try again later."""
        self._set_state("loading")
        started = time.monotonic()
        try:
            self.pipeline = self.pipeline_factory(self.settings)
        except Exception as exc:  # a bad model must not kill the worker: it reports and retries
            self.pipeline = None
            self.model_error = user_error(exc)
            log.error("model load failed: %s", self.model_error)
            log.debug("model load traceback:\n%s", traceback.format_exc())
            self.store.add_event("model.error", self.model_error, level="error")
            self._set_state("model_error")
            return False
        self.model_error = None
        self.model_info = self.pipeline.info()
        seconds = time.monotonic() - started
        log.info("models loaded in %.1f s: %s", seconds, self.model_info)
        self.store.add_event(
            "model.loaded", f"Models loaded in {seconds:.1f} s.", data=self.model_info
        )
        self._set_state("ready")
        return True

    def recover(self) -> None:
        """Jobs whose worker died (its lease ran out) are queued again or failed as poison."""
        record_recovery(self.store, self.store.requeue_abandoned())

    def heartbeat(self) -> None:
        try:
            self.store.heartbeat(
                self.id,
                state=self.state,
                lease_s=self.settings.lease_s,
                model_loaded=self.pipeline is not None,
                model_error=self.model_error,
                current_job_id=self.current.id if self.current else None,
                info={**self.model_info, "pid": os.getpid(), **self._memory()},
                jobs_done=self.jobs_done,
                jobs_failed=self.jobs_failed,
            )
            for job in list(self.companions):  # the heartbeat renews only current's lease
                self.store.renew_lease(job.id, self.id, self.settings.lease_s)
        except Exception:  # a missed heartbeat is survivable; a dead scheduler thread is not
            log.exception("heartbeat failed")

    @staticmethod
    def _memory() -> dict[str, float]:
        """RSS (and VRAM on a GPU) for the heartbeat, so /health and the soak can watch it."""
        memory = {"rss_mb": round(rss_mb(), 1)}
        vram = vram_mb()
        if vram is not None:
            memory["vram_mb"] = round(vram, 1)
        return memory

    def _set_state(self, state: str) -> None:
        self.state = state
        self.heartbeat()

    # --- the queue -----------------------------------------------------------------------------
    def loop(self) -> bool:
        """One turn of the queue thread (huey's `Worker.loop`): claim and process at most one
        job. When there was none (or the database refused the claim, which is logged), wait
        up to SEACO_IDLE_POLL_MS for `wake()` or a stop request; in burst mode stop instead.
        True when a job was processed."""
        self._wake.clear()  # a wake-up from here on ends the wait below
        try:
            processed = self.process_next()
        except Exception:  # e.g. the database was briefly unavailable: log, retry next turn
            log.exception("queue loop error")
            processed = False
        if not processed:
            if self.burst:
                self.request_stop()
            elif not self.stop_requested.is_set():  # (set before _wake: none is missed)
                self._wake.wait(self.idle_poll_s)
        return processed

    def wake(self) -> None:
        """End the queue thread's idle wait now (a job was queued from this process)."""
        self._wake.set()

    def process_next(self) -> bool:
        """Claim and process at most one job. True when a job was processed."""
        if self.pipeline is None or self.stop_requested.is_set():
            return False
        job = self.store.claim(self.id, self.settings.lease_s)
        if job is None:
            return False
        self.current = job
        self._set_state("busy")
        self.companions = self._claim_companions(job)
        self._decode_ahead()
        try:
            if self.companions:
                self.process_group([job, *self.companions])
            else:
                self.process(job)
        except (DatabaseError, StorageFullError) as exc:
            # Not the job's fault: give it back (without costing an attempt) rather than fail it.
            log.error("job %s: the database refused a write (%s); giving the job back", job.id, exc)
            for held in [job, *self.companions]:
                try:
                    self.store.release(held.id, self.id)
                except Exception:
                    log.warning("job %s: could not give it back; its lease will expire", held.id)
        finally:
            self.current = None
            self.companions = []
            self._set_state("ready")
        self._check_memory()
        return True

    def _hotwords(self, job: Job, defaults: list[str] | None = None) -> HotwordSelection:
        """The job's words and the operator's defaults, less those the model cannot spell
        (one rule for every way a hotword arrives: hotword_vocabulary.select_hotwords)."""
        # A "compare without hotwords" re-run must not get the operator's defaults either.
        if not job.use_default_hotwords:
            defaults = []
        elif defaults is None:
            defaults = default_hotwords(self.store, self.settings)
        words = merge_hotwords(job.hotwords, defaults)
        return select_hotwords(words, self.settings.asr_model)

    def _claim_companions(self, head: Job) -> list[Job]:
        """Queued jobs to recognise together with `head` (engine/worker/job_batching.py),
        claimed."""
        if self.settings.batch_jobs <= 1 or not can_batch(self.pipeline):
            return []
        try:
            defaults = default_hotwords(self.store, self.settings)
            picked = pick_companions(
                head, self.store.peek_queued(self.settings.batch_jobs - 1),
                lambda j: self._hotwords(j, defaults).given,
                max_jobs=self.settings.batch_jobs, max_audio_ms=self.settings.batch_size_s * 1000,
            )  # fmt: skip
            claimed = [
                self.store.claim_queued(j.id, self.id, self.settings.lease_s) for j in picked
            ]
        except (DatabaseError, StorageFullError):
            return []  # the head job alone, as without batching
        return [j for j in claimed if j is not None]

    def _decode_ahead(self) -> None:
        if self.prefetcher is None:
            return
        try:
            self.prefetcher.ahead(self.store.peek_queued(self.settings.decode_ahead))
        except Exception:  # an optimisation: never a reason to fail or skip a job
            log.exception("decode-ahead failed; the worker decodes itself")

    def _check_memory(self) -> None:
        """The memory guard (engine/worker/memory_guard.py): between jobs, hand over to a fresh
        process
        when this one has grown past its limits or done its share of jobs."""
        rss, vram = rss_mb(), vram_mb()
        jobs = self.jobs_done + self.jobs_failed
        reason = recycle_reason(
            self.settings, jobs_processed=jobs, rss=rss, vram=vram, max_jobs=self.max_jobs
        )
        if reason is None:
            return
        log.warning("%s", reason)
        try:
            self.store.add_event(
                "worker.recycle", f"{self.slot.name}: {reason}",
                data={**self.describe(), "rss_mb": round(rss), "vram_mb": vram, "jobs": jobs},
            )  # fmt: skip
        except Exception:  # the stop matters more than its record
            log.exception("could not record the recycle")
        self.request_stop()

    def process(self, job: Job) -> None:
        """Decode, recognise, store. Any failure is recorded on the job; the worker goes on."""
        prepared = self._prepare(job)
        if prepared is None:
            return
        samples, info, decode_ms = prepared
        hotwords = self._hotwords(job)
        try:
            started = time.monotonic()
            assert self.pipeline is not None
            transcript = self.pipeline.transcribe(samples, hotwords.given)
            inference_ms = round((time.monotonic() - started) * 1000)
        except Exception as exc:
            self._failed(job, exc, decode_ms)
            return
        self._finish(job, transcript, hotwords, info, decode_ms, inference_ms)

    def process_group(self, jobs: list[Job]) -> None:
        """Jobs with one hotword list, their VAD segments recognised together
        (AsrPipeline.transcribe_many). Each job's inference_ms is the group's time shared
        by audio length, so sums over jobs stay true. If the group fails, every job is
        processed alone, so a poison file fails only its own job."""
        ready = []
        for job in jobs:
            prepared = self._prepare(job)
            if prepared is not None:
                ready.append((job, *prepared))
        if not ready:
            return
        hotwords = self._hotwords(ready[0][0])
        log.info("jobs %s: recognised together", [r[0].id for r in ready])
        pipeline = self.pipeline
        if not can_batch(pipeline):  # companions are only claimed for one that can
            raise TypeError("process_group needs a pipeline with transcribe_many")
        try:
            started = time.monotonic()
            transcripts = pipeline.transcribe_many([r[1] for r in ready], hotwords.given)
            group_ms = (time.monotonic() - started) * 1000
        except (DatabaseError, StorageFullError):
            raise
        except Exception:
            log.exception(
                "jobs %s: batch failed; processing them one by one", [r[0].id for r in ready]
            )
            for job, *_ in ready:
                self.process(job)
            return
        total = sum(len(r[1]) for r in ready) or 1
        for (job, samples, info, decode_ms), transcript in zip(ready, transcripts, strict=True):
            share = round(group_ms * len(samples) / total)
            self._finish(job, transcript, hotwords, info, decode_ms, share)

    def _prepare(self, job: Job) -> tuple[Any, audio.AudioInfo, int] | None:
        """The job's samples, audio info and decode time; None when it was cancelled or
        failed (recorded)."""
        log.info("job %s: start (attempt %s, %s)", job.id, job.attempts, job.original_name)
        decode_ms: int | None = None
        try:
            if self.store.is_cancel_requested(job.id):
                self.store.cancel_running(job.id, self.id, job.attempts)
                return None
            started = time.monotonic()
            # decode_ms is what decoding cost this job's path: reading the PCM decoded ahead
            # by the prefetch process when there is some, else decoding here.
            ahead = self.prefetcher.get(job) if self.prefetcher is not None else None
            samples, info = ahead or audio.decode(
                self.settings.data_dir / job.audio_path,
                max_duration_s=self.settings.max_duration_s,
            )
            decode_ms = round((time.monotonic() - started) * 1000)
            self.store.set_stage(job.id, self.id, "recognising", duration_ms=info.duration_ms)
        except Exception as exc:
            self._failed(job, exc, decode_ms)
            return None
        return samples, info, decode_ms

    def _failed(self, job: Job, exc: Exception, decode_ms: int | None) -> None:
        if isinstance(exc, (DatabaseError, StorageFullError)):
            raise exc  # the database is unwell, not the job: loop() gives the job back
        message = user_error(exc)
        if isinstance(exc, SeacoError):
            log.warning("job %s: failed: %s", job.id, message)
        else:
            log.exception("job %s: failed unexpectedly", job.id, exc_info=exc)
        self.jobs_failed += 1
        self.store.fail(
            job.id, self.id, job.attempts, message, type(exc).__name__, decode_ms=decode_ms
        )

    def _finish(
        self, job: Job, transcript: Any, hotwords: HotwordSelection, info: audio.AudioInfo,
        decode_ms: int, inference_ms: int,
    ) -> None:  # fmt: skip
        self.store.set_stage(job.id, self.id, "saving")
        result = JobResult(
            text=transcript.text,
            raw_text=transcript.raw_text,
            confidence=transcript.confidence,
            sentences=list(transcript.sentences),
            effective_hotwords=hotwords.given,
            hotword_warnings=hotwords.warnings,
            duration_ms=info.duration_ms or 0,
            decode_ms=decode_ms,
            inference_ms=inference_ms,
            model_info=self.model_info,
            stage_ms=dict(getattr(transcript, "stage_ms", None) or {}),
        )
        if self.store.complete(job.id, self.id, job.attempts, result):
            self.jobs_done += 1
            log.info(
                "job %s: done in %s ms (decode %s ms, inference %s ms, audio %.1f s)",
                job.id, decode_ms + inference_ms, decode_ms, inference_ms,
                result.duration_ms / 1000,
            )  # fmt: skip
        else:
            log.warning("job %s: result discarded (cancelled, or the lease was lost)", job.id)

    # --- the queue thread ----------------------------------------------------------------------
    @property
    def idle_poll_s(self) -> float:
        return self.settings.idle_poll_ms / 1000

    def _consume(self) -> None:
        """The queue thread: load the model (retrying), then turn `loop()` until stopped."""
        while not self.stop_requested.is_set():
            self._wake.clear()
            if self.load_model():
                break
            if self.burst:  # nothing will ever be processed: stop instead of waiting
                self.request_stop()
                return
            self._wake.wait(self.settings.model_retry_s)
        while not self.stop_requested.is_set():
            self.loop()

    def _consume_logged(self) -> None:
        try:
            self._consume()
        except Exception:  # a bug: exit (a crash for the supervisor) rather than heartbeat idle
            log.exception("the queue thread failed; stopping the worker")
            self._queue_failed = True
            self.request_stop()

    def request_stop(self) -> None:
        self.stop_requested.set()
        self._wake.set()

    def run(self) -> int:
        """Run until stopped. Returns 0 after a clean stop, 1 after an abort or a failed queue
        thread (the caller must then exit at once with os._exit: the queue thread may still be
        inside torch)."""
        self.initialize()
        scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(4)},
            job_defaults={"coalesce": True, "max_instances": 1},
            timezone="UTC",
        )
        self._scheduler = scheduler
        scheduler.add_job(self.heartbeat, "interval", seconds=self.settings.heartbeat_s)
        scheduler.add_job(self.recover, "interval", seconds=max(1, self.settings.lease_s // 2))
        # Operations (on their own thread pool): telemetry, the /health self-probe,
        # maintenance, job-completion callbacks; once per machine, so in slot 0 only.
        if self.machine_work:
            telemetry.register(scheduler, self.settings, self.store)
            maintenance.register(scheduler, self.settings, self.store)
            callbacks.register(scheduler, self.settings, self.store)
        scheduler.start()
        queue = threading.Thread(target=self._consume_logged, name="seaco-queue", daemon=True)
        queue.start()
        while not self.stop_requested.is_set():
            self.stop_requested.wait(0.5)  # short waits: signal handlers run between them
        # First stop request: the queue thread finishes its job (or model load) and ends,
        # unless a second request arrives first.
        while queue.is_alive() and not self.abort_requested.is_set():
            queue.join(0.2)
        if queue.is_alive():  # aborted: give the job back, do not wait for the thread
            job = self.current
            for held in [job, *self.companions] if job is not None else []:
                self.store.release(held.id, self.id)
                log.warning("job %s: given back to the queue (worker aborted)", held.id)
            self.shutdown(wait=False)
            return 1
        self.shutdown(wait=True)
        return 1 if self._queue_failed else 0

    def shutdown(self, wait: bool = True) -> None:
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=wait)
        self._scheduler = None
        if self.prefetcher is not None:
            self.prefetcher.close()
        try:
            self.state = "stopped"
            self.heartbeat()
            self.store.add_event(
                "worker.stop",
                f"Worker {self.slot.name} ({self.id}) stopped after {self.jobs_done} done, "
                f"{self.jobs_failed} failed.",
                data=self.describe(),
            )
        except Exception:
            log.exception("could not record the worker's stop")

    def install_signal_handlers(self) -> None:
        def handle(signum: int, _frame: object) -> None:
            if self.stop_requested.is_set():
                log.warning("second stop signal: giving the current job back and exiting")
                self.abort_requested.set()
            else:
                log.info("stop signal: finishing the current job, then exiting")
                self.request_stop()

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)


def worker_slot(settings: Settings, index: int) -> WorkerSlot:
    """Slot `index` of SEACO_WORKERS on this machine; ConfigError when there is none."""
    slots = configured_workers(settings)
    if not 0 <= index < len(slots):
        raise ConfigError(
            f"There is no worker slot {index}: SEACO_WORKERS={settings.workers} gives "
            f"{len(slots)} worker{'s' if len(slots) != 1 else ''} here (slots 0 to "
            f"{len(slots) - 1})."
        )
    return slots[index]


def run_worker(
    settings: Settings,
    *,
    burst: bool = False,
    max_jobs: int | None = None,
    pipeline_factory: PipelineFactory = load_pipeline,
    slot: int = 0,
) -> int:
    """Run a worker (slot `slot` of SEACO_WORKERS) until it is stopped, drained (`burst`)
    or recycled; 0 after a clean stop."""
    worker = Worker(
        settings, burst=burst, max_jobs=max_jobs, pipeline_factory=pipeline_factory, slot=slot
    )
    worker.install_signal_handlers()
    log.info(
        "worker %s starting (%s, %d torch threads, data dir %s)",
        worker.id, worker.slot.device, worker.slot.threads, Path(settings.data_dir),
    )  # fmt: skip
    code = worker.run()
    if code != 0:
        logging.shutdown()
        os._exit(code)  # inference threads cannot be interrupted; do not wait for them
    return code
