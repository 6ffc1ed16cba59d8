"""bench/soak.py, the soak harness, replays every scenario briefly against a real service and
writes a report with the figures RELIABILITY.md quotes (the long runs are in RELIABILITY.md)."""

from __future__ import annotations

import json
import sys

import pytest

from tests.conftest import SERVICE_TOKEN
from tests.procs import ROOT

pytestmark = pytest.mark.slow


def test_soak_harness_replays_every_scenario_and_reports(tiny_service, tmp_path):
    _cfg, base, _tmp, _pid = tiny_service
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import soak
    finally:
        sys.path.remove(str(ROOT / "bench"))
    out = tmp_path / "soak"
    code = soak.main([
        "--url", base, "--token", SERVICE_TOKEN, "--scenarios", "A,B,C,soak",
        "--audio-scale", "0.02", "--rounds-b", "1", "--rounds-c", "1", "--soak-hours", "2",
        "--compress", "3600", "--probe-s", "0.5", "--out", str(out),
    ])  # fmt: skip
    report = json.loads((out / "report.json").read_text())
    summary = report["summary"]
    assert code == 0, summary
    submitted = {name: s["submitted"] for name, s in summary["scenarios"].items()}
    assert submitted == {"A": 50, "B": 8, "C": 3, "soak": 10}
    assert all(s["done"] == s["submitted"] for s in summary["scenarios"].values())
    assert all(s["e2e_s"]["p95"] is not None for s in summary["scenarios"].values())
    assert summary["availability"]["http_200_share"] == 1.0
    assert summary["rss"]["samples"] >= 2 and summary["rss"]["max_mb"] > 0
    assert summary["system_info_requests"]["non_200"] == 0
    assert "| soak | 10 | 10 | 0 |" in (out / "report.md").read_text()
