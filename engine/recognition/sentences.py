"""From funasr's output (punctuated text, timestamps) to our sentences and raw text.

funasr's own `sentence_info` is wrong as soon as VAD cuts the audio into several segments (see
`build_sentences`), so sentences are rebuilt here. Split from engine/recognition/pipeline.py as the
one place that turns funasr's text into what the store and the pages show.
"""

from __future__ import annotations

from typing import Any

from engine.jobs import Sentence, Word  # one sentence type from model to store to page


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


# One sentence before clamping: its text, funasr's start and end (ms, floats as funasr gives
# them) and its units, each (text, start, end).
_RawSentence = tuple[str, float, float, list[tuple[str, float, float]]]


def build_sentences(
    text: str, timestamps: list[Any], sentence_info: list[dict[str, Any]], duration_ms: int
) -> list[Sentence]:
    """Sentences of the punctuated text, each with the times of its first and last unit and
    every unit's own times (`Sentence.words`).

    funasr 1.4.16's own `sentence_info` is wrong as soon as VAD cut the audio into more than
    one segment: it joins the segments' Chinese text without a space but then splits that
    text on spaces and zips it with the per-character timestamps and punctuation ids, so
    every sentence after the first segment boundary gets its neighbours' characters and
    times, and the last ones come out as a bare "。". So sentences are rebuilt here from the
    punctuated text and `timestamp` (one [start, end] in ms per character or English word,
    already shifted by the VAD offsets), split after every punctuation mark as funasr does.
    Each unit becomes a `Word` (a Chinese character or a Latin word; punctuation has no time
    of its own and is in no word). If the units and timestamps do not pair up one to one,
    funasr's `sentence_info` is used, and the sentences have no words.

    Times are whole ms within [0, duration_ms]; sentence starts never decrease, and neither
    do word starts, which are never before their sentence's start; every end is at or after
    its start.
    """
    spans = _split_units(text)
    n_units = sum(len(units) for _, units in spans)
    raw: list[_RawSentence] = []
    if spans and n_units == len(timestamps):
        index = 0
        for sentence_text, units in spans:
            if units:
                times = timestamps[index : index + len(units)]
                words = [
                    (unit, float(t[0]), float(t[1])) for unit, t in zip(units, times, strict=True)
                ]
                raw.append((sentence_text, words[0][1], words[-1][2], words))
                index += len(units)
            elif raw:  # punctuation with no unit of its own: belongs to the sentence before
                prev_text, start, end, words = raw[-1]
                raw[-1] = (prev_text + sentence_text, start, end, words)
    else:
        for item in sentence_info:
            piece = str(item.get("text", ""))
            start = float(item.get("start", 0))
            end = float(item.get("end", start))
            if any(not ch.isspace() and ch not in _PUNCTUATION for ch in piece) or not raw:
                raw.append((piece, start, end, []))
            else:
                prev_text, prev_start, prev_end, _ = raw[-1]
                raw[-1] = (prev_text + piece, prev_start, max(prev_end, end), [])
    out: list[Sentence] = []
    previous_start = 0
    previous_word_start = 0
    for piece, start_f, end_f, unit_times in raw:
        piece = piece.strip()
        if not piece:
            continue
        start = _clamp(start_f, previous_start, duration_ms)
        end = _clamp(end_f, start, duration_ms)
        timed: list[Word] = []
        for unit, unit_start_f, unit_end_f in unit_times:
            unit_start = _clamp(unit_start_f, max(previous_word_start, start), duration_ms)
            timed.append(Word(unit, unit_start, _clamp(unit_end_f, unit_start, duration_ms)))
            previous_word_start = unit_start
        out.append(Sentence(text=piece, start_ms=start, end_ms=end, words=tuple(timed)))
        previous_start = start
    return out


def _clamp(ms: float, low: int, high: int) -> int:
    """`ms` rounded to a whole ms, at least `low` and 0, at most `high`."""
    return min(max(int(round(ms)), low, 0), high)


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
