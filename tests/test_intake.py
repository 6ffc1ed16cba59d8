"""Uploads: durable, content-addressed, validated before a job exists, nothing left behind."""

from __future__ import annotations

import io

import pytest

from engine.errors import AudioTooLargeError, EmptyAudioError, NotAudioError, QueueFullError
from engine.intake import display_name, submit_upload
from tests.audio_fixtures import tone, write_audio
from tests.conftest import make_settings


class CountingStream(io.BytesIO):
    """Records how much the intake read, to prove it stops at the size limit."""

    def __init__(self, data: bytes):
        super().__init__(data)
        self.bytes_read = 0

    def read(self, size: int = -1) -> bytes:
        chunk = super().read(size)
        self.bytes_read += len(chunk)
        return chunk


def leftovers(settings) -> list:
    return [
        p
        for p in settings.data_dir.rglob("*")
        if p.is_file() and p.suffix != ".db" and "jobs.db" not in p.name
    ]


@pytest.fixture
def wav_bytes(tmp_path) -> bytes:
    return write_audio(tmp_path / "a.wav", tone(1.0), 16000, "wav").read_bytes()


def test_upload_is_stored_by_hash_and_queued_with_its_metadata(store, settings, wav_bytes):
    job = submit_upload(
        store, settings, io.BytesIO(wav_bytes), "会议 录音.wav", hotwords="科哥，Paraformer 科哥"
    )
    assert job.original_name == "会议 录音.wav"
    assert job.hotwords == ["科哥", "Paraformer"]
    assert job.container == "wav" and job.sample_rate == 16000 and job.channels == 1
    assert 950 <= job.duration_ms <= 1050
    stored = settings.data_dir / job.audio_path
    assert stored.read_bytes() == wav_bytes
    assert stored.name == job.audio_sha256 and "会议" not in str(stored)
    again = submit_upload(store, settings, io.BytesIO(wav_bytes), "copy.wav")
    assert again.audio_path == job.audio_path  # same content, one file
    assert list(settings.tmp_dir.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\x\\a.wav", "a.wav"),
        ("a\x00b\x07.wav", "ab.wav"),
        ("😀 voice.mp3", "😀 voice.mp3"),
        ("", "upload"),
        ("..", "upload"),
        ("x" * 300 + ".wav", "x" * 200),
    ],
)
def test_display_names_are_safe_labels(name, expected):
    assert display_name(name) == expected


def test_over_the_size_limit_stops_reading_and_keeps_nothing(tmp_path, wav_bytes):
    settings = make_settings(tmp_path / "data", max_upload_mb="1")
    settings.ensure_dirs()
    from engine.store import open_store

    store = open_store(settings.db_path)
    stream = CountingStream(b"\0" * (5 * 1024 * 1024))
    with pytest.raises(AudioTooLargeError, match="1 MB upload limit"):
        submit_upload(store, settings, stream, "big.wav")
    assert stream.bytes_read <= 2 * 1024 * 1024
    assert store.counts_by_state()["queued"] == 0 and leftovers(settings) == []


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", EmptyAudioError),
        (b"hello, this is text\n" * 50, NotAudioError),
        (b"\x89PNG\r\n\x1a\n" + bytes(500), NotAudioError),
    ],
)
def test_bad_uploads_are_refused_and_leave_nothing(store, settings, data, error):
    with pytest.raises(error):
        submit_upload(store, settings, io.BytesIO(data), "x.wav")
    assert store.counts_by_state()["queued"] == 0 and leftovers(settings) == []


def test_a_full_queue_refuses_and_removes_the_new_file(tmp_path, wav_bytes):
    settings = make_settings(tmp_path / "data", queue_max="1")
    settings.ensure_dirs()
    from engine.store import open_store

    store = open_store(settings.db_path)
    submit_upload(store, settings, io.BytesIO(wav_bytes), "first.wav")
    other = write_audio(tmp_path / "b.wav", tone(1.0, freq=880), 16000, "wav").read_bytes()
    with pytest.raises(QueueFullError, match="queue is full"):
        submit_upload(store, settings, io.BytesIO(other), "second.wav")
    assert store.counts_by_state()["queued"] == 1
    assert len(list((settings.data_dir / "audio").rglob("*"))) == 2  # one shard dir + one file


def test_a_locked_database_is_waited_for_once_and_the_file_kept_for_a_retry(tmp_path, wav_bytes):
    # A 503 "database busy" must cost the client one SEACO_DB_BUSY_TIMEOUT_S, not two: the
    # cleanup after a refusal needs the same write lock, so it is not attempted.
    import sqlite3

    from engine.errors import DatabaseBusyError
    from engine.store import open_store

    settings = make_settings(tmp_path / "data")
    settings.ensure_dirs()
    store = open_store(settings.db_path, busy_timeout_s=0.2)
    write_attempts: list[str] = []
    store.conn.set_trace_callback(
        lambda sql: write_attempts.append(sql) if sql.startswith("BEGIN IMMEDIATE") else None
    )
    blocker = sqlite3.connect(settings.db_path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(DatabaseBusyError):
            submit_upload(store, settings, io.BytesIO(wav_bytes), "locked.wav")
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert len(write_attempts) == 1
    assert len(leftovers(settings)) == 1  # the stored audio, reused by the retry below

    store.conn.set_trace_callback(None)
    job = submit_upload(store, settings, io.BytesIO(wav_bytes), "locked.wav")
    assert job.state.value == "queued" and len(leftovers(settings)) == 1
