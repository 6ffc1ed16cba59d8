"""Write a `seaco eval` manifest for an AISHELL-1 hotword (named-entity) test set.

The SeACo-Paraformer authors published two subsets of AISHELL-1 with hotword lists
(https://github.com/R1ckShi/SeACo-Paraformer, `data/test` = Test-Aishell1-NE: 808
utterances, 400 hotwords; `data/dev` = Dev-Aishell1-NE: 1334 utterances, 600 hotwords).
Their `text` file has one `UTTID reference` line per utterance; the audio is AISHELL-1's own
(https://www.openslr.org/33/, `data_aishell/wav/{test,dev}/SPEAKER/UTTID.wav` once the
per-speaker archives are unpacked). The hotword list is given to every utterance with
`seaco eval --hotwords-file .../hotword.txt`, as in the paper.

    .venv/bin/python bench/aishell_ne_manifest.py --text SeACo-Paraformer/data/test/text \
        --wav-dir data_aishell/wav/test --out ne-test.jsonl
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def build_manifest(text_file: Path, wav_dir: Path, out: Path) -> int:
    """Write one JSON line per utterance of `text_file`; returns the count. Every audio
    file must exist (a partly unpacked corpus would silently skew the figures)."""
    wavs = {p.stem: p.resolve() for p in Path(wav_dir).rglob("*.wav")}
    rows, missing = [], []
    for line in Path(text_file).read_text(encoding="utf-8").splitlines():
        utt_id, _, reference = line.strip().partition(" ")
        if not utt_id:
            continue
        if utt_id not in wavs:
            missing.append(utt_id)
            continue
        rows.append({"id": utt_id, "audio": str(wavs[utt_id]), "text": reference.strip()})
    if missing:
        raise SystemExit(
            f"error: {len(missing)} utterances have no wav under {wav_dir} (first: {missing[0]}). "
            "Unpack AISHELL-1's per-speaker archives (wav/*/S*.tar.gz) first."
        )
    with open(out, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--text", required=True, type=Path, help="the subset's text file")
    parser.add_argument("--wav-dir", required=True, type=Path, help="AISHELL-1 wav/test or dev")
    parser.add_argument("--out", required=True, type=Path, help="manifest to write (jsonl)")
    args = parser.parse_args(argv)
    count = build_manifest(args.text, args.wav_dir, args.out)
    print(f"{args.out}: {count} utterances")
    return 0


if __name__ == "__main__":
    sys.exit(main())
