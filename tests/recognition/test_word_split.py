"""Word timestamps: engine.recognition.sentences.build_sentences on funasr-shaped output.

The inputs are what funasr hands the pipeline: the ASR's tokens (Chinese characters, BPE
pieces such as "he@@" "llo", single letters) with one [start, end] in ms each, merged into
words and their timestamps by funasr's own `sentence_postprocess` (the function its
SeACo-Paraformer calls), and the text as the punctuation model writes it. Timestamps are
made at test time, so every expected time below is computed, not copied from an output.
"""

from __future__ import annotations

import pytest
from funasr.utils.postprocess_utils import sentence_postprocess
from hypothesis import given
from hypothesis import strategies as st

from engine.jobs import Sentence, Word
from engine.recognition.sentences import build_sentences

STEP_MS, LENGTH_MS, OFFSET_MS = 180, 150, 370  # one token every 180 ms, after a VAD offset


def token_times(n: int) -> list[list[int]]:
    """funasr's per-token timestamps: token i at OFFSET + i*STEP for LENGTH ms."""
    return [[OFFSET_MS + i * STEP_MS, OFFSET_MS + i * STEP_MS + LENGTH_MS] for i in range(n)]


def funasr_words(tokens: list[str]) -> tuple[list[str], list[list[int]]]:
    """funasr's words and their timestamps for `tokens` (its sentence_postprocess)."""
    _text, timestamps, words = sentence_postprocess(tokens, token_times(len(tokens)))
    return words, timestamps


def punctuated(words: list[str], marks: dict[int, str]) -> str:
    """The text as CT-Transformer writes it: Chinese without spaces, a space before and after
    a Latin word, `marks[i]` right after word i."""
    out = ""
    for i, word in enumerate(words):
        if out and (word.isascii() or out[-1].isascii()) and out[-1] not in "，。？、":
            out += " "
        out += word + marks.get(i, "")
    return out


def all_words(sentences: list[Sentence]) -> list[Word]:
    return [w for s in sentences for w in s.words]


def test_each_chinese_character_is_a_word_with_its_own_timestamp() -> None:
    tokens = list("今天天气很好我们去公园")
    words, timestamps = funasr_words(tokens)
    assert words == tokens  # funasr: one word per character
    text = punctuated(words, {5: "，", 10: "。"})
    assert text == "今天天气很好，我们去公园。"

    sentences = build_sentences(text, timestamps, [], duration_ms=10_000)

    assert [s.text for s in sentences] == ["今天天气很好，", "我们去公园。"]
    expected = [Word(ch, start, end) for ch, (start, end) in zip(tokens, timestamps, strict=True)]
    assert all_words(sentences) == expected
    assert [len(s.words) for s in sentences] == [6, 5]
    for s in sentences:  # a sentence spans its first word's start to its last word's end
        assert (s.start_ms, s.end_ms) == (s.words[0].start_ms, s.words[-1].end_ms)


def test_bpe_pieces_and_spelled_letters_become_one_latin_word() -> None:
    tokens = ["he@@", "llo", "world", "i", "b", "m"]
    words, timestamps = funasr_words(tokens)
    assert words == ["hello", "world", "IBM"]
    text = punctuated(words, {1: ",", 2: "."})
    assert text == "hello world, IBM."
    times = token_times(len(tokens))

    sentences = build_sentences(text, timestamps, [], duration_ms=10_000)

    assert [s.text for s in sentences] == ["hello world,", "IBM."]
    # a word runs from its first piece's start to its last piece's end
    assert all_words(sentences) == [
        Word("hello", times[0][0], times[1][1]),
        Word("world", times[2][0], times[2][1]),
        Word("IBM", times[3][0], times[5][1]),
    ]


def test_mixed_chinese_and_latin() -> None:
    tokens = ["我", "用", "py@@", "thon", "写", "代", "码", "very", "good", "好"]
    words, timestamps = funasr_words(tokens)
    assert words == ["我", "用", "python", "写", "代", "码", "very", "good", "好"]
    text = punctuated(words, {5: "，", 7: "。"})
    assert text == "我用 python 写代码，very good。好"

    sentences = build_sentences(text, timestamps, [], duration_ms=10_000)

    assert [s.text for s in sentences] == ["我用 python 写代码，", "very good。", "好"]
    assert [[w.text for w in s.words] for s in sentences] == [
        ["我", "用", "python", "写", "代", "码"],
        ["very", "good"],
        ["好"],
    ]
    expected = [Word(w, start, end) for w, (start, end) in zip(words, timestamps, strict=True)]
    assert all_words(sentences) == expected


def test_punctuation_without_a_unit_joins_the_sentence_before_and_adds_no_word() -> None:
    words, timestamps = funasr_words(list("好的"))
    sentences = build_sentences("好的。。", timestamps, [], duration_ms=10_000)
    assert [s.text for s in sentences] == ["好的。。"]
    assert [w.text for w in sentences[0].words] == ["好", "的"]


def test_times_are_clamped_ordered_and_within_the_audio() -> None:
    duration_ms = 1000
    # funasr-shaped but wrong: negative, going backwards, past the end, end before start
    timestamps = [[-40, 100], [300, 250], [200, 400], [900, 1500], [1200, 1300]]
    sentences = build_sentences("一二三，四五。", timestamps, [], duration_ms)
    words = all_words(sentences)
    assert [w.text for w in words] == list("一二三四五")
    assert [(w.start_ms, w.end_ms) for w in words] == [
        (0, 100),  # not before the audio
        (300, 300),  # an end before its start becomes the start
        (300, 400),  # starts never go back
        (900, duration_ms),  # nothing after the audio's end
        (duration_ms, duration_ms),
    ]


def test_float_times_are_rounded_to_whole_ms() -> None:
    sentences = build_sentences("好。", [[10.4, 20.6]], [], duration_ms=1000)
    assert sentences[0].words == (Word("好", 10, 21),)


def test_when_units_and_timestamps_do_not_pair_the_sentences_have_no_words() -> None:
    info = [
        {"text": "今天天气很好，", "start": 0, "end": 900},
        {"text": "好。", "start": 900, "end": 1200},
    ]
    sentences = build_sentences("今天天气很好，好。", token_times(3), info, duration_ms=2000)
    assert [(s.text, s.start_ms, s.end_ms) for s in sentences] == [
        ("今天天气很好，", 0, 900),
        ("好。", 900, 1200),
    ]
    assert all(s.words == () for s in sentences)


# --- any funasr-shaped input -------------------------------------------------------------------
UNITS = st.one_of(
    st.sampled_from(list("今天气很好我们去公园吗")),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyzABC'", min_size=1, max_size=8),
)
MARKS = st.sampled_from(["", "", "，", "。", "？", "、", ",", "."])


@given(
    units=st.lists(st.tuples(UNITS, MARKS), min_size=1, max_size=30),
    raw_times=st.lists(
        st.tuples(st.integers(-500, 12_000), st.integers(-500, 12_000)), min_size=30, max_size=30
    ),
    duration_ms=st.integers(0, 10_000),
)
def test_any_input_gives_words_that_spell_the_text_in_order_within_the_audio(
    units, raw_times, duration_ms
) -> None:
    words = [unit for unit, _ in units]
    text = punctuated(words, {i: mark for i, (_, mark) in enumerate(units) if mark})
    timestamps = [list(t) for t in raw_times[: len(words)]]

    sentences = build_sentences(text, timestamps, [], duration_ms)

    out = all_words(sentences)
    assert [w.text for w in out] == words
    for s in sentences:
        spelled = "".join(w.text for w in s.words)
        assert spelled == "".join(ch for ch in s.text if ch not in " ，。？、,.")
        assert all(s.start_ms <= w.start_ms for w in s.words)
    starts = [w.start_ms for w in out]
    assert starts == sorted(starts)
    assert all(0 <= w.start_ms <= w.end_ms <= duration_ms for w in out)


@pytest.mark.parametrize("text", ["", "   ", "。"])
def test_no_units_no_sentences_no_words(text: str) -> None:
    assert build_sentences(text, [], [], duration_ms=1000) == []
