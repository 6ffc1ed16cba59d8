"""Test seam: the real pipeline, made to hang or crash on a marked job.

A worker started with SEACO_TEST_PIPELINE=tests.fault_pipeline:load (read by engine/cli.py,
nowhere else) builds its pipeline here: the real FunASR pipeline
(engine.worker.queue_worker.load_pipeline) with `transcribe` wrapped. A job whose hotwords
include HANG_WORD never returns, as a decoder stuck inside native code would (the heartbeat
thread keeps running, so only the hard time limit can catch it); one with CRASH_WORD kills
the process with SIGSEGV, as a crash in native code would. Every other job runs through the
real pipeline unchanged.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

from engine.config import Settings
from engine.worker.queue_worker import load_pipeline

SPEC = "tests.fault_pipeline:load"
# Markers the tiny model can spell (the worker leaves out hotwords it cannot: see
# hotword_vocabulary.select_hotwords), in combinations no other test uses.
HANG_WORD = "天天天天天天"
CRASH_WORD = "气气气气气气"


class FaultyPipeline:
    def __init__(self, real: Any):
        self.real = real

    def transcribe(self, samples: Any, hotwords: list[str] | None = None) -> Any:
        words = hotwords or []
        if CRASH_WORD in words:
            os.kill(os.getpid(), signal.SIGSEGV)
        if HANG_WORD in words:
            threading.Event().wait()  # forever
        return self.real.transcribe(samples, hotwords)

    def info(self) -> dict[str, Any]:
        return self.real.info()


def load(settings: Settings) -> FaultyPipeline:
    return FaultyPipeline(load_pipeline(settings))
