"""Text metrics: normalisation, character error rate, hotword recall/precision, diffs.

Pure functions over strings, cheap to import anywhere (the dashboard uses `hotwords_present`,
`hotword_change` and `char_diff`; `seaco eval` uses all of it). Alignments come from
RapidFuzz's Levenshtein, a C++ edit distance that stays fast on hour-long transcripts.

Normalisation (before any scoring): Unicode NFKC (full-width letters, digits and spaces
become their ASCII forms), case folding, and every punctuation mark, symbol, control
character and space dropped. What is left is split into units: each Chinese character (or
any other non-ASCII character) is one unit, and each run of ASCII letters and digits is one
unit (a Latin word or a number), so "用Paraformer识别" is 用 / paraformer / 识 / 别. CER
counts edits over these units (strictly a mixed error rate when Latin words occur).

Hotwords, as the SeACo-Paraformer paper scores them: the reference and the hypothesis are
aligned (minimum edit distance). An occurrence of a hotword in the reference is *recalled*
when the stretch of hypothesis aligned to it is exactly the hotword; an occurrence in the
hypothesis is *correct* when the stretch of reference aligned to it is exactly the hotword.
recall = recalled / occurrences in the references; precision = correct / occurrences in the
hypotheses; F1 = 2PR / (P + R). A hotword the model writes where the speaker did not say it
therefore costs precision, and one written in the wrong place counts against both.
"""

from __future__ import annotations

import html
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from rapidfuzz.distance import Levenshtein

_APOSTROPHES = "'\u2019"


# --- normalisation --------------------------------------------------------------------------
def normalize_units(text: str | None) -> list[str]:
    """'今天，ＡＩ 很好!' -> ['今', '天', 'ai', '很', '好'] (see the module docstring)."""
    units: list[str] = []
    word: list[str] = []
    for ch in unicodedata.normalize("NFKC", text or "").casefold():
        if ch.isascii() and ch.isalnum():
            word.append(ch)
            continue
        if ch in _APOSTROPHES and word:  # "don't" stays one word, spelled "dont"
            continue
        if word:
            units.append("".join(word))
            word = []
        if ch.isspace() or unicodedata.category(ch)[0] in "PSCZ":
            continue
        units.append(ch)
    if word:
        units.append("".join(word))
    return units


def join_units(units: Sequence[str]) -> str:
    """Units back to text: Chinese joined directly, a space between two Latin words."""
    out = ""
    for unit in units:
        if out and _is_word(unit) and _is_word(out[-1]):
            out += " "
        out += unit
    return out


def normalize_text(text: str | None) -> str:
    return join_units(normalize_units(text))


def _is_word(unit: str) -> bool:
    return unit[:1].isascii() and unit[:1].isalnum()


# --- character error rate -------------------------------------------------------------------
@dataclass(frozen=True)
class EditCounts:
    """Edits turning the reference into the hypothesis, over normalised units."""

    ref_units: int = 0
    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def rate(self) -> float | None:
        """errors / reference units; None for an empty reference with a non-empty hypothesis
        (there is nothing to divide by)."""
        if self.ref_units == 0:
            return 0.0 if self.errors == 0 else None
        return self.errors / self.ref_units

    def __add__(self, other: EditCounts) -> EditCounts:
        return EditCounts(
            self.ref_units + other.ref_units,
            self.substitutions + other.substitutions,
            self.deletions + other.deletions,
            self.insertions + other.insertions,
        )


def edit_counts(reference: str, hypothesis: str) -> EditCounts:
    ref, hyp = normalize_units(reference), normalize_units(hypothesis)
    kinds = {"replace": 0, "delete": 0, "insert": 0}
    for op in Levenshtein.editops(ref, hyp):
        kinds[op.tag] += 1
    return EditCounts(len(ref), kinds["replace"], kinds["delete"], kinds["insert"])


def cer(reference: str, hypothesis: str) -> float | None:
    """Character error rate of one pair (see `EditCounts.rate`)."""
    return edit_counts(reference, hypothesis).rate


# --- hotword metrics ------------------------------------------------------------------------
@dataclass
class HotwordTally:
    """Occurrence counts for one hotword, or summed over many (see the module docstring)."""

    ref: int = 0  # occurrences in the reference(s)
    recalled: int = 0  # ... of which the hypothesis has the word at the aligned place
    hyp: int = 0  # occurrences in the hypothesis(es)
    correct: int = 0  # ... of which the reference has the word at the aligned place

    @property
    def recall(self) -> float | None:
        return self.recalled / self.ref if self.ref else None

    @property
    def precision(self) -> float | None:
        return self.correct / self.hyp if self.hyp else None

    @property
    def f1(self) -> float | None:
        """Harmonic mean of P and R: 0 when either is 0 (even if the other is undefined),
        None when one is undefined and the other is not 0."""
        p, r = self.precision, self.recall
        if p == 0 or r == 0:
            return 0.0
        if p is None or r is None:
            return None
        return 2 * p * r / (p + r)

    @property
    def missed(self) -> int:
        return self.ref - self.recalled

    @property
    def false_alarms(self) -> int:
        return self.hyp - self.correct

    def __iadd__(self, other: HotwordTally) -> HotwordTally:
        self.ref += other.ref
        self.recalled += other.recalled
        self.hyp += other.hyp
        self.correct += other.correct
        return self

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "ref": self.ref,
            "recalled": self.recalled,
            "hyp": self.hyp,
            "correct": self.correct,
            "recall": self.recall,
            "precision": self.precision,
            "f1": self.f1,
        }


def _unique_hotwords(hotwords: Iterable[str]) -> dict[str, list[str]]:
    """word -> its units; words that normalise to the same units are counted once."""
    out: dict[str, list[str]] = {}
    seen: set[tuple[str, ...]] = set()
    for word in hotwords:
        units = normalize_units(word)
        if units and tuple(units) not in seen:
            seen.add(tuple(units))
            out[word] = units
    return out


def _find_all(units: Sequence[str], pattern: Sequence[str]) -> list[int]:
    """Start indices of the non-overlapping occurrences of `pattern`, left to right."""
    starts, n, i = [], len(pattern), 0
    while i + n <= len(units):
        if list(units[i : i + n]) == list(pattern):
            starts.append(i)
            i += n
        else:
            i += 1
    return starts


def _aligned(opcodes, length: int, source: bool) -> list[tuple[int, int]]:
    """For each unit of one side, the [start, end) it is aligned to on the other side
    (empty where the unit was deleted). Insertions of the other side fall between units."""
    spans: list[tuple[int, int]] = [(0, 0)] * length
    for op in opcodes:
        a1, a2, b1, b2 = op.src_start, op.src_end, op.dest_start, op.dest_end
        if not source:
            a1, a2, b1, b2 = b1, b2, a1, a2
        if a1 == a2:
            continue  # nothing of this side in the block
        if b1 == b2:
            for i in range(a1, a2):
                spans[i] = (b1, b1)
        elif a2 - a1 == b2 - b1:
            for k in range(a2 - a1):
                spans[a1 + k] = (b1 + k, b1 + k + 1)
        else:  # an unequal replace block: each unit maps to the whole block
            for i in range(a1, a2):
                spans[i] = (b1, b2)
    return spans


def hotword_tallies(
    reference: str, hypothesis: str, hotwords: Iterable[str]
) -> dict[str, HotwordTally]:
    """Per hotword (first spelling of each), the occurrence counts of one utterance."""
    ref, hyp = normalize_units(reference), normalize_units(hypothesis)
    opcodes = Levenshtein.opcodes(ref, hyp)
    ref_map = _aligned(opcodes, len(ref), source=True)
    hyp_map = _aligned(opcodes, len(hyp), source=False)
    tallies: dict[str, HotwordTally] = {}
    for word, units in _unique_hotwords(hotwords).items():
        tally = HotwordTally()
        n = len(units)
        for start in _find_all(ref, units):
            tally.ref += 1
            lo, hi = ref_map[start][0], ref_map[start + n - 1][1]
            tally.recalled += hyp[lo:hi] == units
        for start in _find_all(hyp, units):
            tally.hyp += 1
            lo, hi = hyp_map[start][0], hyp_map[start + n - 1][1]
            tally.correct += ref[lo:hi] == units
        tallies[word] = tally
    return tallies


# --- what the dashboard shows ---------------------------------------------------------------
def hotword_counts(text: str | None, hotwords: Iterable[str]) -> dict[str, int]:
    """How often each hotword occurs in `text` (normalised, so punctuation and case do not
    hide a match); every word is listed, with 0 when absent."""
    units = normalize_units(text)
    counts = {word: 0 for word in hotwords}
    for word, pattern in _unique_hotwords(counts).items():
        counts[word] = len(_find_all(units, pattern))
    return counts


def hotwords_present(text: str | None, hotwords: Iterable[str]) -> list[str]:
    """The hotwords that occur in `text`, in the order given."""
    return [word for word, n in hotword_counts(text, hotwords).items() if n]


@dataclass(frozen=True)
class HotwordChange:
    """How a transcript with hotwords differs from one without, hotword by hotword."""

    gained: list[str]  # more occurrences with the hotwords than without
    lost: list[str]  # fewer occurrences with the hotwords than without
    counts: dict[str, tuple[int, int]] = field(default_factory=dict)  # word -> (with, without)


def hotword_change(
    with_text: str | None, without_text: str | None, hotwords: Iterable[str]
) -> HotwordChange:
    words = list(dict.fromkeys(hotwords))
    with_counts = hotword_counts(with_text, words)
    without_counts = hotword_counts(without_text, words)
    counts = {w: (with_counts[w], without_counts[w]) for w in words}
    return HotwordChange(
        gained=[w for w, (a, b) in counts.items() if a > b],
        lost=[w for w, (a, b) in counts.items() if a < b],
        counts=counts,
    )


@dataclass(frozen=True)
class DiffSegment:
    """One piece of a character diff from `a` to `b`: op is equal, insert, delete or replace;
    `a` is the piece of the first text, `b` of the second (equal: the same; insert: a is
    empty; delete: b is empty)."""

    op: str
    a: str
    b: str


def char_diff(a: str | None, b: str | None) -> list[DiffSegment]:
    """A minimal character-level diff of two texts as displayable segments.

    Neighbouring changes are merged into one segment ("[很→非常]" rather than "[+非][很→常]",
    which the edit distance considers just as good), so the diff reads as people write one.
    """
    a, b = a or "", b or ""
    segments: list[DiffSegment] = []
    for op in Levenshtein.opcodes(a, b):
        piece_a, piece_b = a[op.src_start : op.src_end], b[op.dest_start : op.dest_end]
        if op.tag != "equal" and segments and segments[-1].op != "equal":
            piece_a, piece_b = segments[-1].a + piece_a, segments[-1].b + piece_b
            segments.pop()
        if op.tag == "equal":
            kind = "equal"
        else:
            kind = "replace" if piece_a and piece_b else ("delete" if piece_a else "insert")
        segments.append(DiffSegment(kind, piece_a, piece_b))
    return segments


def diff_text(segments: Iterable[DiffSegment]) -> str:
    """Plain-text rendering for terminals: 今天[天→添]气[-很][+非常]好."""
    parts = []
    for s in segments:
        if s.op == "equal":
            parts.append(s.a)
        elif s.op == "replace":
            parts.append(f"[{s.a}→{s.b}]")
        elif s.op == "delete":
            parts.append(f"[-{s.a}]")
        else:
            parts.append(f"[+{s.b}]")
    return "".join(parts)


def diff_html(segments: Iterable[DiffSegment]) -> str:
    """HTML rendering (text escaped): removed text in <del>, added text in <ins>."""
    parts = []
    for s in segments:
        if s.op in ("delete", "replace"):
            parts.append(f"<del>{html.escape(s.a)}</del>")
        if s.op in ("insert", "replace"):
            parts.append(f"<ins>{html.escape(s.b)}</ins>")
        if s.op == "equal":
            parts.append(html.escape(s.a))
    return "".join(parts)
