"""Maintenance tasks on real files and a real jobs.db: log rotation and error-line counts,
temp cleanup with controlled access times, the GPU memory alert (NVML faked only at
engine/ops/gpu.py's seam) with a real webhook receiver, audio retention, VACUUM, the schedule."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import socketserver
import threading
import time

import pytest
from apscheduler.schedulers.background import BackgroundScheduler

from engine import cron
from engine.config import load_settings
from engine.errors import ConfigError
from engine.jobs import JobState
from engine.ops import alerts, app_log, maintenance
from tests.conftest import make_settings
from tests.ops_history import add_finished_job, fake_nvml, queue_one

LOCAL = dt.datetime.now().astimezone().tzinfo
DAY_MS = 86_400_000


# --- log rotation ---------------------------------------------------------------------------
def test_rotation_compresses_empties_and_keeps_seven(tmp_path):
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    for day in range(1, 9):  # eight earlier rotations, one of them twice on the same day
        (log_dir / f"app.log.2026-01-0{day}.gz").write_bytes(gzip.compress(b"old\n"))
    (log_dir / "app.log.2026-01-08.1.gz").write_bytes(gzip.compress(b"old\n"))
    (log_dir / "alerts.log").write_text("not a rotated log\n")
    log_file = log_dir / "app.log"
    writer = open(log_file, "ab", buffering=0)  # as the supervisor and its children hold it
    writer.write(b"2026-01-09 23:59:58,000 INFO [worker 1] seaco: last line of the day\n")

    midnight = dt.datetime(2026, 1, 10, 0, 0, tzinfo=LOCAL)
    result = app_log.rotate(log_dir, keep=7, now=midnight)

    assert result.rotated == log_dir / "app.log.2026-01-09.gz"  # the day that just ended
    assert gzip.decompress(result.rotated.read_bytes()).endswith(b"last line of the day\n")
    assert log_file.stat().st_size == 0
    kept = [p.name for p in app_log.rotated_files(log_dir)]
    assert kept == [
        "app.log.2026-01-04.gz",
        "app.log.2026-01-05.gz",
        "app.log.2026-01-06.gz",
        "app.log.2026-01-07.gz",
        "app.log.2026-01-08.gz",
        "app.log.2026-01-08.1.gz",
        "app.log.2026-01-09.gz",
    ]
    assert sorted(result.deleted) == [
        "app.log.2026-01-01.gz",
        "app.log.2026-01-02.gz",
        "app.log.2026-01-03.gz",
    ]
    assert (log_dir / "alerts.log").exists()

    # the open append-mode handle goes on writing at the start of the emptied file
    writer.write(b"first line of the new day\n")
    writer.close()
    assert log_file.read_bytes() == b"first line of the new day\n"
    # rotated again the same day: a new name, nothing overwritten
    again = app_log.rotate(log_dir, keep=7, now=midnight)
    assert again.rotated.name == "app.log.2026-01-09.1.gz"
    # an empty log is not rotated
    assert app_log.rotate(log_dir, keep=7, now=midnight).rotated is None


def test_error_lines_are_counted_in_the_window_across_rotated_days(tmp_path):
    def line(stamp: str, level: str, text: str) -> str:
        return f"{stamp},250 {level} [worker 7] seaco.worker: {text}\n"

    log_dir = tmp_path
    yesterday = [
        line("2026-01-09 10:00:00", "ERROR", "before the window"),
        line("2026-01-09 23:00:00", "ERROR", "yesterday evening"),
        line("2026-01-09 23:30:00", "WARNING", "only a warning"),
    ]
    today = [
        line("2026-01-10 01:00:00", "CRITICAL", "at one"),
        "Traceback (most recent call last):\n  ERROR inside a traceback is not a log line\n",
        line("2026-01-10 02:00:00", "ERROR", "at two"),
        line("2026-01-10 05:00:00", "ERROR", "after the window"),
    ]
    (log_dir / "app.log.2026-01-09.gz").write_bytes(gzip.compress("".join(yesterday).encode()))
    (log_dir / "app.log").write_text("".join(today))
    utc = dt.timezone.utc

    def ms(day: int, hour: int) -> int:
        return int(dt.datetime(2026, 1, day, hour, tzinfo=utc).timestamp() * 1000)

    found = app_log.error_lines(log_dir, ms(9, 12), ms(10, 3), tz=utc)
    assert found.count == 3
    assert [x.rsplit(": ", 1)[1] for x in found.latest] == ["yesterday evening", "at one", "at two"]


# --- temp cleanup ---------------------------------------------------------------------------
def test_temp_cleanup_deletes_only_files_unused_for_an_hour(tmp_path):
    tmp = tmp_path / "tmp"
    (tmp / "spool").mkdir(parents=True)
    now = time.time()
    hour_ago = now - 3601

    def make(name: str, atime: float, mtime: float, size: int = 10):
        path = tmp / name
        path.write_bytes(b"x" * size)
        os.utime(path, (atime, mtime))
        return path

    stale = make("upload-1.part", hour_ago, hour_ago, 100)
    nested = make("spool/tmpabc", hour_ago - 100, hour_ago - 100, 50)
    read_recently = make("tmpread", now - 60, hour_ago)  # atime recent: in use
    written_recently = make("upload-2.part", hour_ago, now - 5)  # an upload being written

    result = maintenance.clean_temp(tmp, max_age_s=3600, now=now)

    assert (result.removed, result.bytes, result.kept) == (2, 150, 2)
    assert not stale.exists() and not nested.exists() and not (tmp / "spool").exists()
    assert read_recently.exists() and written_recently.exists()
    assert tmp.is_dir()
    assert maintenance.clean_temp(tmp_path / "absent", 3600) == maintenance.Cleanup(0, 0, 0)


# --- GPU memory alert -----------------------------------------------------------------------
@pytest.fixture
def webhook(http_receiver):
    """The receiver of alert webhooks (conftest's http_receiver)."""
    return http_receiver


def posted_json(server) -> list[dict]:
    return [json.loads(body) for _path, _headers, body in server.received]


def test_gpu_alert_fires_on_exactly_the_third_consecutive_high_reading(tmp_path, store, webhook):
    settings = make_settings(
        tmp_path / "data", alert_webhook_url=f"http://127.0.0.1:{webhook.server_address[1]}/hook"
    )
    settings.ensure_dirs()
    nvml = fake_nvml([11.6], total_gb=12)  # 96.7 % of the card; the threshold is 95 %
    watch = maintenance.GpuMemoryWatch(settings.gpu_alert_pct, 0, settings.gpu_alert_readings)

    def reading(used_gb: float) -> int:
        nvml.used_gb[0] = used_gb
        maintenance.check_gpu_memory(store, settings, watch, nvml)
        return len([e for e in store.events(100) if e["kind"] == "alert.gpu_memory"])

    # two high readings, then a low one: the run is broken, no alert
    assert [reading(11.6), reading(11.6), reading(8.0)] == [0, 0, 0]
    # three in a row: the alert fires on the third and only once for the run
    assert [reading(11.6), reading(11.7), reading(11.6), reading(11.8)] == [0, 0, 1, 1]
    # back under the threshold re-arms it
    assert [reading(4.0), reading(11.6), reading(11.6), reading(11.6)] == [1, 1, 1, 2]

    alert = next(e for e in store.events(100) if e["kind"] == "alert.gpu_memory")
    assert alert["level"] == "warning" and "3 readings in a row" in alert["message"]
    assert json.loads(alert["data"])["delivery"] == {"alert log": "ok", "webhook": "ok"}
    lines = (settings.log_dir / "alerts.log").read_text().splitlines()
    assert len(lines) == 2 and "gpu_memory GPU 0 (NVIDIA GeForce RTX 3060)" in lines[0]
    alerts_sent = posted_json(webhook)
    assert len(alerts_sent) == 2
    assert alerts_sent[0]["kind"] == "gpu_memory"
    assert alerts_sent[0]["data"]["readings"] == 3


def test_the_run_of_high_readings_survives_a_new_worker(store, settings):
    """The memory guard may replace the worker between two readings: the count goes on."""
    nvml = fake_nvml([11.8], total_gb=12)
    first = maintenance.GpuMemoryWatch.for_settings(settings, store)
    maintenance.check_gpu_memory(store, settings, first, nvml)
    maintenance.check_gpu_memory(store, settings, first, nvml)
    second = maintenance.GpuMemoryWatch.for_settings(settings, store)  # a fresh worker
    assert second.consecutive == {0: 2}
    assert maintenance.check_gpu_memory(store, settings, second, nvml)["alerted"] == [0]


def test_gpu_alert_threshold_in_mb_and_cpu_mode(tmp_path, store, settings):
    watch = maintenance.GpuMemoryWatch(95, threshold_mb=4096, readings=1)
    seen = maintenance.check_gpu_memory(store, settings, watch, fake_nvml([4.5]))
    assert seen["alerted"] == [0]
    cpu = maintenance.check_gpu_memory(store, settings, watch, fake_nvml(available=False))
    assert cpu["summary"].startswith("CPU mode") and cpu["gpus"] == []


def test_an_unreachable_webhook_is_noted_not_raised(tmp_path, store):
    from tests.procs import free_port

    settings = make_settings(
        tmp_path / "data",
        alert_webhook_url=f"http://127.0.0.1:{free_port()}/hook",
        alert_smtp=f"smtp://127.0.0.1:{free_port()}",
        alert_email_to="ops@example.com",
    )
    settings.ensure_dirs()
    watch = maintenance.GpuMemoryWatch(95, 0, 1)
    maintenance.check_gpu_memory(store, settings, watch, fake_nvml([11.9]))
    (alert,) = [e for e in store.events() if e["kind"] == "alert.gpu_memory"]
    delivery = json.loads(alert["data"])["delivery"]
    assert delivery["alert log"] == "ok"
    assert delivery["webhook"].startswith("failed") and delivery["e-mail"].startswith("failed")


class _Smtp(socketserver.StreamRequestHandler):
    """Just enough of an SMTP server (RFC 5321) to receive one message; no STARTTLS."""

    def handle(self):
        def say(text: str) -> None:
            self.wfile.write(text.encode() + b"\r\n")

        say("220 test ESMTP")
        body: list[str] | None = None
        for raw in self.rfile:
            line = raw.decode().rstrip("\r\n")
            if body is not None:
                if line == ".":
                    self.server.messages.append("\n".join(body))  # type: ignore[attr-defined]
                    body = None
                    say("250 queued")
                else:
                    body.append(line)
                continue
            verb = line[:4].upper()
            if verb == "EHLO":
                say("250-test")
                say("250 8BITMIME")
            elif verb == "DATA":
                body = []
                say("354 end with .")
            elif verb == "QUIT":
                say("221 bye")
                return
            else:  # MAIL, RCPT, RSET, NOOP
                say("250 ok")


@pytest.fixture
def smtp_server():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Smtp)
    server.daemon_threads = True
    server.messages = []  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_alert_e_mail_goes_through_smtp_and_a_password_needs_tls(tmp_path, store, smtp_server):
    port = smtp_server.server_address[1]
    settings = make_settings(
        tmp_path / "data",
        alert_smtp=f"smtp://127.0.0.1:{port}",
        alert_email_to="ops@example.com, oncall@example.com",
        alert_email_from="asr@example.com",
    )
    delivery = alerts.raise_alert(store, settings, "gpu_memory", "GPU 0 is nearly full.")
    assert delivery.channels == {"alert log": "ok", "e-mail": "ok"}
    (message,) = smtp_server.messages
    assert "Subject: [seaco-asr] gpu_memory" in message
    assert "To: ops@example.com, oncall@example.com" in message
    assert "GPU 0 is nearly full." in message
    # credentials over a server without STARTTLS: refused, nothing sent
    with_password = make_settings(
        tmp_path / "data",
        alert_smtp=f"smtp://ops:secret@127.0.0.1:{port}",
        alert_email_to="ops@example.com",
    )
    refused = alerts.raise_alert(store, with_password, "gpu_memory", "again")
    assert "no STARTTLS" in refused.channels["e-mail"] and len(smtp_server.messages) == 1


# --- audio retention ------------------------------------------------------------------------
def test_retention_deletes_old_audio_and_keeps_transcripts(store, settings):
    now = 400 * DAY_MS
    old = now - 40 * DAY_MS

    def audio_file(sha: str, mtime_ms: int):
        path = settings.data_dir / "audio" / sha[:2] / sha
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"RIFF" * 10)
        os.utime(path, (mtime_ms / 1000, mtime_ms / 1000))
        return path

    def job(sha: str, submitted: int) -> int:
        return add_finished_job(
            store,
            submitted_at=submitted,
            wait_ms=10,
            processing_ms=100,
            audio_ms=1000,
            sha=sha,
            audio_path=f"audio/{sha[:2]}/{sha}",
        )

    expired = audio_file("a" * 64, old)
    expired_job = job("a" * 64, old)
    shared = audio_file("b" * 64, old)  # an old job and a recent one share this file
    job("b" * 64, old)
    job("b" * 64, now - DAY_MS)
    fresh_file = audio_file("c" * 64, now - 60_000)  # re-uploaded a minute ago
    job("c" * 64, old)

    result = maintenance.purge_old_audio(store, settings.data_dir, 30, now=now)

    assert (result.files, result.skipped) == (1, 1)
    assert not expired.exists() and shared.exists() and fresh_file.exists()
    kept = store.get(expired_job)
    assert kept.state is JobState.DONE and kept.text == "好。" and kept.sentences
    # done once: the next run finds nothing more to do for it
    again = maintenance.purge_old_audio(store, settings.data_dir, 30, now=now)
    assert again.files == 0 and again.skipped == 1


def test_orphan_audio_left_by_a_refused_upload_is_swept_after_an_hour(tmp_path):
    import io
    import sqlite3

    from engine.errors import DatabaseBusyError
    from engine.intake import submit_upload
    from engine.store import open_store
    from tests.audio_fixtures import tone, write_audio

    settings = make_settings(tmp_path / "data")
    settings.ensure_dirs()
    store = open_store(settings.db_path, busy_timeout_s=0.2)
    kept = submit_upload(
        store,
        settings,
        write_audio(tmp_path / "k.wav", tone(1.0), 16000, "wav").open("rb"),
        "kept.wav",
    )
    blocker = sqlite3.connect(settings.db_path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    refused = write_audio(tmp_path / "r.wav", tone(1.0, freq=700), 16000, "wav").read_bytes()
    with pytest.raises(DatabaseBusyError):
        submit_upload(store, settings, io.BytesIO(refused), "refused.wav")
    blocker.execute("ROLLBACK")
    blocker.close()
    stored = {p.name: p for p in settings.audio_dir.glob("??/*")}
    assert len(stored) == 2  # the refused upload's file stayed behind
    operators = settings.audio_dir / "ab" / "notes.txt"  # not named like ours
    operators.parent.mkdir(exist_ok=True)
    operators.write_text("an operator's file")

    soon = maintenance.remove_orphan_audio(store, settings.audio_dir)  # it may be in flight
    assert soon == maintenance.OrphanSweep(0, 0) and set(stored) <= {
        p.name for p in settings.audio_dir.glob("??/*")
    }

    later = time.time() + 2 * 3600
    swept = maintenance.remove_orphan_audio(store, settings.audio_dir, now=later)
    assert swept.removed == 1 and swept.bytes == len(refused)
    assert {p.name for p in settings.audio_dir.glob("??/*")} == {kept.audio_sha256, "notes.txt"}
    assert operators.exists()

    # recorded as part of the temp cleanup's event
    both = maintenance.TempCleanup(maintenance.clean_temp(settings.tmp_dir, 3600), swept)
    result = maintenance.run(store, "temp_cleanup", lambda: both, maintenance.describe_cleanup)
    event = store.events(limit=1)[0]
    assert "Deleted 1 stored audio files no job uses" in event["message"]
    assert json.loads(event["data"])["orphans"]["removed"] == 1 and result.orphans == swept


# --- VACUUM ---------------------------------------------------------------------------------
def test_vacuum_waits_for_an_idle_queue(store):
    job = queue_one(store)
    assert maintenance.vacuum_database(store) == {"skipped": True, "queued": 1, "running": 0}
    store.cancel(job.id)
    result = maintenance.vacuum_database(store)
    assert result["skipped"] is False and result["bytes_after"] > 0


# --- recording runs and the schedule --------------------------------------------------------
def test_each_run_is_an_event_and_a_failure_does_not_raise(store):
    maintenance.run(
        store,
        "temp_cleanup",
        lambda: maintenance.Cleanup(3, 2048, 1),
        lambda r: f"Removed {r.removed} files.",
    )

    def broken():
        raise PermissionError("tmp is read-only")

    assert maintenance.run(store, "log_rotate", broken, str) is None
    failed, ran = store.events(2)
    assert (ran["kind"], ran["level"], ran["message"]) == (
        "maintenance.temp_cleanup",
        "info",
        "Removed 3 files.",
    )
    assert json.loads(ran["data"])["removed"] == 3
    assert failed["kind"] == "maintenance.log_rotate" and failed["level"] == "error"
    assert "PermissionError: tmp is read-only" in failed["message"]


def test_register_adds_every_configured_task(tmp_path, store):
    settings = make_settings(tmp_path, vacuum_cron="off", audio_retention_days="30")
    scheduler = BackgroundScheduler(timezone="UTC")
    maintenance.register(scheduler, settings, store)
    ids = {job.id for job in scheduler.get_jobs()}
    assert ids == {
        "maintenance.log_rotate",
        "maintenance.temp_cleanup",
        "maintenance.gpu_check",
        "maintenance.audio_retention",
    }
    without_retention = BackgroundScheduler(timezone="UTC")
    maintenance.register(without_retention, make_settings(tmp_path), store)
    assert "maintenance.audio_retention" not in {j.id for j in without_retention.get_jobs()}


def test_a_run_missed_while_no_worker_ran_is_made_up_once(tmp_path, store):
    settings = make_settings(tmp_path, log_rotate_cron="0 0 * * *", vacuum_cron="off")
    now = time.time() * 1000
    store.add_event("maintenance.log_rotate", "Rotated.", now=int(now - 2 * DAY_MS))
    store.add_event("maintenance.temp_cleanup", "Removed 0 files.", now=int(now - 60_000))
    scheduler = BackgroundScheduler(timezone="UTC")
    maintenance.register(scheduler, settings, store)
    ids = {job.id for job in scheduler.get_jobs()}
    # rotation last ran two days ago: made up; temp cleanup ran a minute ago (every 2 h): not;
    # audio retention never ran (a new installation): nothing to make up; GPU check: never
    assert {i for i in ids if i.endswith(".catch_up")} == {"maintenance.log_rotate.catch_up"}
    notice = store.events(1)[0]
    assert (
        notice["kind"] == "maintenance.catch_up"
        and "Log rotation was due at" in (notice["message"])
    )
    # the catch-up job is the task itself: running it records a log_rotate event, after which
    # a new worker finds nothing missed
    scheduler.get_job("maintenance.log_rotate.catch_up").func()
    assert store.last_event_at("maintenance.log_rotate") > now
    again = BackgroundScheduler(timezone="UTC")
    maintenance.register(again, settings, store)
    assert not [j.id for j in again.get_jobs() if j.id.endswith(".catch_up")]


def test_missed_run_is_the_first_due_time_after_the_last_run():
    utc = dt.timezone.utc
    midnight = cron.cron_trigger("0 0 * * *", utc)
    ran = dt.datetime(2026, 1, 1, 0, 0, 2, tzinfo=utc)  # the run at midnight took 2 s
    ms = int(ran.timestamp() * 1000)
    assert maintenance.missed_run(midnight, ms, ran + dt.timedelta(hours=23)) is None
    assert maintenance.missed_run(midnight, ms, ran + dt.timedelta(hours=30)) == dt.datetime(
        2026, 1, 2, tzinfo=utc
    )


def test_cron_settings_read_like_crontab():
    utc = dt.timezone.utc
    thursday = dt.datetime(2026, 1, 1, tzinfo=utc)
    sunday = cron.cron_trigger("0 3 * * 0", utc).get_next_fire_time(None, thursday)
    assert sunday == dt.datetime(2026, 1, 4, 3, 0, tzinfo=utc)  # Sunday, as crontab means
    assert cron.cron_trigger("0 3 * * 7", utc).get_next_fire_time(None, thursday) == sunday
    weekdays = cron.cron_trigger("30 1 * * 1-5", utc).get_next_fire_time(None, thursday)
    assert weekdays == dt.datetime(2026, 1, 1, 1, 30, tzinfo=utc)
    every_2h = cron.cron_trigger("0 */2 * * *", utc).get_next_fire_time(None, thursday)
    assert every_2h == thursday
    assert load_settings({"SEACO_VACUUM_CRON": " OFF "}, env_file=None).vacuum_cron == "off"
    with pytest.raises(ConfigError, match="SEACO_LOG_ROTATE_CRON"):
        load_settings({"SEACO_LOG_ROTATE_CRON": "0 25 * * *"}, env_file=None)
    with pytest.raises(ConfigError, match="5 fields"):
        load_settings({"SEACO_TEMP_CLEANUP_CRON": "0 * *"}, env_file=None)
