"""Accuracy and hotword evaluation: the same as `seaco eval` (see README, "Evaluating
accuracy and hotwords"), runnable from a checkout without installing the package.

    SEACO_ASR_MODEL=... .venv/bin/python bench/eval.py MANIFEST [--hotwords-file F] [--json OUT]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.cli import main

if __name__ == "__main__":
    sys.exit(main(["eval", *sys.argv[1:]]))
