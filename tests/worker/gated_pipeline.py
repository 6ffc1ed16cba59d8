"""Test seam: the real pipeline, with a gate in front of every job.

A worker started with SEACO_TEST_PIPELINE=tests.worker.gated_pipeline:load (read by
engine/cli.py, nowhere else) builds the real FunASR pipeline (queue_worker.load_pipeline) and
wraps its `transcribe`: each job first waits until the file named by SEACO_TEST_GATE exists,
then runs through the real pipeline unchanged. A test closes the gate (removes the file),
queues jobs, waits until every worker holds one (so each of them provably does some of the
work, or dies mid-job when the test kills it), then opens the gate. The wait polls with a
deadline (engine.waiting.wait_for), as the tests themselves wait.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from engine.config import Settings
from engine.waiting import wait_for
from engine.worker.queue_worker import load_pipeline

SPEC = "tests.worker.gated_pipeline:load"
GATE_ENV = "SEACO_TEST_GATE"


class GatedPipeline:
    def __init__(self, real: Any, gate: Path):
        self.real = real
        self.gate = gate

    def transcribe(self, samples: Any, hotwords: list[str] | None = None) -> Any:
        wait_for(self.gate.exists, timeout=3600, what=f"the test to open the gate {self.gate}")
        return self.real.transcribe(samples, hotwords)

    def info(self) -> dict[str, Any]:
        return self.real.info()


def load(settings: Settings) -> GatedPipeline:
    return GatedPipeline(load_pipeline(settings), Path(os.environ[GATE_ENV]))
