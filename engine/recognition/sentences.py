"""From funasr's output (punctuated text, timestamps) to our sentences and raw text.

funasr's own `sentence_info` is wrong as soon as VAD cuts the audio into several segments
(see `build_sentences`), so sentences are rebuilt here. Split from engine/asr.py as the one
place that turns funasr's text into what the store and the pages show.
"""

from __future__ import annotations

from typing import Any

from engine.jobs import Sentence  # one sentence type from model to store to page


def _is_cjk(ch: str) -> bool:
    return "\u3400" <= ch <= "\u9fff" or "\u3000" <= ch <= "\u303f" or "\uff00" <= ch <= "\uffef"


def join_tokens(text: str) -> str:
    """funasr's raw text has a space between every character: drop spaces between CJK."""
    words = text.split()
    if not words:
        return ""
    out = words[0]
    for word in words[1:]:
        out += ("" if _is_cjk(out[-1]) and _is_cjk(word[0]) else " ") + word
    return out


_PUNCTUATION = frozenset("，。？！、；：,.?!;:")


def build_sentences(
    text: str, timestamps: list[Any], sentence_info: list[dict[str, Any]], duration_ms: int
) -> list[Sentence]:
    """Sentences of the punctuated text, each with the times of its first and last unit.

    funasr 1.4.16's own `sentence_info` is wrong as soon as VAD cut the audio into more than
    one segment: it joins the segments' Chinese text without a space but then splits that
    text on spaces and zips it with the per-character timestamps and punctuation ids, so
    every sentence after the first segment boundary gets its neighbours' characters and
    times, and the last ones come out as a bare "。". So sentences are rebuilt here from the
    punctuated text and `timestamp` (one [start, end] per character or English word, already
    shifted by the VAD offsets), split after every punctuation mark as funasr does. If the
    units and timestamps do not pair up one to one, funasr's `sentence_info` is used.
    """
    spans = _split_units(text)
    n_units = sum(len(units) for _, units in spans)
    if spans and n_units == len(timestamps):
        raw: list[tuple[str, float, float]] = []
        index = 0
        for sentence_text, units in spans:
            if units:
                first, last = timestamps[index], timestamps[index + len(units) - 1]
                raw.append((sentence_text, float(first[0]), float(last[1])))
                index += len(units)
            elif raw:  # punctuation with no unit of its own: belongs to the sentence before
                prev_text, start, end = raw[-1]
                raw[-1] = (prev_text + sentence_text, start, end)
    else:
        raw = []
        for item in sentence_info:
            piece = str(item.get("text", ""))
            start = float(item.get("start", 0))
            end = float(item.get("end", start))
            if any(not ch.isspace() and ch not in _PUNCTUATION for ch in piece) or not raw:
                raw.append((piece, start, end))
            else:
                prev_text, prev_start, prev_end = raw[-1]
                raw[-1] = (prev_text + piece, prev_start, max(prev_end, end))
    out: list[Sentence] = []
    previous_start = 0
    for piece, start_f, end_f in raw:
        piece = piece.strip()
        if not piece:
            continue
        start = min(max(int(round(start_f)), previous_start, 0), duration_ms)
        end = min(max(int(round(end_f)), start), duration_ms)
        out.append(Sentence(text=piece, start_ms=start, end_ms=end))
        previous_start = start
    return out


def _split_units(text: str) -> list[tuple[str, list[str]]]:
    """Split punctuated text into sentences (after each punctuation mark) and their units.

    A unit is what carries one timestamp: a non-ASCII character (funasr splits Chinese into
    characters) or a run of ASCII characters (an English word), as funasr's `split_words`.
    """
    sentences: list[tuple[str, list[str]]] = []
    current = ""
    units: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in _PUNCTUATION:
            current += ch
            sentences.append((current, units))
            current, units = "", []
            i += 1
        elif ch.isspace():
            current += ch
            i += 1
        elif ch.isascii():
            j = i
            while j < len(text) and text[j].isascii() and not text[j].isspace():
                if text[j] in _PUNCTUATION:
                    break
                j += 1
            units.append(text[i:j])
            current += text[i:j]
            i = j
        else:
            units.append(ch)
            current += ch
            i += 1
    if current.strip():
        sentences.append((current, units))
    return sentences
