"""Aggregates for the Operations, Stability and Capacity pages: plain functions over plain
numbers (no database, no Streamlit), each with its method stated, so tests can check them
against synthetic histories with known answers.

- Percentiles: linear interpolation between closest ranks (numpy's default, also Excel's
  PERCENTILE.INC).
- Memory trend: ordinary least squares of memory against time; the verdict needs the growth
  it implies over the window to be both large (>= LEAK_MIN_MB and >= LEAK_MIN_FRACTION of the
  mean) and clear (slope at least LEAK_MIN_T standard errors from zero).
- Availability: the share of /health probes that answered HTTP 200 with status "ok".
- Outliers: Tukey's far-out fence on the real-time factor, Q3 + 3 x IQR (RTF rather than
  time, because long files are meant to take long).
- Capacity: processing time fitted as overhead + RTF x audio length by least squares, and
  queue waits from the M/G/1 queue (Pollaczek-Khinchine): one worker serving jobs in order,
  Poisson arrivals, any service-time distribution, W_q = lambda E[S^2] / (2 (1 - rho)).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

HOUR_MS = 3_600_000
PERCENTILES = (50, 95, 99)
LEAK_MIN_MB = 64.0
LEAK_MIN_FRACTION = 0.05
LEAK_MIN_T = 3.0
LEAK_MIN_POINTS = 12
LEAK_MIN_SPAN_MS = HOUR_MS
OUTLIER_IQR = 3.0
GAP_PROBES = 3  # a gap is this many probe intervals without a probe

LEAK_METHOD = (
    "Ordinary least-squares line of memory against time over the window's samples (1-minute "
    "means beyond the raw-retention period). 'growing' when the line rises by at least "
    f"{LEAK_MIN_MB:.0f} MB and {LEAK_MIN_FRACTION:.0%} of the mean over the window and the "
    f"slope is at least {LEAK_MIN_T:.0f} standard errors above zero; 'shrinking' likewise "
    f"downwards; otherwise 'flat'. Needs {LEAK_MIN_POINTS} samples over at least an hour. "
    "Samples are autocorrelated, so the standard error is optimistic: the size rule carries "
    "the verdict, the t rule only stops noise from being called a trend. A worker replaced by "
    "the memory guard starts low again, which flattens the line: read it with the restarts."
)
CAPACITY_METHOD = (
    "Processing time per job fitted as overhead + RTF x audio seconds (least squares over the "
    "window's done jobs); its residual spread is the service-time variance. Queue waits are "
    "the M/G/1 (Pollaczek-Khinchine) mean for one worker taking jobs in order: "
    "W_q = lambda E[S^2] / (2 (1 - rho)), rho = lambda E[S]. Clip sources (chunked near-live "
    "transcription: a source sends a clip of the clip length every clip length, and each clip "
    "is a job of its own) are counted with those clips taken as Poisson arrivals, which "
    "overstates the wait of evenly spaced clips, so the count errs on the safe side. The "
    "service does no streaming recognition: this is what a client that cuts a live source "
    "into clips would get."
)


# --- basic statistics -----------------------------------------------------------------------
def percentiles(
    values: Sequence[float], qs: Sequence[float] = PERCENTILES
) -> dict[float, float | None]:
    """{q: the q-th percentile} by linear interpolation; None for every q when empty."""
    clean = [float(v) for v in values if v is not None and not math.isnan(v)]
    if not clean:
        return {q: None for q in qs}
    found = np.percentile(np.array(clean), list(qs))
    return {q: float(v) for q, v in zip(qs, found, strict=True)}


@dataclass(frozen=True)
class LineFit:
    slope: float
    intercept: float
    slope_stderr: float  # 0 when the points lie exactly on the line
    n: int
    r2: float

    def at(self, x: float) -> float:
        return self.intercept + self.slope * x


def least_squares(
    xs: Sequence[float] | np.ndarray, ys: Sequence[float] | np.ndarray
) -> LineFit | None:
    """y = intercept + slope * x by ordinary least squares; None with fewer than 3 points or
    no spread in x."""
    x, y = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    n = len(x)
    if n < 3:
        return None
    dx = x - x.mean()
    sxx = float((dx * dx).sum())
    if sxx == 0:
        return None
    slope = float((dx * (y - y.mean())).sum() / sxx)
    intercept = float(y.mean() - slope * x.mean())
    residuals = y - (intercept + slope * x)
    sse = float((residuals * residuals).sum())
    syy = float(((y - y.mean()) ** 2).sum())
    stderr = math.sqrt(sse / (n - 2) / sxx)
    r2 = 1 - sse / syy if syy else 1.0
    return LineFit(slope, intercept, stderr, n, r2)


# --- memory trend ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Trend:
    verdict: str  # growing | flat | shrinking | not enough data
    slope_mb_per_h: float | None
    growth_mb: float | None  # what the line rises over the window
    t: float | None  # slope / its standard error
    minimum_mb: float | None
    maximum_mb: float | None
    mean_mb: float | None
    n: int

    @property
    def leak(self) -> bool:
        return self.verdict == "growing"

    def describe(self) -> str:
        if self.slope_mb_per_h is None:
            return self.verdict
        return (
            f"{self.verdict}: {self.slope_mb_per_h:+.1f} MB/h "
            f"({self.growth_mb:+.0f} MB over the window, {self.slope_mb_per_h * 24:+.0f} MB/day)"
        )


def memory_trend(times_ms: Sequence[int], values_bytes: Sequence[float | None]) -> Trend:
    """The leak verdict for one memory series (see LEAK_METHOD)."""
    pairs = [(t, v / 2**20) for t, v in zip(times_ms, values_bytes, strict=True) if v is not None]
    n = len(pairs)
    if not pairs:
        return Trend("not enough data", None, None, None, None, None, None, 0)
    mb = [v for _, v in pairs]
    low, high, mean = min(mb), max(mb), sum(mb) / n
    span = pairs[-1][0] - pairs[0][0] if n > 1 else 0
    fit = least_squares([t / HOUR_MS for t, _ in pairs], mb)
    if n < LEAK_MIN_POINTS or span < LEAK_MIN_SPAN_MS or fit is None:
        return Trend("not enough data", None, None, None, low, high, mean, n)
    growth = fit.slope * span / HOUR_MS
    t = math.inf if fit.slope_stderr == 0 else fit.slope / fit.slope_stderr
    if fit.slope == 0:
        t = 0.0
    big = abs(growth) >= max(LEAK_MIN_MB, LEAK_MIN_FRACTION * mean)
    verdict = "flat"
    if big and t >= LEAK_MIN_T:
        verdict = "growing"
    elif big and t <= -LEAK_MIN_T:
        verdict = "shrinking"
    return Trend(verdict, fit.slope, growth, t, low, high, mean, n)


# --- availability ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Availability:
    probes: int
    healthy: int
    answered: int  # HTTP 200, whatever the status

    @property
    def share(self) -> float | None:
        return self.healthy / self.probes if self.probes else None

    @property
    def answered_share(self) -> float | None:
        return self.answered / self.probes if self.probes else None


def availability(healthy: Sequence[bool], http_status: Sequence[int | None]) -> Availability:
    return Availability(
        probes=len(healthy),
        healthy=sum(1 for h in healthy if h),
        answered=sum(1 for code in http_status if code == 200),
    )


@dataclass(frozen=True)
class Spell:
    start_ms: int
    end_ms: int
    count: int  # probes in the spell (0 for a gap)
    detail: str


def unhealthy_spells(
    times_ms: Sequence[int], healthy: Sequence[bool], errors: Sequence[str | None]
) -> list[Spell]:
    """Runs of consecutive unhealthy probes, each with its first error."""
    spells: list[Spell] = []
    run: list[int] = []
    for i, ok in enumerate(healthy):
        if not ok:
            run.append(i)
            continue
        if run:
            spells.append(_spell(run, times_ms, errors))
            run = []
    if run:
        spells.append(_spell(run, times_ms, errors))
    return spells


def _spell(run: list[int], times_ms: Sequence[int], errors: Sequence[str | None]) -> Spell:
    first = next((errors[i] for i in run if errors[i]), None) or "unhealthy"
    return Spell(times_ms[run[0]], times_ms[run[-1]], len(run), first)


def probe_gaps(
    times_ms: Sequence[int], interval_ms: int, start_ms: int, end_ms: int
) -> list[Spell]:
    """Stretches of at least GAP_PROBES probe intervals with no probe: nobody was probing
    (the worker was not running). Before the first probe of the window counts only when the
    window started after probing began, i.e. the caller passes `start_ms` >= first probe."""
    if interval_ms <= 0:
        return []
    limit = GAP_PROBES * interval_ms
    edges = [start_ms, *times_ms, end_ms]
    gaps = []
    for before, after in zip(edges, edges[1:], strict=False):
        if after - before >= limit:
            gaps.append(Spell(before, after, 0, "no /health probe recorded"))
    return gaps


# --- jobs -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class JobCounts:
    done: int
    failed: int
    cancelled: int

    @property
    def success_rate(self) -> float | None:
        """Done among done + failed (a cancelled job did nothing wrong, nor right)."""
        finished = self.done + self.failed
        return self.done / finished if finished else None


def job_counts(states: Sequence[str]) -> JobCounts:
    return JobCounts(
        done=sum(1 for s in states if s == "done"),
        failed=sum(1 for s in states if s == "failed"),
        cancelled=sum(1 for s in states if s == "cancelled"),
    )


def throughput(audio_ms_done: Sequence[float], window_ms: float) -> float | None:
    """Audio hours transcribed per wall-clock hour over the window."""
    if window_ms <= 0:
        return None
    return sum(a for a in audio_ms_done if a) / window_ms


def busy_fraction(
    intervals: Sequence[tuple[int, int]], start_ms: int, end_ms: int, bucket_ms: int
) -> list[tuple[int, float]]:
    """For each bucket of [start, end): the share of it during which the worker was
    processing a job (the union of the jobs' start-finish intervals; one worker, so they do
    not overlap, but overlaps are merged anyway)."""
    buckets = max(1, math.ceil((end_ms - start_ms) / bucket_ms))
    busy = [0.0] * buckets
    merged: list[list[int]] = []
    for s, e in sorted((max(s, start_ms), min(e, end_ms)) for s, e in intervals):
        if e <= s:
            continue
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    for s, e in merged:
        first, last = (s - start_ms) // bucket_ms, (e - 1 - start_ms) // bucket_ms
        for b in range(first, last + 1):
            lo = start_ms + b * bucket_ms
            busy[b] += min(e, lo + bucket_ms) - max(s, lo)
    return [
        (start_ms + b * bucket_ms, busy[b] / min(bucket_ms, end_ms - start_ms - b * bucket_ms))
        for b in range(buckets)
    ]


def far_out(values: Sequence[float]) -> float | None:
    """Tukey's far-out fence Q3 + 3 x IQR; None with fewer than 4 values."""
    clean = [v for v in values if v is not None]
    if len(clean) < 4:
        return None
    q1, q3 = np.percentile(np.array(clean, dtype=float), [25, 75])
    return float(q3 + OUTLIER_IQR * (q3 - q1))


# --- capacity -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ServiceModel:
    """Measured service: processing seconds = overhead_s + rtf x audio seconds."""

    overhead_s: float
    rtf: float
    residual_sd_s: float
    n: int
    mean_s: float  # measured mean processing time
    second_moment_s2: float  # measured E[S^2]
    audio_s: float  # total audio in the sample
    processing_s: float  # total processing in the sample

    def service_s(self, audio_s: float) -> float:
        return max(0.0, self.overhead_s + self.rtf * audio_s)

    @property
    def sustainable_audio_per_hour(self) -> float:
        """Audio hours one worker gets through per hour when never idle, for the measured
        mix of files (total audio / total processing)."""
        return self.audio_s / self.processing_s if self.processing_s else 0.0


def fit_service(audio_s: Sequence[float], processing_s: Sequence[float]) -> ServiceModel | None:
    """Fit the service model on done jobs; None without any. With too little spread in
    audio length for a line, the overhead is taken as 0 and the RTF as the ratio of sums."""
    pairs = [(a, p) for a, p in zip(audio_s, processing_s, strict=True) if a and p is not None]
    if not pairs:
        return None
    a = np.array([x for x, _ in pairs], dtype=float)
    p = np.array([y for _, y in pairs], dtype=float)
    fit = least_squares(a, p)
    if fit is not None and fit.slope > 0 and fit.intercept >= 0:
        overhead, rtf = fit.intercept, fit.slope
    else:  # a line would say something absurd (negative overhead): fall back to the ratio
        overhead, rtf = 0.0, float(p.sum() / a.sum())
    residuals = p - (overhead + rtf * a)
    sd = float(math.sqrt((residuals**2).sum() / max(1, len(p) - 2))) if len(p) > 2 else 0.0
    return ServiceModel(
        overhead_s=float(overhead),
        rtf=float(rtf),
        residual_sd_s=sd,
        n=len(p),
        mean_s=float(p.mean()),
        second_moment_s2=float((p**2).mean()),
        audio_s=float(a.sum()),
        processing_s=float(p.sum()),
    )


def pk_wait_s(arrivals_per_s: float, mean_s: float, second_moment_s2: float) -> float:
    """Mean wait in the queue of an M/G/1 queue (Pollaczek-Khinchine); inf when the load
    reaches the worker's capacity (rho >= 1)."""
    rho = arrivals_per_s * mean_s
    if rho >= 1:
        return math.inf
    return arrivals_per_s * second_moment_s2 / (2 * (1 - rho))


def utilisation(arrivals_per_s: float, mean_s: float) -> float:
    return arrivals_per_s * mean_s


@dataclass(frozen=True)
class Streams:
    """How many clip sources one worker answers in time (see max_streams); the name is
    historical: these are sources of clips, each a job, not streaming recognition."""

    streams: int  # the most concurrent clip sources meeting the target
    latency_s: float | None  # mean latency (wait + processing of one chunk) at that count
    chunk_service_s: float
    limited_by: str


def max_streams(model: ServiceModel, chunk_s: float, target_latency_s: float) -> Streams:
    """How many clip sources, each sending a clip of `chunk_s` seconds of audio every
    `chunk_s` seconds (each clip a job), one worker keeps at a mean latency per clip (queue
    wait + processing) within `target_latency_s`."""
    service = model.service_s(chunk_s)
    second = model.residual_sd_s**2 + service**2
    if service <= 0:
        return Streams(0, None, service, "no measured service time")
    if service > target_latency_s:
        return Streams(0, None, service, "one chunk alone takes longer than the target")
    best, best_latency = 0, None
    n = 1
    while True:
        rate = n / chunk_s
        wait = pk_wait_s(rate, service, second)
        if math.isinf(wait):
            return Streams(best, best_latency, service, "the worker's capacity (utilisation 100 %)")
        latency = wait + service
        if latency > target_latency_s:
            return Streams(best, best_latency, service, "the target latency")
        best, best_latency = n, latency
        n += 1


def clip_sources_sentence(s: Streams, chunk_s: float, target_latency_s: float) -> str:
    """The Capacity page's sentence for `max_streams`' answer, naming what it computes:
    sources that each send a clip at a steady pace (not streaming recognition)."""
    latency = "–" if s.latency_s is None else f"{s.latency_s:.2f} s"
    return (
        f"**{s.streams}** sources, each sending a {chunk_s:g} s clip every {chunk_s:g} s "
        f"(each clip a job of its own, as a client cutting a live source into clips would "
        f"send them), get each clip's transcript within {target_latency_s:g} s on average (at "
        f"that count: {latency}; one clip alone takes {s.chunk_service_s:.2f} s). Limited by "
        f"{s.limited_by}. The service does no streaming recognition."
    )
