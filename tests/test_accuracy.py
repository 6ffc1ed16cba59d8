"""CER, hotword recall/precision/F1, confidence bins and diffs on hand-made hypotheses whose
answers are worked out by hand in the comments (no model involved)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.accuracy import (
    DiffSegment,
    cer,
    char_diff,
    diff_html,
    diff_text,
    edit_counts,
    hotword_change,
    hotword_tallies,
    hotwords_present,
    normalize_units,
)
from engine.tools.evaluation_report import Hypothesis, build_report, format_report


@dataclass
class Utt:
    id: str
    reference: str
    hotwords: list[str]


def test_normalisation_drops_punctuation_and_width_and_keeps_latin_words_whole():
    expected = ["今", "天", "ai", "很", "好", "dont", "3", "5"]
    assert normalize_units("今天，ＡＩ 很好! Don’t 3.5") == expected
    assert normalize_units("用Paraformer识别。") == ["用", "paraformer", "识", "别"]
    assert normalize_units("") == normalize_units(None) == []


@pytest.mark.parametrize(
    ("reference", "hypothesis", "expected"),
    [
        ("今天天气很好", "今天天汽很好", 1 / 6),  # one substitution
        ("今天天气很好。", "今天，天气很好", 0.0),  # punctuation is not scored
        ("ＡＩ识别", "ai识别", 0.0),  # width and case are normalised
        ("我们去公园", "我去公园了", 2 / 5),  # a deletion (们) and an insertion (了)
        ("好", "", 1.0),
        ("", "", 0.0),
        ("", "啊", None),  # nothing to divide by
        ("paraformer 很好", "para former 很好", 2 / 3),  # a Latin word is one unit
    ],
)
def test_cer(reference, hypothesis, expected):
    if expected is None:
        assert cer(reference, hypothesis) is None
    else:
        assert cer(reference, hypothesis) == pytest.approx(expected)


def test_edit_counts_by_kind():
    e = edit_counts("我们去公园散步", "我去工园散步吧")
    # 们 deleted, 公->工 substituted, 吧 inserted, over 7 reference characters
    assert (e.ref_units, e.substitutions, e.deletions, e.insertions) == (7, 1, 1, 1)
    assert e.rate == pytest.approx(3 / 7)


def test_hotword_recall_and_precision_count_occurrences_at_their_aligned_place():
    t = hotword_tallies("我和科哥去阿里巴巴", "我和哥哥去阿里巴巴阿里巴巴", ["科哥", "阿里巴巴"])
    # 科哥: said once, written as 哥哥 -> missed. 阿里巴巴: said once and written there
    # (recalled), written a second time where nothing was said (a false alarm).
    assert (t["科哥"].ref, t["科哥"].recalled, t["科哥"].hyp) == (1, 0, 0)
    assert (t["阿里巴巴"].ref, t["阿里巴巴"].recalled) == (1, 1)
    assert (t["阿里巴巴"].hyp, t["阿里巴巴"].correct) == (2, 1)
    assert t["阿里巴巴"].recall == 1.0 and t["阿里巴巴"].precision == 0.5
    assert t["阿里巴巴"].f1 == pytest.approx(2 / 3)


def test_a_hotword_written_in_the_wrong_place_is_not_recalled():
    # Both names appear in the hypothesis, but each where the other was said.
    t = hotword_tallies("张三说李四好", "李四说张三好", ["张三", "李四"])
    assert all(x.ref == 1 and x.recalled == 0 for x in t.values())
    assert all(x.hyp == 1 and x.correct == 0 for x in t.values())
    assert t["张三"].f1 == 0.0


def test_hotword_edge_cases():
    inserted = hotword_tallies("今天开会", "今天科哥开会", ["科哥"])["科哥"]
    assert (inserted.recall, inserted.precision, inserted.f1) == (None, 0.0, 0.0)
    # a Latin hotword matches whole words only, in any width or case
    ai = hotword_tallies("paraformer ai", "Paraformer AI", ["ai"])["ai"]
    assert (ai.ref, ai.recalled, ai.hyp, ai.correct) == (1, 1, 1, 1)
    wide = hotword_tallies("用ＰＡＲＡＦＯＲＭＥＲ识别", "用paraformer识别", ["Paraformer"])
    assert wide["Paraformer"].recall == 1.0
    twice = hotword_tallies("阿里阿里", "阿里", ["阿里"])["阿里"]
    assert (twice.recall, twice.precision) == (0.5, 1.0)
    # duplicates (after normalisation) and empty words are counted once / not at all
    assert list(hotword_tallies("ai", "ai", ["AI", "ai", "！"])) == ["AI"]


def test_report_pools_cer_and_scores_the_hotwords_the_baseline_misses():
    utts = [
        Utt("u1", "我和科哥去阿里巴巴。", ["科哥", "阿里巴巴"]),
        Utt("u2", "科哥来了", ["科哥"]),
        Utt("u3", "好", []),
    ]
    without = [
        Hypothesis("我和哥哥去阿里巴巴", 0.97),  # 科哥 missed: 1 substitution of 9
        Hypothesis("哥哥来了", 0.55),  # 1 substitution of 4
        Hypothesis("", None),  # 1 deletion of 1
    ]
    with_hw = [Hypothesis("我和科哥去阿里巴巴", 0.95), Hypothesis("科哥来了。", 0.5), without[2]]
    report = build_report(utts, with_hw, without, missed_below=0.4, manifest="m.jsonl")

    base, biased = report["runs"]["without_hotwords"], report["runs"]["with_hotwords"]
    assert base["cer"] == pytest.approx(3 / 14)  # pooled, not the mean of 1/9, 1/4 and 1
    assert biased["cer"] == pytest.approx(1 / 14)
    assert base["edits"]["substitutions"] == 2 and base["edits"]["deletions"] == 1
    # 3 hotword occurrences in the references; the baseline recalls only 阿里巴巴
    assert base["hotwords"]["recall"] == pytest.approx(1 / 3)
    assert base["hotwords"]["precision"] == 1.0
    assert biased["hotwords"]["recall"] == biased["hotwords"]["precision"] == 1.0
    # 科哥 has baseline recall 0 < 0.4; 阿里巴巴 has 1.0
    assert report["missed_by_baseline"] == ["科哥"]
    assert base["missed_by_baseline"]["ref"] == 2 and base["missed_by_baseline"]["recall"] == 0
    assert biased["missed_by_baseline"]["recall"] == 1.0
    assert biased["missed_by_baseline"]["f1"] == 1.0
    per_word = {w["word"]: w for w in report["per_hotword"]}
    assert per_word["科哥"]["with_hotwords"]["recalled"] == 2

    u1 = report["per_utterance"][0]
    assert u1["gained"] == ["科哥"] and u1["lost"] == []
    assert u1["without_hotwords"]["missed"] == ["科哥"]
    assert u1["without_hotwords"]["diff"] == "我和[科→哥]哥去阿里巴巴"

    # calibration (with hotwords): 0.95 -> [0.95, 1.0]; 0.5 -> [0.5, 0.6); None -> own row
    bins = {(b["low"], b["high"]): b for b in biased["calibration"]}
    assert bins[(0.95, 1.0)]["utterances"] == 1 and bins[(0.95, 1.0)]["cer"] == 0.0
    assert bins[(0.5, 0.6)]["utterances"] == 1 and bins[(0.5, 0.6)]["cer"] == 0.0
    assert bins[(None, None)]["utterances"] == 1 and bins[(None, None)]["cer"] == 1.0
    assert bins[(0.0, 0.5)]["utterances"] == 0 and bins[(0.0, 0.5)]["cer"] is None
    base_bins = {(b["low"], b["high"]): b for b in base["calibration"]}
    assert base_bins[(0.95, 1.0)]["cer"] == pytest.approx(1 / 9)

    table = format_report(report)
    assert "with hotwords" in table and "7.14%" in table and "21.43%" in table
    assert "科哥" in table and "u1" in table


def test_hotwords_present_and_the_change_between_two_transcripts():
    text = "科哥说，阿里，巴巴的Paraformer很好。"
    # order as given; punctuation and case do not hide a match
    assert hotwords_present(text, ["阿里巴巴", "paraformer", "张三", "科哥"]) == [
        "阿里巴巴",
        "paraformer",
        "科哥",
    ]
    assert hotwords_present("", ["科哥"]) == [] and hotwords_present(text, []) == []
    change = hotword_change("科哥说阿里", "哥哥说阿里阿里", ["科哥", "阿里", "张三"])
    assert change.gained == ["科哥"] and change.lost == ["阿里"]
    assert change.counts == {"科哥": (1, 0), "阿里": (1, 2), "张三": (0, 0)}


def test_char_diff_segments():
    assert char_diff("abc", "abd") == [
        DiffSegment("equal", "ab", "ab"),
        DiffSegment("replace", "c", "d"),
    ]
    # neighbouring edits read as one change
    assert diff_text(char_diff("今天天气很好", "今天天气非常好")) == "今天天气[很→非常]好"
    assert char_diff("", "ab") == [DiffSegment("insert", "", "ab")]
    assert char_diff("ab", None) == [DiffSegment("delete", "ab", "")]
    assert diff_html(char_diff("a<b", "a>b")) == "a<del>&lt;</del><ins>&gt;</ins>b"


@given(st.text(max_size=40), st.text(max_size=40))
def test_char_diff_rebuilds_both_texts(a, b):
    segments = char_diff(a, b)
    assert "".join(s.a for s in segments) == a and "".join(s.b for s in segments) == b
    for left, right in zip(segments, segments[1:], strict=False):
        assert left.op == "equal" or right.op == "equal"  # changes are merged
    for s in segments:
        assert (s.op == "equal") == (s.a == s.b and s.a != "")


@given(st.text(alphabet="今天天气科哥阿里ai ，。", max_size=20))
def test_a_perfect_hypothesis_recalls_every_hotword_precisely(text):
    for tally in hotword_tallies(text, text, ["天气", "科哥", "ai", "阿里"]).values():
        assert tally.recalled == tally.ref and tally.correct == tally.hyp == tally.ref
    assert cer(text, text) == 0.0
