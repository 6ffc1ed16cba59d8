"""Operations in the store: events, telemetry, probes, windows of history, maintenance.

What the Operations, Stability and System pages read and what maintenance writes: nothing
here touches a job's lifecycle, so it is kept apart from the worker's side
(engine/store/job_queue.py) and the job read side (engine/store/jobstore.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from engine.store.database import Database, now_ms

# Columns a telemetry row may carry (what add_telemetry accepts; anything else is ignored).
_OPS_COLUMNS = {
    "telemetry": frozenset(
        (
            "at",
            "resolution_s",
            "samples",
            "cpu_pct",
            "ram_used_bytes",
            "ram_total_bytes",
            "rss_bytes",
            "rss_peak_bytes",
            "queue_depth",
            "running_jobs",
            "vram_used_bytes",
            "vram_peak_bytes",
            "vram_total_bytes",
            "gpu_util_pct",
        )
    ),
    "gpu_telemetry": frozenset(
        (
            "at",
            "resolution_s",
            "samples",
            "gpu",
            "name",
            "memory_used_bytes",
            "memory_peak_bytes",
            "memory_total_bytes",
            "utilization_pct",
            "temperature_c",
            "power_w",
        )
    ),
}


def _wmean(column: str) -> str:
    """SQL for a sample-weighted mean of `column` (a 1-minute row holds `samples` samples)."""
    return f"(sum({column} * samples) / sum(CASE WHEN {column} IS NOT NULL THEN samples END))"


class OperationsSide(Database):
    """Events, telemetry and probes, history windows, retention and database upkeep."""

    # --- events --------------------------------------------------------------------------------
    def add_event(
        self,
        kind: str,
        message: str,
        *,
        level: str = "info",
        job_id: int | None = None,
        data: dict[str, Any] | None = None,
        now: int | None = None,
    ) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO events (at, level, kind, message, job_id, data)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    now_ms() if now is None else now,
                    level,
                    kind,
                    message,
                    job_id,
                    json.dumps(data, ensure_ascii=False) if data is not None else None,
                ),
            )

    def events(self, limit: int = 50) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM events ORDER BY id DESC LIMIT ?", (max(0, limit),))

    # --- operations: telemetry, probes, windows of history, maintenance -----------------------
    def add_telemetry(
        self, samples: list[dict[str, Any]], gpus: list[dict[str, Any]] | None = None
    ) -> None:
        """Store raw telemetry samples (columns of `telemetry`) and per-GPU readings (columns
        of `gpu_telemetry`) in one transaction; several at once for back-fills and tests."""
        with self._write() as conn:
            for table, rows in (("telemetry", samples), ("gpu_telemetry", gpus or [])):
                for row in rows:
                    columns = [c for c in row if c in _OPS_COLUMNS[table]]
                    conn.execute(
                        f"INSERT INTO {table} ({', '.join(columns)})"
                        f" VALUES ({', '.join('?' * len(columns))})",
                        [row[c] for c in columns],
                    )

    def add_probe(
        self,
        *,
        at: int,
        healthy: bool,
        http_status: int | None,
        status: str | None,
        latency_ms: float | None,
        error: str | None = None,
    ) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO probes (at, healthy, http_status, status, latency_ms, error)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (at, int(healthy), http_status, status, latency_ms, error),
            )

    def telemetry_series(self, start: int, end: int, bucket_ms: int) -> list[dict[str, Any]]:
        """Telemetry in [start, end) folded into buckets of `bucket_ms`: sample-weighted means,
        and the smallest and largest memory values, per bucket, oldest first. Raw samples and
        1-minute means are read alike (each minute row weighs as many samples as it holds)."""
        b = max(1, int(bucket_ms))
        return self._rows(
            f"""SELECT (at / {b}) * {b} AS at, sum(samples) AS samples,
                   {_wmean("cpu_pct")} AS cpu_pct,
                   {_wmean("ram_used_bytes")} AS ram_used_bytes,
                   min(ram_used_bytes) AS ram_min_bytes, max(ram_used_bytes) AS ram_max_bytes,
                   max(ram_total_bytes) AS ram_total_bytes,
                   {_wmean("rss_bytes")} AS rss_bytes, min(rss_bytes) AS rss_min_bytes,
                   max(coalesce(rss_peak_bytes, rss_bytes)) AS rss_peak_bytes,
                   {_wmean("queue_depth")} AS queue_depth, max(queue_depth) AS queue_max,
                   {_wmean("running_jobs")} AS running_jobs,
                   {_wmean("vram_used_bytes")} AS vram_used_bytes,
                   min(vram_used_bytes) AS vram_min_bytes,
                   max(coalesce(vram_peak_bytes, vram_used_bytes)) AS vram_peak_bytes,
                   max(vram_total_bytes) AS vram_total_bytes,
                   {_wmean("gpu_util_pct")} AS gpu_util_pct
               FROM telemetry WHERE at >= ? AND at < ?
               GROUP BY (at / {b}) ORDER BY 1""",
            (int(start), int(end)),
        )

    def gpu_series(self, start: int, end: int, bucket_ms: int) -> list[dict[str, Any]]:
        """Per-GPU telemetry in [start, end) in buckets, like telemetry_series."""
        b = max(1, int(bucket_ms))
        return self._rows(
            f"""SELECT (at / {b}) * {b} AS at, gpu, max(name) AS name,
                   {_wmean("memory_used_bytes")} AS memory_used_bytes,
                   max(coalesce(memory_peak_bytes, memory_used_bytes)) AS memory_peak_bytes,
                   max(memory_total_bytes) AS memory_total_bytes,
                   {_wmean("utilization_pct")} AS utilization_pct,
                   {_wmean("temperature_c")} AS temperature_c, {_wmean("power_w")} AS power_w
               FROM gpu_telemetry WHERE at >= ? AND at < ?
               GROUP BY (at / {b}), gpu ORDER BY 1, 2""",
            (int(start), int(end)),
        )

    def probes_between(self, start: int, end: int) -> list[dict[str, Any]]:
        return self._rows(
            "SELECT * FROM probes WHERE at >= ? AND at < ? ORDER BY at", (int(start), int(end))
        )

    def first_probe_at(self) -> int | None:
        return self.conn.execute("SELECT min(at) FROM probes").fetchone()[0]

    def finished_jobs_between(self, start: int, end: int) -> list[dict[str, Any]]:
        """Jobs that reached a final state in [start, end), oldest first, with what the
        operations pages need (no transcripts)."""
        return self._rows(
            """SELECT id, state, priority, source, original_name, attempts, submitted_at,
                   started_at, finished_at, queue_wait_ms, decode_ms, inference_ms, total_ms,
                   rtf, duration_ms, error, error_class, worker_host, worker_slot
               FROM jobs WHERE finished_at >= ? AND finished_at < ? ORDER BY finished_at""",
            (int(start), int(end)),
        )

    def jobs_by_worker(self) -> list[dict[str, Any]]:
        """Done and failed jobs per worker that ran them (host, slot; NULL for jobs finished
        before workers were recorded): `state`, `jobs`, `audio_ms` and `processing_ms`
        summed, for /metrics."""
        return self._rows(
            """SELECT worker_host, worker_slot, state, count(*) AS jobs,
                   coalesce(sum(duration_ms), 0) AS audio_ms,
                   coalesce(sum(total_ms), 0) AS processing_ms
               FROM jobs WHERE state IN ('done', 'failed')
               GROUP BY worker_host, worker_slot, state
               ORDER BY worker_host, worker_slot, state"""
        )

    def last_event_at(self, kind: str) -> int | None:
        """When an event of exactly this kind was last recorded (epoch ms); None if never."""
        return self.conn.execute("SELECT max(at) FROM events WHERE kind = ?", (kind,)).fetchone()[0]

    def events_between(
        self, start: int, end: int, *, kinds: tuple[str, ...] = (), levels: tuple[str, ...] = ()
    ) -> list[dict[str, Any]]:
        """Events in [start, end), newest first; `kinds` are prefixes ("maintenance." matches
        every maintenance task), `levels` exact levels; empty means any."""
        clauses = ["at >= ?", "at < ?"]
        params: list[int | str] = [int(start), int(end)]
        if kinds:
            clauses.append("(" + " OR ".join("kind LIKE ? ESCAPE '\\'" for _ in kinds) + ")")
            params += [
                k.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%" for k in kinds
            ]
        if levels:
            clauses.append(f"level IN ({', '.join('?' * len(levels))})")
            params += list(levels)
        rows = self._rows(
            f"SELECT * FROM events WHERE {' AND '.join(clauses)} ORDER BY at DESC, id DESC",
            tuple(params),
        )
        for row in rows:
            row["data"] = json.loads(row["data"]) if row["data"] else None
        return rows

    def downsample_telemetry(self, raw_before: int, drop_before: int) -> dict[str, int]:
        """Retention: rows and probes older than `drop_before` are deleted, then raw samples
        older than `raw_before` become one row per minute (the minute's means and peaks).
        `raw_before` is rounded down to a whole minute so no minute is ever folded in two
        parts. One transaction: a reader sees before or after."""
        raw_before = int(raw_before) - int(raw_before) % 60_000
        with self._write() as conn:
            dropped = 0
            for table in ("telemetry", "gpu_telemetry", "probes"):
                dropped += conn.execute(
                    f"DELETE FROM {table} WHERE at < ?", (int(drop_before),)
                ).rowcount
            folded = conn.execute(
                "SELECT count(*) FROM telemetry WHERE resolution_s = 0 AND at < ?", (raw_before,)
            ).fetchone()[0]
            conn.execute(
                """INSERT INTO telemetry (at, resolution_s, samples, cpu_pct, ram_used_bytes,
                       ram_total_bytes, rss_bytes, rss_peak_bytes, queue_depth, running_jobs,
                       vram_used_bytes, vram_peak_bytes, vram_total_bytes, gpu_util_pct)
                   SELECT (at / 60000) * 60000, 60, count(*), avg(cpu_pct),
                       avg(ram_used_bytes), max(ram_total_bytes), avg(rss_bytes),
                       max(coalesce(rss_peak_bytes, rss_bytes)), avg(queue_depth),
                       avg(running_jobs), avg(vram_used_bytes),
                       max(coalesce(vram_peak_bytes, vram_used_bytes)), max(vram_total_bytes),
                       avg(gpu_util_pct)
                   FROM telemetry WHERE resolution_s = 0 AND at < ?
                   GROUP BY at / 60000""",
                (raw_before,),
            )
            conn.execute(
                """INSERT INTO gpu_telemetry (at, resolution_s, samples, gpu, name,
                       memory_used_bytes, memory_peak_bytes, memory_total_bytes,
                       utilization_pct, temperature_c, power_w)
                   SELECT (at / 60000) * 60000, 60, count(*), gpu, max(name),
                       avg(memory_used_bytes), max(coalesce(memory_peak_bytes, memory_used_bytes)),
                       max(memory_total_bytes), avg(utilization_pct), avg(temperature_c),
                       avg(power_w)
                   FROM gpu_telemetry WHERE resolution_s = 0 AND at < ?
                   GROUP BY at / 60000, gpu""",
                (raw_before,),
            )
            for table in ("telemetry", "gpu_telemetry"):
                conn.execute(
                    f"DELETE FROM {table} WHERE resolution_s = 0 AND at < ?", (raw_before,)
                )
        return {"folded": folded, "dropped": dropped}

    def audio_to_purge(self, finished_before: int) -> list[dict[str, Any]]:
        """Audio files (by content hash) whose jobs have all finished before
        `finished_before` and that have not been purged yet: what the retention deletes."""
        return self._rows(
            """SELECT audio_sha256, max(audio_path) AS audio_path,
                   sum(audio_bytes) / count(*) AS audio_bytes
               FROM jobs GROUP BY audio_sha256
               HAVING sum(audio_purged_at IS NULL) > 0
                  AND sum(state IN ('queued', 'running')) = 0
                  AND max(coalesce(finished_at, submitted_at)) < ?""",
            (int(finished_before),),
        )

    def purge_audio(
        self, sha256: str, finished_before: int, remove: Callable[[], bool], now: int
    ) -> bool:
        """Under the write lock (no job can be queued on the file meanwhile), check that the
        file is still unused since `finished_before`, call `remove` (which deletes it and says
        whether it did) and mark its jobs' audio as purged. False when it is in use again."""
        with self._write() as conn:
            row = conn.execute(
                """SELECT sum(state IN ('queued', 'running')),
                       max(coalesce(finished_at, submitted_at))
                   FROM jobs WHERE audio_sha256 = ?""",
                (sha256,),
            ).fetchone()
            if row[0] is None or row[0] or row[1] >= finished_before:
                return False
            if not remove():
                return False
            conn.execute(
                "UPDATE jobs SET audio_purged_at = ? WHERE audio_sha256 = ?"
                " AND audio_purged_at IS NULL",
                (now, sha256),
            )
        return True

    def vacuum(self) -> dict[str, int]:
        """VACUUM (rebuild the file, returning free pages to the disk), ANALYZE (fresh
        statistics for the query planner), then truncate the WAL. Blocks writers meanwhile,
        which is why maintenance runs it only when no job is queued or running."""
        before = self.database_bytes()
        self.conn.execute("VACUUM")
        self.conn.execute("ANALYZE")
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return {"bytes_before": before, "bytes_after": self.database_bytes()}

    def check(self) -> None:
        """A cheap query that fails when the database is unusable (for /health)."""
        self.conn.execute("SELECT count(*) FROM schema_migrations").fetchone()

    def database_bytes(self) -> int:
        """jobs.db with its WAL, for the System page."""
        return sum(
            p.stat().st_size
            for p in (self.db_path, self.db_path.with_name(self.db_path.name + "-wal"))
            if p.exists()
        )
