"""The operations aggregates on synthetic data with known answers."""

from __future__ import annotations

import math
import random

import pytest

from engine.dashboard import ops_aggregates

HOUR_MS = 3_600_000
MB = 2**20


def test_percentiles_interpolate_linearly():
    found = ops_aggregates.percentiles(list(range(1, 101)))
    assert found == {50: 50.5, 95: pytest.approx(95.05), 99: pytest.approx(99.01)}
    assert ops_aggregates.percentiles([]) == {50: None, 95: None, 99: None}
    assert ops_aggregates.percentiles([7.0, float("nan"), None]) == {50: 7.0, 95: 7.0, 99: 7.0}


def test_least_squares_recovers_an_exact_line():
    fit = ops_aggregates.least_squares([0, 1, 2, 3], [1, 3, 5, 7])
    assert (fit.slope, fit.intercept, fit.slope_stderr, fit.r2) == (2, 1, 0, 1)
    assert ops_aggregates.least_squares([1, 1, 1], [1, 2, 3]) is None  # no spread in x
    assert ops_aggregates.least_squares([1, 2], [1, 2]) is None


def _series(hours: float, every_min: float, base_mb: float, slope_mb_per_h: float, noise_mb: float):
    rng = random.Random(5)
    times, values = [], []
    t = 0.0
    while t <= hours * HOUR_MS:
        mb = base_mb + slope_mb_per_h * t / HOUR_MS + rng.uniform(-noise_mb, noise_mb)
        times.append(int(t))
        values.append(mb * MB)
        t += every_min * 60_000
    return times, values


def test_a_known_slope_gives_the_leak_verdict():
    # 72 h of worker RSS every 5 minutes, rising 10 MB/h under +-20 MB of noise
    trend = ops_aggregates.memory_trend(*_series(72, 5, 2000, 10, 20))
    assert trend.verdict == "growing" and trend.leak
    assert trend.slope_mb_per_h == pytest.approx(10, abs=0.2)
    assert trend.growth_mb == pytest.approx(720, abs=15)
    assert "MB/h" in trend.describe()


def test_noise_without_slope_is_flat_and_a_falling_line_is_shrinking():
    assert ops_aggregates.memory_trend(*_series(72, 5, 2000, 0, 50)).verdict == "flat"
    # a real but small rise (20 MB over 72 h) is below the size rule: not called a leak
    assert ops_aggregates.memory_trend(*_series(72, 5, 2000, 20 / 72, 1)).verdict == "flat"
    assert ops_aggregates.memory_trend(*_series(24, 5, 4000, -20, 5)).verdict == "shrinking"


def test_too_little_data_gives_no_verdict():
    short = ops_aggregates.memory_trend(*_series(0.5, 1, 2000, 100, 0))  # 30 min only
    assert short.verdict == "not enough data" and short.maximum_mb == pytest.approx(2050)
    assert ops_aggregates.memory_trend([], []).verdict == "not enough data"
    assert ops_aggregates.memory_trend([0, 1], [None, None]).n == 0


def test_availability_is_the_share_of_healthy_probes():
    healthy = [True] * 97 + [False] * 3
    codes = [200] * 98 + [None] * 2  # one "degraded" answer was HTTP 200 but not healthy
    a = ops_aggregates.availability(healthy, codes)
    assert (a.probes, a.healthy, a.share, a.answered_share) == (100, 97, 0.97, 0.98)
    assert ops_aggregates.availability([], []).share is None


def test_unhealthy_spells_and_probe_gaps():
    times = [0, 30, 60, 90, 120, 150]
    healthy = [True, False, False, True, False, True]
    errors = [None, "no answer: refused", None, None, "degraded", None]
    spells = ops_aggregates.unhealthy_spells(times, healthy, errors)
    assert [(s.start_ms, s.end_ms, s.count, s.detail) for s in spells] == [
        (30, 60, 2, "no answer: refused"),
        (120, 120, 1, "degraded"),
    ]
    # probes every 30 ms; 90 ms (3 intervals) without one is a gap
    gaps = ops_aggregates.probe_gaps([0, 30, 60, 200, 230], 30, 0, 260)
    assert [(g.start_ms, g.end_ms) for g in gaps] == [(60, 200)]
    assert ops_aggregates.probe_gaps([], 30, 0, 89) == []
    assert [(g.start_ms, g.end_ms) for g in ops_aggregates.probe_gaps([], 30, 0, 90)] == [(0, 90)]


def test_job_counts_and_throughput():
    counts = ops_aggregates.job_counts(["done"] * 216 + ["cancelled"])
    assert counts.success_rate == 1.0 and counts.cancelled == 1
    assert ops_aggregates.job_counts(["done", "failed", "failed", "done"]).success_rate == 0.5
    assert ops_aggregates.job_counts([]).success_rate is None
    # 3 jobs of 20 min audio in 2 h: 1 audio hour per 2 wall hours
    assert ops_aggregates.throughput([1_200_000] * 3, 2 * HOUR_MS) == 0.5


def test_busy_fraction_per_bucket():
    # buckets of 100 ms over [0, 300): busy 50-150 and 250-300 (the second clipped at the end)
    busy = ops_aggregates.busy_fraction([(50, 150), (250, 400), (260, 270)], 0, 300, 100)
    assert busy == [(0, 0.5), (100, 0.5), (200, 0.5)]
    # a last bucket cut short by the window's end is measured against its own length
    assert ops_aggregates.busy_fraction([(0, 250)], 0, 250, 100)[-1] == (200, 1.0)


def test_far_out_fence():
    values = [0.10, 0.11, 0.12, 0.10, 0.11, 0.12, 0.10, 1.0]
    fence = ops_aggregates.far_out(values)
    q1, q3 = 0.1, 0.12
    assert fence == pytest.approx(q3 + 3 * (q3 - q1), abs=1e-3)
    assert [v for v in values if v > fence] == [1.0]
    assert ops_aggregates.far_out([1, 2, 3]) is None


def test_service_model_from_an_exact_linear_cost():
    audio = [10, 30, 60, 120, 240]
    processing = [0.5 + 0.1 * a for a in audio]
    m = ops_aggregates.fit_service(audio, processing)
    assert m.overhead_s == pytest.approx(0.5) and m.rtf == pytest.approx(0.1)
    assert m.residual_sd_s == pytest.approx(0, abs=1e-9)
    assert m.service_s(10) == pytest.approx(1.5)
    assert m.sustainable_audio_per_hour == pytest.approx(sum(audio) / sum(processing))
    # all files the same length: no line, the ratio of sums
    same = ops_aggregates.fit_service([60, 60, 60], [6, 6.2, 6.4])
    assert same.overhead_s == 0 and same.rtf == pytest.approx(18.6 / 180)
    assert ops_aggregates.fit_service([], []) is None


def test_pollaczek_khinchine_matches_mm1():
    # exponential service with mean 1 s has E[S^2] = 2; M/M/1 waits rho / (mu - lambda)
    assert ops_aggregates.pk_wait_s(0.5, 1.0, 2.0) == pytest.approx(0.5 / (1 - 0.5))
    # deterministic service (M/D/1) waits half as long
    assert ops_aggregates.pk_wait_s(0.5, 1.0, 1.0) == pytest.approx(0.5)
    assert math.isinf(ops_aggregates.pk_wait_s(1.0, 1.0, 1.0))


def test_real_time_streams_at_a_target_latency():
    # 1 s overhead + 0.1 x 10 s chunk = 2 s per chunk, no spread. With N streams
    # lambda = N/10, rho = 0.2 N, W = 0.2 N / (1 - 0.2 N): N = 3 gives 2 + 1.5 = 3.5 s,
    # N = 4 gives 2 + 4 = 6 s > 5 s.
    m = ops_aggregates.ServiceModel(1.0, 0.1, 0.0, 10, 2.0, 4.0, 100.0, 20.0)
    s = ops_aggregates.max_streams(m, chunk_s=10, target_latency_s=5)
    assert (s.streams, s.latency_s, s.chunk_service_s) == (3, pytest.approx(3.5), 2.0)
    assert s.limited_by == "the target latency"
    # a generous target is limited by capacity instead: rho < 1 means N < 5
    assert ops_aggregates.max_streams(m, 10, 1000).streams == 4
    assert ops_aggregates.max_streams(m, 10, 1.5).streams == 0
