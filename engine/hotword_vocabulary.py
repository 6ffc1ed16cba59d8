"""Which hotwords the ASR model can actually be biased towards.

SeACo-Paraformer turns every hotword into its own output tokens before biasing. Its rule
(funasr 1.4.16, `SeacoParaformer.generate_hotwords_list` / `seg_tokenize`): the lower-cased
word is looked up in `seg_dict`; if absent and it is made only of Chinese characters
(U+4E00..U+9FA5) and ASCII digits, each character is looked up on its own; anything else
(mixed Chinese and Latin, other scripts, a Latin word missing from `seg_dict`) becomes a
single `<unk>`. Pieces missing from `tokens.json` become `<unk>` too. An `<unk>` carries no
information, and a character that is not among the model's tokens can never appear in its
output at all, so such hotwords cannot work however they are weighted.

The dictionaries are read from the ASR model directory once per directory (lru_cache keyed
by path and file modification times), so the check is cheap enough to run on every edit.
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

# funasr's own pattern for words it splits into characters (seaco_paraformer/model.py)
_CHARS_OR_DIGITS = re.compile(r"^[\u4E00-\u9FA50-9]+$")
_SPECIAL_TOKENS = frozenset({"<blank>", "<s>", "</s>", "<unk>"})


@dataclass(frozen=True)
class ModelVocab:
    tokens: frozenset[str]
    seg_dict: dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class HotwordProblem:
    word: str
    unknown: list[str]  # the characters or pieces the model does not know
    whole_word: bool  # True: the model sees the whole word as one <unk>


@dataclass(frozen=True)
class DictionaryCheck:
    """The result of checking a hotword list against the ASR model's dictionary."""

    problems: list[HotwordProblem] = field(default_factory=list)
    model_dir: Path | None = None
    note: str | None = None  # why nothing was checked (e.g. a hub model not downloaded)

    @property
    def checked(self) -> bool:
        return self.model_dir is not None

    def warnings(self) -> list[str]:
        out = []
        partial = [p for p in self.problems if not p.whole_word]
        whole = [p for p in self.problems if p.whole_word]
        if partial:
            listed = "; ".join(f"{p.word} ({' '.join(p.unknown)})" for p in partial[:10])
            more = f" and {len(partial) - 10} more" if len(partial) > 10 else ""
            out.append(
                "Characters the model cannot write (not in its dictionary), so these hotwords "
                f"cannot be recognised as written: {listed}{more}."
            )
        if whole:
            listed = ", ".join(p.word for p in whole[:10])
            more = f" and {len(whole) - 10} more" if len(whole) > 10 else ""
            out.append(
                f"The model cannot spell these hotwords (mixed Chinese and Latin, another script, "
                f"or a Latin word it does not know), so they have no effect: {listed}{more}. "
                "Write Chinese and Latin parts as separate hotwords."
            )
        if self.note:
            out.append(self.note)
        return out


def _stamp(model_dir: Path) -> tuple[int, int]:
    def mtime(name: str) -> int:
        try:
            return (model_dir / name).stat().st_mtime_ns
        except OSError:
            return 0

    return mtime("tokens.json"), mtime("seg_dict")


@lru_cache(maxsize=8)
def _read_vocab(model_dir: str, _stamp: tuple[int, int]) -> ModelVocab:
    tokens = json.loads((Path(model_dir) / "tokens.json").read_text(encoding="utf-8"))
    seg_dict: dict[str, tuple[str, ...]] = {}
    seg_path = Path(model_dir) / "seg_dict"
    if seg_path.is_file():
        with open(seg_path, encoding="utf-8") as lines:
            for line in lines:
                parts = line.split()
                if parts:
                    seg_dict[parts[0]] = tuple(parts[1:])
    return ModelVocab(frozenset(str(t) for t in tokens) - _SPECIAL_TOKENS, seg_dict)


def model_vocab(model_dir: Path) -> ModelVocab:
    """The model's tokens and seg_dict, read once per directory (and again after a change)."""
    model_dir = Path(model_dir).resolve()
    return _read_vocab(str(model_dir), _stamp(model_dir))


def _unknown_parts(word: str, vocab: ModelVocab) -> HotwordProblem | None:
    key = word.lower()
    if vocab.seg_dict and key in vocab.seg_dict:
        missing = [p for p in vocab.seg_dict[key] if p not in vocab.tokens]
        return HotwordProblem(word, missing, False) if missing else None
    if not vocab.seg_dict:  # funasr then looks the whole word up as one token
        return None if key in vocab.tokens else HotwordProblem(word, [word], True)
    if not _CHARS_OR_DIGITS.match(key):
        return HotwordProblem(word, [word], True)
    missing = []
    for ch in key:
        pieces = vocab.seg_dict.get(ch)
        if pieces is None or any(p not in vocab.tokens for p in pieces):
            missing.append(ch)
    return HotwordProblem(word, list(dict.fromkeys(missing)), False) if missing else None


def _hub_cache_dirs(model_id: str) -> list[Path]:
    """Where ModelScope may have stored a downloaded model (its layouts changed over time)."""
    owner, _, name = model_id.partition("/")
    roots = [Path(os.environ["MODELSCOPE_CACHE"])] if os.environ.get("MODELSCOPE_CACHE") else []
    home = Path.home() / ".cache" / "modelscope"
    roots += [home / "hub", home]
    out = []
    for root in roots:
        out += [
            root / "models" / owner / name.replace(".", "___"),
            root / owner / name,
            *sorted((root / "models" / f"{owner}--{name}" / "snapshots").glob("*")),
        ]
    return out


def locate_model_dir(spec: str) -> Path | None:
    """The local directory holding the ASR model's dictionary: the setting itself when it is
    a directory, else ModelScope's download cache for a hub id; None when there is none."""
    spec = (spec or "").strip()
    if not spec:
        return None
    path = Path(spec).expanduser()
    if path.is_dir():
        return path if (path / "tokens.json").is_file() else None
    if spec.count("/") == 1 and not spec.startswith((".", "/", "~")):
        for candidate in _hub_cache_dirs(spec):
            if (candidate / "tokens.json").is_file():
                return candidate
    return None


def check_hotwords(words: list[str], asr_model: str) -> DictionaryCheck:
    """Check hotwords against the dictionary of the ASR model `asr_model` (a directory or a
    ModelScope id, as SEACO_ASR_MODEL). Never raises for a missing or unreadable model: the
    check is advice, so it says why it was skipped instead."""
    model_dir = locate_model_dir(asr_model)
    if model_dir is None:
        if Path(asr_model).expanduser().exists():
            note = f"{asr_model} has no tokens.json, so hotwords were not checked against it."
        else:
            note = (
                f"The ASR model {asr_model} is not downloaded on this machine, so hotwords "
                "were not checked against its dictionary."
            )
        return DictionaryCheck(note=note)
    try:
        vocab = model_vocab(model_dir)
    except (OSError, ValueError) as exc:
        return DictionaryCheck(note=f"Could not read the dictionary in {model_dir}: {exc}")
    problems = [p for w in words if (p := _unknown_parts(w, vocab)) is not None]
    return DictionaryCheck(problems=problems, model_dir=model_dir)


HOTWORD_LIMIT = 50  # SeACo's own filter keeps at most this many per request
LONG_HOTWORD = 20  # characters; longer ones rarely help


@dataclass(frozen=True)
class HotwordSelection:
    """What the model is given of a hotword list, and what the job records about it."""

    given: list[str]  # the usable words, in the list's order: what the model gets
    warnings: list[str]  # sentences: what was left out and why; past HOTWORD_LIMIT, who picks


def select_hotwords(words: list[str], asr_model: str | None) -> HotwordSelection:
    """Keep the hotwords the ASR model can spell and say what was left out. One rule for every
    path a hotword comes by (the API, OpenAI's `prompt`, the dashboard, `seaco submit`, the
    operator's default list), applied by the worker right before recognition.

    A word is left out when the model's dictionary (tokens.json and seg_dict of `asr_model`,
    a directory or a downloaded ModelScope id) cannot spell it: emoji and other scripts,
    punctuation-only words, the model's own special tokens (`<s>`, `</s>`, `<unk>`), Latin
    words missing from seg_dict, words with a character the model cannot write. Given to the
    model, such a word is an `<unk>` that biases recognition towards nothing (and changes the
    output). When the dictionary cannot be found nothing is left out and a warning says so.
    More than HOTWORD_LIMIT words are all given, with a warning that the model keeps the ones
    it attends to most for each request (funasr's own filter; which ones is its choice)."""
    if not words:
        return HotwordSelection([], [])
    warnings: list[str] = []
    given = list(words)
    if asr_model:
        check = check_hotwords(words, asr_model)
        left_out = {p.word for p in check.problems}
        given = [w for w in words if w not in left_out]
        whole = [f"{p.word} ({why_unspellable(p.word)})" for p in check.problems if p.whole_word]
        partial = [f"{p.word} ({' '.join(p.unknown)})" for p in check.problems if not p.whole_word]
        if whole:
            warnings.append(f"Left out, the model cannot spell them: {_listed(whole)}.")
        if partial:
            warnings.append(
                f"Left out, they hold characters the model cannot write: {_listed(partial)}."
            )
        if check.note:
            warnings.append(check.note)
    if len(given) > HOTWORD_LIMIT:
        warnings.append(
            f"{len(given)} hotwords given: the model attends to at most {HOTWORD_LIMIT} per "
            "request and picks them itself (the ones it attends to most), so some will have no "
            "effect."
        )
    return HotwordSelection(given, warnings)


def why_unspellable(word: str) -> str:
    """Why SeACo-Paraformer turns a whole hotword into one <unk> (see the module docstring),
    in a few words for the job's warning: '<s>' -> 'the model's own special token'."""
    categories = [unicodedata.category(ch) for ch in word]
    if word.lower() in _SPECIAL_TOKENS:
        return "the model's own special token"
    if "So" in categories:  # emoji and other pictographs
        return "an emoji or symbol"
    if all(c[0] in "PS" for c in categories):
        return "punctuation only"
    if word.isascii():
        return "a Latin word missing from its seg_dict"
    if any(_CHARS_OR_DIGITS.match(ch) for ch in word) and any(ch.isascii() for ch in word):
        return "Chinese mixed with Latin: give them as separate hotwords"
    return "a script the model does not write"


def _listed(items: list[str], at_most: int = 10) -> str:
    more = f" and {len(items) - at_most} more" if len(items) > at_most else ""
    return ", ".join(items[:at_most]) + more


def hotword_warnings(words: list[str], asr_model: str | None = None) -> list[str]:
    """What the operator should know about a hotword list before relying on it: what
    `select_hotwords` would leave out and why (given the ASR model, SEACO_ASR_MODEL), past
    HOTWORD_LIMIT who picks, and very long words."""
    warnings = select_hotwords(words, asr_model).warnings
    long_words = [w for w in words if len(w) > LONG_HOTWORD]
    if long_words:
        warnings.append(f"Very long hotwords rarely help: {', '.join(long_words[:3])}")
    return warnings
