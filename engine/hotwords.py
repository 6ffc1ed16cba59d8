"""Hotword lists: parsing what people type, merging job and default lists.

SeACo-Paraformer takes hotwords as one space-separated string, so a hotword cannot contain
whitespace; commas (ASCII or full-width), 、 and semicolons also separate words because that is
how people write lists in Chinese.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

_SEPARATORS = re.compile(r"[\s,，、;；]+")


def _clean(word: str) -> str:
    return "".join(ch for ch in word if unicodedata.category(ch)[0] != "C").strip()


def parse_hotwords(text: str | None) -> list[str]:
    """'科哥, Paraformer；阿里' -> ['科哥', 'Paraformer', '阿里'], order kept, no duplicates."""
    if not text:
        return []
    return merge_hotwords(_SEPARATORS.split(text), None)


def merge_hotwords(
    job_hotwords: Iterable[str] | str | None, default_hotwords: Iterable[str] | str | None
) -> list[str]:
    """The job's words first, then the defaults; trimmed, de-duplicated (Latin letters
    compared case-insensitively), order kept."""
    merged: list[str] = []
    seen: set[str] = set()
    for source in (job_hotwords, default_hotwords):
        if source is None:
            continue
        words = _SEPARATORS.split(source) if isinstance(source, str) else source
        for raw in words:
            for word in _SEPARATORS.split(_clean(str(raw))):
                key = word.casefold()
                if word and key not in seen:
                    seen.add(key)
                    merged.append(word)
    return merged


def hotword_argument(hotwords: list[str]) -> str | None:
    """What funasr's generate() expects: a space-separated string, or None for none.
    (An empty string would still switch the bias path on.)"""
    return " ".join(hotwords) if hotwords else None


DEFAULT_HOTWORDS_KEY = "default_hotwords"


def default_hotwords(store, settings) -> list[str]:
    """The operator's default list: as edited in the dashboard (kept in the store), else
    SEACO_HOTWORDS. Read per job, so an edit applies to the next job without a restart."""
    stored = store.get_setting(DEFAULT_HOTWORDS_KEY)
    return parse_hotwords(settings.hotwords if stored is None else stored)


def save_default_hotwords(store, text: str) -> list[str]:
    """Store the operator's list (normalised) and return it."""
    words = parse_hotwords(text)
    store.set_setting(DEFAULT_HOTWORDS_KEY, ", ".join(words))
    return words
