"""The evaluation report: metrics over a set of utterances, and its table.

`build_report` is pure (reference texts and hypotheses in, a JSON-ready dict out), so the
numbers can be checked on hand-made hypotheses; `format_report` turns it into the table
`seaco eval` prints. Metric definitions are in engine.accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from engine.accuracy import (
    EditCounts,
    HotwordTally,
    char_diff,
    diff_text,
    edit_counts,
    hotword_change,
    hotword_tallies,
    normalize_text,
)
from engine.hotword_vocabulary import HOTWORD_LIMIT

RUNS = ("without_hotwords", "with_hotwords")
RUN_LABEL = {"without_hotwords": "without hotwords", "with_hotwords": "with hotwords"}
# Confidence bins: [low, high), the last one closed. Finer near 1, where most output lands.
CONFIDENCE_EDGES = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)


@dataclass(frozen=True)
class Hypothesis:
    text: str
    confidence: float | None = None
    seconds: float = 0.0


class _Utterance(Protocol):
    """What the report reads of an utterance (read-only, so a frozen dataclass fits)."""

    @property
    def id(self) -> str: ...
    @property
    def reference(self) -> str: ...
    @property
    def hotwords(self) -> list[str]: ...


def _bin_index(confidence: float) -> int:
    for i in range(len(CONFIDENCE_EDGES) - 2, -1, -1):
        if confidence >= CONFIDENCE_EDGES[i]:
            return i
    return 0


def _calibration(edits: list[EditCounts], hyps: Sequence[Hypothesis]) -> list[dict[str, Any]]:
    """CER of the utterances in each confidence bin (pooled edits over pooled reference)."""
    n_bins = len(CONFIDENCE_EDGES) - 1
    pooled = [EditCounts() for _ in range(n_bins + 1)]  # the extra one: no confidence
    counts = [0] * (n_bins + 1)
    sums = [0.0] * (n_bins + 1)
    for e, h in zip(edits, hyps, strict=True):
        i = n_bins if h.confidence is None else _bin_index(h.confidence)
        pooled[i] += e
        counts[i] += 1
        sums[i] += h.confidence or 0.0
    rows = []
    for i in range(n_bins + 1):
        low, high = (None, None) if i == n_bins else CONFIDENCE_EDGES[i : i + 2]
        rows.append(
            {
                "low": low,
                "high": high,
                "utterances": counts[i],
                "ref_units": pooled[i].ref_units,
                "errors": pooled[i].errors,
                "cer": pooled[i].rate if counts[i] else None,
                "mean_confidence": (sums[i] / counts[i]) if counts[i] and low is not None else None,
            }
        )
    return rows


def _edits_dict(e: EditCounts) -> dict[str, Any]:
    return {
        "ref_units": e.ref_units,
        "substitutions": e.substitutions,
        "deletions": e.deletions,
        "insertions": e.insertions,
        "errors": e.errors,
        "cer": e.rate,
    }


def build_report(
    utterances: Sequence[_Utterance],
    with_hotwords: Sequence[Hypothesis],
    without_hotwords: Sequence[Hypothesis],
    *,
    missed_below: float = 0.4,
    manifest: str = "",
) -> dict[str, Any]:
    """Score both runs. "Missed by the baseline" are the hotwords whose recall in the run
    without hotwords is below `missed_below` (0.4: the paper's R1 subset rule); their recall,
    precision and F1 are reported separately for both runs."""
    hyps = {"with_hotwords": list(with_hotwords), "without_hotwords": list(without_hotwords)}
    if not len(utterances) == len(hyps["with_hotwords"]) == len(hyps["without_hotwords"]):
        raise ValueError("one hypothesis per utterance and run is needed")
    edits: dict[str, list[EditCounts]] = {r: [] for r in RUNS}
    tallies: dict[str, list[dict[str, HotwordTally]]] = {r: [] for r in RUNS}
    per_word: dict[str, dict[str, HotwordTally]] = {r: {} for r in RUNS}
    spelling: dict[str, str] = {}  # normalised word -> first spelling seen
    for i, utt in enumerate(utterances):
        for run in RUNS:
            text = hyps[run][i].text
            edits[run].append(edit_counts(utt.reference, text))
            utt_tallies = hotword_tallies(utt.reference, text, utt.hotwords)
            tallies[run].append(utt_tallies)
            for word, tally in utt_tallies.items():
                key = normalize_text(word)
                spelling.setdefault(key, word)
                per_word[run].setdefault(key, HotwordTally())
                per_word[run][key] += tally
    missed = [
        key
        for key, t in per_word["without_hotwords"].items()
        if t.ref and (t.recall or 0.0) < missed_below
    ]
    missed_keys = set(missed)

    runs: dict[str, Any] = {}
    for run in RUNS:
        total, hard, overall = EditCounts(), HotwordTally(), HotwordTally()
        for e in edits[run]:
            total += e
        for key, tally in per_word[run].items():
            overall += tally
            if key in missed_keys:
                hard += tally
        runs[run] = {
            "cer": total.rate,
            "edits": _edits_dict(total),
            "hotwords": overall.as_dict(),
            "missed_by_baseline": hard.as_dict(),
            "calibration": _calibration(edits[run], hyps[run]),
            "seconds": round(sum(h.seconds for h in hyps[run]), 3),
        }

    per_utterance = []
    for i, utt in enumerate(utterances):
        change = hotword_change(
            hyps["with_hotwords"][i].text, hyps["without_hotwords"][i].text, utt.hotwords
        )
        entry: dict[str, Any] = {
            "id": utt.id,
            "audio": str(getattr(utt, "audio", "")),
            "reference": utt.reference,
            "hotwords": list(utt.hotwords),
            "gained": change.gained,
            "lost": change.lost,
        }
        for run in RUNS:
            h, t = hyps[run][i], tallies[run][i]
            entry[run] = {
                "text": h.text,
                "confidence": h.confidence,
                **_edits_dict(edits[run][i]),
                "recalled": [w for w, x in t.items() if x.recalled],
                "missed": [w for w, x in t.items() if x.missed],
                "false_alarms": [w for w, x in t.items() if x.false_alarms],
                "diff": diff_text(char_diff(normalize_text(utt.reference), normalize_text(h.text))),
            }
        per_utterance.append(entry)

    too_many = sum(1 for u in utterances if len(u.hotwords) > HOTWORD_LIMIT)
    warnings = []
    if too_many:
        warnings.append(
            f"{too_many} utterance(s) have more than {HOTWORD_LIMIT} hotwords: the model keeps "
            f"the {HOTWORD_LIMIT} it attends to most for each (its own filter)."
        )
    return {
        "manifest": manifest,
        "utterances": len(utterances),
        "missed_below": missed_below,
        "runs": runs,
        "missed_by_baseline": [spelling[k] for k in missed],
        "per_hotword": [
            {"word": spelling[k], **{run: per_word[run][k].as_dict() for run in RUNS}}
            for k in per_word["with_hotwords"]
        ],
        "per_utterance": per_utterance,
        "warnings": warnings,
    }


# --- the table ------------------------------------------------------------------------------
def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f}%"


def _ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def format_report(report: dict[str, Any], *, max_diffs: int = 20) -> str:
    """The human-readable table (the JSON report has everything)."""
    lines: list[str] = []
    runs = report["runs"]
    occurrences = runs["with_hotwords"]["hotwords"]["ref"]
    lines.append(
        f"seaco eval {report['manifest']}: {report['utterances']} utterances, "
        f"{occurrences} hotword occurrences in the references"
    )
    models = report.get("models") or {}
    if models:
        lines.append("models: " + ", ".join(f"{k} {v}" for k, v in models["specs"].items()))
        if any(models.get("random_weights", {}).values()):
            lines.append("RANDOM-WEIGHT test models: these numbers say nothing about accuracy.")
    lines.append("")
    header = f"{'':18}{'CER':>8}{'sub':>7}{'del':>7}{'ins':>7}{'recall':>9}{'precision':>11}"
    lines += [header + f"{'F1':>8}{'seconds':>9}"]
    for run in RUNS:
        r, e, h = runs[run], runs[run]["edits"], runs[run]["hotwords"]
        lines.append(
            f"{RUN_LABEL[run]:18}{_pct(r['cer']):>8}{e['substitutions']:>7}{e['deletions']:>7}"
            f"{e['insertions']:>7}{_ratio(h['recall']):>9}{_ratio(h['precision']):>11}"
            f"{_ratio(h['f1']):>8}{r['seconds']:>9.1f}"
        )
    missed = report["missed_by_baseline"]
    hard_refs = runs["without_hotwords"]["missed_by_baseline"]["ref"]
    lines.append("")
    lines.append(
        f"Hotwords the run without hotwords misses (recall < {report['missed_below']:g}): "
        f"{len(missed)} words, {hard_refs} occurrences"
        + (f" ({', '.join(missed[:8])}{', ...' if len(missed) > 8 else ''})" if missed else "")
    )
    if missed:
        for run in RUNS:
            h = runs[run]["missed_by_baseline"]
            lines.append(
                f"  {RUN_LABEL[run]:16} recall {_ratio(h['recall'])}  precision "
                f"{_ratio(h['precision'])}  F1 {_ratio(h['f1'])}"
            )
    lines.append("")
    lines.append("CER by confidence (with hotwords; the service reports this confidence):")
    lines.append(f"  {'confidence':<12}{'utterances':>11}{'ref chars':>11}{'CER':>9}")
    for row in runs["with_hotwords"]["calibration"]:
        if not row["utterances"]:
            continue
        label = "none" if row["low"] is None else f"{row['low']:.2f}-{row['high']:.2f}"
        lines.append(
            f"  {label:<12}{row['utterances']:>11}{row['ref_units']:>11}{_pct(row['cer']):>9}"
        )
    for warning in report.get("warnings", []):
        lines.append(f"note: {warning}")
    shown = _worst(report["per_utterance"], max_diffs)
    if shown:
        lines.append("")
        lines.append(
            f"Per utterance ({len(shown)} of {report['utterances']}, most errors first; "
            "[ref→hyp] [-missing] [+extra]):"
        )
        for u in shown:
            w, wo = u["with_hotwords"], u["without_hotwords"]
            changes = "".join(
                [f"  gained {', '.join(u['gained'])}" if u["gained"] else ""]
                + [f"  lost {', '.join(u['lost'])}" if u["lost"] else ""]
            )
            lines.append(f"  {u['id']}: CER {_pct(wo['cer'])} → {_pct(w['cer'])}{changes}")
            lines.append(f"    without: {wo['diff']}")
            lines.append(f"    with:    {w['diff']}")
    return "\n".join(lines) + "\n"


def _worst(per_utterance: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """Utterances with errors or a hotword change, most errors first."""
    interesting = [
        u
        for u in per_utterance
        if u["with_hotwords"]["errors"]
        or u["without_hotwords"]["errors"]
        or u["gained"]
        or u["lost"]
    ]
    interesting.sort(
        key=lambda u: -(u["with_hotwords"]["errors"] + u["without_hotwords"]["errors"])
    )
    return interesting[: max(0, limit)]
