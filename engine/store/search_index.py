"""Full-text search rows: how transcripts are tokenised, keyed and queried in transcript_fts.

Shared by the worker's side (engine/store/job_queue.py writes a finished job's rows) and the
read side (engine/store/jobstore.py deletes them with a job and searches them), so it is its own
small module with no imports from the rest of the store.
"""

from __future__ import annotations

import re
import unicodedata

_CJK = re.compile(r"([\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f])")
_CJK_GAP = re.compile(
    r"(?<=[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff】【]) (?=[\u3400-\u9fff\uf900-\ufaff【】])"
)


# schema/004: a transcript_fts row's rowid is job_id * FTS_ROWS_PER_JOB + sentence index, so
# one job's rows are a rowid range (its job_id column is not indexed) and rowid order is
# newest job first.
FTS_ROWS_PER_JOB = 1 << 20
_FTS_INSERT = (
    "INSERT INTO transcript_fts (rowid, body, job_id, idx, start_ms) VALUES (?, ?, ?, ?, ?)"
)
_FTS_DELETE_JOB = "DELETE FROM transcript_fts WHERE rowid BETWEEN ? AND ?"


def _fts_rowid_range(job_id: int) -> tuple[int, int]:
    return job_id * FTS_ROWS_PER_JOB, (job_id + 1) * FTS_ROWS_PER_JOB - 1


def fts_body(text: str) -> str:
    """Chinese has no spaces: index every CJK character as its own token."""
    return re.sub(r"\s+", " ", _CJK.sub(r" \1 ", text)).strip()


def fts_query(query: str) -> str | None:
    """Turn what a user typed into a safe FTS5 query: every term a quoted phrase, ANDed.

    Quoting every term means no user input is ever parsed as FTS5 syntax, so a malformed
    query cannot raise; a term with no letters or digits is dropped.
    """
    # Control characters (NUL above all, which ends the query inside SQLite) are not words.
    query = "".join(ch for ch in query if unicodedata.category(ch)[0] != "C")
    phrases = []
    for term in query.split():
        body = fts_body(term)
        if not re.search(r"\w", body):
            continue
        phrases.append('"' + body.replace('"', '""') + '"')
    return " ".join(phrases) or None
