"""Throughput of the whole service against a plain funasr loop, measured in one run.

The same as `seaco bench` (engine/tools/throughput_benchmark.py holds the harness; see
BENCHMARKS.md):

    .venv/bin/python bench/throughput.py --size tiny
    .venv/bin/python bench/throughput.py --models /tmp/seaco-full-models --work /tmp/bench-full
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.tools.throughput_benchmark import main

if __name__ == "__main__":
    sys.exit(main())
