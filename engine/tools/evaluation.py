"""`seaco eval`: accuracy and hotword evaluation of the service's own pipeline.

A manifest (JSON lines: audio, reference text, optional hotwords) is transcribed twice per
utterance by the same `AsrPipeline` the worker uses (VAD + SeACo-Paraformer + punctuation,
loaded from the SEACO_* settings): with the utterance's hotwords and with none. The report
(engine.tools.evaluation_report) gives CER, hotword recall/precision/F1 as the SeACo-
Paraformer paper defines them (engine.accuracy), the same for the hotwords the run without
hotwords misses, CER by confidence bin, and per-utterance diffs.

The text helpers the dashboard needs (`hotwords_present`, `hotword_change`, `char_diff`)
are re-exported here; they live in engine.accuracy, which imports no model code.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from engine import audio
from engine.accuracy import (
    DiffSegment,
    HotwordChange,
    char_diff,
    diff_html,
    diff_text,
    hotword_change,
    hotwords_present,
)
from engine.config import Settings
from engine.errors import AudioError, ManifestError
from engine.hotword_vocabulary import check_hotwords
from engine.hotwords import merge_hotwords, parse_hotwords
from engine.logging_setup import configure_logging
from engine.tools.evaluation_report import Hypothesis, build_report, format_report

__all__ = [
    "DiffSegment",
    "HotwordChange",
    "ManifestError",
    "Utterance",
    "char_diff",
    "diff_html",
    "diff_text",
    "hotword_change",
    "hotwords_present",
    "load_manifest",
    "read_hotword_file",
    "run_eval",
]

# Accepted field names: ours first, then FunASR's own jsonl names (source/target, key).
_AUDIO_KEYS = ("audio", "wav", "source")
_TEXT_KEYS = ("text", "reference", "target")
_ID_KEYS = ("id", "key", "utt")


@dataclass(frozen=True)
class Utterance:
    line: int  # 1-based line of the manifest
    id: str
    audio: Path
    reference: str
    hotwords: list[str]


def read_hotword_file(path: Path) -> list[str]:
    """One hotword per line (the AISHELL-1 NE `hotword.txt` layout); blank lines skipped."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError(f"Hotword file {path}: no such file.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"Hotword file {path} cannot be read: {exc}") from None
    return merge_hotwords(text.splitlines(), None)


def _field(record: dict[str, Any], keys: tuple[str, ...]) -> Any:
    return next((record[k] for k in keys if record.get(k) not in (None, "")), None)


def load_manifest(path: Path, extra_hotwords: list[str] | None = None) -> list[Utterance]:
    """Read and check every line (JSON object with audio and text, optional id and hotwords)
    before anything is transcribed. Relative audio paths are relative to the manifest.
    `extra_hotwords` are added to every utterance's list (after its own)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise ManifestError(f"Manifest {path}: no such file.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"Manifest {path} cannot be read: {exc}") from None
    utterances: list[Utterance] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path}, line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ManifestError(f"{where}: not valid JSON ({exc.msg}).") from None
        if not isinstance(record, dict):
            raise ManifestError(f"{where}: expected a JSON object, got {type(record).__name__}.")
        audio_field, reference = _field(record, _AUDIO_KEYS), _field(record, _TEXT_KEYS)
        if not isinstance(audio_field, str) or not isinstance(reference, str):
            raise ManifestError(f'{where}: needs "audio" (a path) and "text" (the reference).')
        audio_path = Path(audio_field).expanduser()
        if not audio_path.is_absolute():
            audio_path = path.parent / audio_path
        if not audio_path.is_file():
            raise ManifestError(f"{where}: audio file {audio_path} does not exist.")
        words = record.get("hotwords")
        if words is not None and not isinstance(words, (str, list)):
            raise ManifestError(f'{where}: "hotwords" must be a list or a comma-separated string.')
        own = parse_hotwords(words) if isinstance(words, str) or words is None else words
        utt_id = _field(record, _ID_KEYS)
        utterances.append(
            Utterance(
                line=number,
                id=str(utt_id) if utt_id is not None else f"line{number}",
                audio=audio_path,
                reference=reference,
                hotwords=merge_hotwords([str(w) for w in own], extra_hotwords),
            )
        )
    if not utterances:
        raise ManifestError(f"Manifest {path} has no utterances.")
    return utterances


def _progress(total: int, stream: TextIO):
    from tqdm import tqdm

    return tqdm(total=total, unit="utt", file=stream, disable=not stream.isatty())


def transcribe_all(
    pipeline: Any, utterances: list[Utterance], settings: Settings, err: TextIO
) -> tuple[list[Hypothesis], list[Hypothesis]]:
    """Each utterance with its hotwords and without any, one after the other."""
    with_hw: list[Hypothesis] = []
    without_hw: list[Hypothesis] = []
    with _progress(len(utterances), err) as bar:
        for utt in utterances:
            try:
                samples, _info = audio.decode(utt.audio, max_duration_s=settings.max_duration_s)
            except AudioError as exc:
                raise ManifestError(f"line {utt.line}: {utt.audio}: {exc}") from None
            started = time.perf_counter()
            plain = pipeline.transcribe(samples, None)
            plain_hyp = Hypothesis(plain.text, plain.confidence, time.perf_counter() - started)
            if utt.hotwords:
                started = time.perf_counter()
                biased = pipeline.transcribe(samples, utt.hotwords)
                seconds = time.perf_counter() - started
                with_hw.append(Hypothesis(biased.text, biased.confidence, seconds))
            else:  # no hotwords: the same call, and the pipeline is deterministic
                with_hw.append(plain_hyp)
            without_hw.append(plain_hyp)
            bar.update(1)
    return with_hw, without_hw


def run_eval(
    settings: Settings,
    manifest: Path,
    *,
    hotwords_file: Path | None = None,
    json_path: Path | None = None,
    max_diffs: int = 20,
    missed_below: float = 0.4,
    out: TextIO | None = None,
    err: TextIO | None = None,
    pipeline: Any = None,
    log_level: str | None = None,
) -> dict[str, Any]:
    """Evaluate the configured models on `manifest`: print the table to `out`, write the full
    report to `json_path` (if given) and return it. Raises ManifestError (and ModelError
    when the models cannot be loaded) before transcribing anything.

    `pipeline`: an already loaded `AsrPipeline` to use instead of loading one from the
    settings. `log_level`: reconfigure this process's logging once funasr is imported (the
    command line passes WARNING, so funasr's per-call INFO lines stay out of the way)."""
    out, err = out or sys.stdout, err or sys.stderr
    extra = read_hotword_file(hotwords_file) if hotwords_file else []
    utterances = load_manifest(manifest, extra)
    if json_path is not None and not Path(json_path).parent.is_dir():
        raise ManifestError(f"Cannot write {json_path}: its directory does not exist.")
    # funasr prints banners on stdout at import: keep stdout for the table.
    with contextlib.redirect_stdout(err):
        if pipeline is None:
            from engine.recognition.pipeline import (
                pipeline_for,  # funasr and torch: only when there is work
            )

            pipeline = pipeline_for(settings)
        if log_level is not None:
            configure_logging("eval", log_level)
        with_hw, without_hw = transcribe_all(pipeline, utterances, settings, err)
        info = pipeline.info()
    words = merge_hotwords([w for u in utterances for w in u.hotwords], None)
    report = build_report(
        utterances, with_hw, without_hw, missed_below=missed_below, manifest=str(manifest)
    )
    report["models"] = {
        "specs": info["models"],
        "random_weights": info["random_weights"],
        "device": info["device"],
    }
    report["warnings"] += check_hotwords(words, pipeline.specs["asr"]).warnings()
    if json_path is not None:
        Path(json_path).write_text(
            json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
    out.write(format_report(report, max_diffs=max_diffs))
    return report
