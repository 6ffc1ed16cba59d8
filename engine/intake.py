"""Accepting an upload: stream it to disk durably, prove it is audio, queue the job.

The order matters. The file is written under a generated name, hashed while it streams,
size-checked before it is all read, probed, and only then moved to its content-addressed
place and fsynced, so that once a job row exists its audio survives a crash of any process.
No user text ever becomes part of a path: the original name is kept only as a label.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import time
import unicodedata
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from engine import audio
from engine.callbacks import check_callback_url
from engine.config import Settings
from engine.errors import (
    AudioTooLargeError,
    DatabaseBusyError,
    InvalidJobStateError,
    QueueFullError,
    SeacoError,
    StorageFullError,
)
from engine.hotword_vocabulary import select_hotwords
from engine.hotwords import parse_hotwords
from engine.jobs import PRIORITY_BATCH, PRIORITY_NORMAL, Job
from engine.store import NewJob, Store

CHUNK = 1024 * 1024
MAX_NAME_CHARS = 200
TEMP_PATTERNS = ("upload-*.part", "tmp*")  # ours, and the web framework's spooled uploads
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def display_name(name: str | None) -> str:
    """A safe label for the uploaded file: last path component, no control characters."""
    name = (name or "").replace("\\", "/").split("/")[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = re.sub(r"\s+", " ", name).strip(" .")
    return name[:MAX_NAME_CHARS] or "upload"


def _storage_full(exc: OSError) -> StorageFullError:
    return StorageFullError(
        "The server's disk is full, so the upload could not be stored and nothing was "
        f"queued ({os.strerror(exc.errno or errno.ENOSPC)}). Try again later."
    )


def remove_stale_temp(settings: Settings, older_than_s: float = 0) -> int:
    """Delete temporary upload files (partial uploads of a web process that died). Called
    by the supervisor before it starts the web process, when no upload can be in flight."""
    if not settings.tmp_dir.is_dir():
        return 0
    cutoff = time.time() - older_than_s
    removed = 0
    for pattern in TEMP_PATTERNS:
        for path in settings.tmp_dir.glob(pattern):
            try:
                if path.is_file() and path.stat().st_mtime <= cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
    return removed


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_stream(stream: BinaryIO, settings: Settings) -> tuple[Path, str, int]:
    """Copy the upload into tmp/ under a generated name; return (path, sha256, size).

    Refuses as soon as the size limit is passed, without reading the rest; a full disk is a
    StorageFullError and leaves no partial file.
    """
    settings.tmp_dir.mkdir(parents=True, exist_ok=True)
    tmp = settings.tmp_dir / f"upload-{uuid.uuid4().hex}.part"
    digest, size = hashlib.sha256(), 0
    try:
        with open(tmp, "wb") as out:
            while chunk := stream.read(CHUNK):
                size += len(chunk)
                if size > settings.max_upload_bytes:
                    raise AudioTooLargeError(
                        f"The file is larger than the {settings.max_upload_mb} MB upload limit "
                        "(SEACO_MAX_UPLOAD_MB)."
                    )
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        audio.check_size(size, settings.max_upload_bytes)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno in _NO_SPACE:
            raise _storage_full(exc) from exc
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp, digest.hexdigest(), size


def audio_path_for(sha256: str) -> str:
    """Where audio with this hash lives, relative to the data dir."""
    return f"audio/{sha256[:2]}/{sha256}"


def submit_upload(
    store: Store,
    settings: Settings,
    stream: BinaryIO,
    original_name: str | None,
    *,
    hotwords: str | Iterable[str] | None = None,
    priority: int = PRIORITY_NORMAL,
    batch_id: str | None = None,
    source: str = "web",
    callback_url: str | None = None,
) -> Job:
    """Validate and queue one uploaded file. Raises an AudioError for bad input and
    QueueFullError when the queue is at SEACO_QUEUE_MAX; nothing is kept in either case.
    `callback_url` is announced the job's end (engine/callbacks.py)."""
    callback_url = check_callback_url(callback_url, settings)  # before reading the upload
    if store.queue_depth() >= settings.queue_max:  # cheap early refusal, before reading
        raise QueueFullError(
            f"The queue is full ({settings.queue_max} jobs waiting). Try again in a little while."
        )
    words = parse_hotwords(hotwords) if isinstance(hotwords, str | None) else list(hotwords)
    tmp, sha256, size = save_stream(stream, settings)
    try:
        info = audio.probe(tmp, max_duration_s=settings.max_duration_s)
        relative = audio_path_for(sha256)
        final = settings.data_dir / relative
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, final)  # same content if it already exists: replacing is harmless
            _fsync_dir(final.parent)
        except OSError as exc:
            if exc.errno in _NO_SPACE:
                raise _storage_full(exc) from exc
            raise
    finally:
        tmp.unlink(missing_ok=True)

    new = NewJob(
        audio_sha256=sha256,
        audio_path=relative,
        audio_bytes=size,
        original_name=display_name(original_name),
        container=info.container,
        codec=info.codec,
        duration_ms=info.duration_ms,
        duration_estimated=info.duration_estimated,
        hotword_warnings=tuple(select_hotwords(words, settings.asr_model).warnings),
        sample_rate=info.sample_rate,
        channels=info.channels,
        hotwords=tuple(words),
        priority=priority,
        batch_id=batch_id,
        source=source,
        callback_url=callback_url,
    )
    try:
        return store.submit(new, queue_max=settings.queue_max, max_attempts=settings.max_attempts)
    except DatabaseBusyError:
        # Another process holds the write lock: removing the file safely needs that lock too,
        # and waiting for it a second time would double the client's wait for its 503. The
        # file stays; a later upload of the same audio reuses it.
        raise
    except BaseException:
        # Refused (queue full, database full): keep no file that no job uses. When the
        # database cannot be written the file stays; a later upload of it reuses it.
        try:
            store.remove_unused_audio(sha256, lambda: final.unlink(missing_ok=True))
        except Exception:  # the original error is what the caller must see
            pass
        raise


@dataclass(frozen=True)
class BatchSubmission:
    batch_id: str
    accepted: list[Job]
    rejected: list[tuple[str, SeacoError]]  # (file name, why)


def submit_batch(
    store: Store,
    settings: Settings,
    files: Iterable[tuple[BinaryIO, str | None]],
    *,
    hotwords: str | Iterable[str] | None = None,
    priority: int = PRIORITY_BATCH,
    source: str = "web",
    callback_url: str | None = None,
) -> BatchSubmission:
    """Queue several files under one batch id. A bad file is reported and the rest go on;
    once the queue is full the remaining files are reported as refused, not dropped silently."""
    check_callback_url(callback_url, settings)  # one bad URL refuses the batch, not each file
    batch_id = uuid.uuid4().hex[:12]
    accepted: list[Job] = []
    rejected: list[tuple[str, SeacoError]] = []
    for stream, name in files:
        try:
            accepted.append(
                submit_upload(
                    store,
                    settings,
                    stream,
                    name,
                    hotwords=hotwords,
                    priority=priority,
                    batch_id=batch_id,
                    source=source,
                    callback_url=callback_url,
                )
            )
        except SeacoError as exc:
            rejected.append((display_name(name), exc))
    return BatchSubmission(batch_id, accepted, rejected)


def resubmit_without_hotwords(
    store: Store,
    settings: Settings,
    job_id: int,
    *,
    priority: int = PRIORITY_NORMAL,
    source: str = "web",
) -> Job:
    """Queue a done job again on its stored audio with no hotwords at all (neither the job's
    nor the operator's defaults), so its transcript can be compared with one made without
    them. The new job's `compare_of` is `job_id`; `store.comparison_for(job_id)` finds it.
    An existing queued, running or done comparison is returned instead of a new one.

    Raises JobNotFoundError, InvalidJobStateError (not done, or its audio file is gone) and
    QueueFullError."""
    job = store.get(job_id)
    if not (settings.data_dir / job.audio_path).is_file():
        raise InvalidJobStateError(
            f"Job {job_id}'s audio file is no longer in the data directory, so it cannot be "
            "run again."
        )
    return store.submit_comparison(
        job_id,
        queue_max=settings.queue_max,
        max_attempts=settings.max_attempts,
        priority=priority,
        source=source,
    )


def delete_job(store: Store, settings: Settings, job_id: int) -> None:
    """Delete a job, its transcript and, when no other job shares it, its audio file."""
    orphan = store.delete_job(job_id)
    if orphan is not None:
        (settings.data_dir / orphan).unlink(missing_ok=True)
