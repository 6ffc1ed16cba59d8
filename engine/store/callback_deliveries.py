"""The store's part for job-completion callbacks (schema/007): which deliveries are due and
what became of each attempt. engine/callbacks.py does the HTTP; this module only the SQL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.store.database import Database, now_ms


@dataclass(frozen=True)
class DueCallback:
    job_id: int
    url: str
    attempts: int  # made so far


class CallbackSide(Database):
    def callbacks_due(self, now: int | None = None, limit: int = 20) -> list[DueCallback]:
        """Undelivered callbacks of final jobs whose next attempt is due, oldest job first."""
        now = now_ms() if now is None else now
        rows = self.conn.execute(
            """SELECT c.job_id, c.url, c.attempts FROM callbacks c JOIN jobs j ON j.id = c.job_id
               WHERE c.delivered_at IS NULL AND c.gave_up_at IS NULL
                 AND (c.next_at IS NULL OR c.next_at <= ?)
                 AND j.state IN ('done', 'failed', 'cancelled')
               ORDER BY j.finished_at, c.job_id LIMIT ?""",
            (now, max(1, limit)),
        ).fetchall()
        return [DueCallback(r[0], r[1], r[2]) for r in rows]

    def record_callback_attempt(
        self,
        job_id: int,
        *,
        attempts: int,
        status: int | None,
        error: str | None,
        next_at: int | None = None,
        gave_up: bool = False,
        now: int | None = None,
    ) -> None:
        """One attempt's outcome: delivered (no `error`), to be tried again at `next_at`, or
        given up."""
        now = now_ms() if now is None else now
        delivered_at = now if error is None else None
        with self._write() as conn:
            conn.execute(
                """UPDATE callbacks SET attempts = ?, last_status = ?, last_error = ?,
                       next_at = ?, delivered_at = ?, gave_up_at = ? WHERE job_id = ?""",
                (attempts, status, error, next_at, delivered_at, now if gave_up else None, job_id),
            )

    def callback_for(self, job_id: int) -> dict[str, Any] | None:
        """The job's callback and its delivery so far; None when it has none."""
        rows = self._rows("SELECT * FROM callbacks WHERE job_id = ?", (job_id,))
        return rows[0] if rows else None
