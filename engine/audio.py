"""Probing and decoding uploaded audio with PyAV: any container in, 16 kHz mono float32 out.

PyAV bundles FFmpeg's libraries, so the service needs no system ffmpeg and funasr never
decodes files itself (it would shell out to the ffmpeg CLI for m4a/webm/opus/amr and probe
every file again). Two entry points, one per process:

- `probe` runs in the web process at upload time: it opens the container and decodes one
  frame, enough to reject what is not audio before a job exists. It never decodes the file.
- `decode` runs in the worker: the whole file, resampled and downmixed, ready for the model.

Every failure is an `AudioError` whose message is a sentence for the user; PyAV's own
exceptions never leave this module. Missing files and permission problems are not audio
problems and surface as the `OSError` Python raises for them.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.error
import av.logging
import numpy as np
from av.audio.frame import AudioFrame
from av.audio.stream import AudioStream
from av.container import InputContainer
from av.filter import Graph

from engine.errors import (
    AudioError,
    AudioTooLargeError,
    AudioTooLongError,
    CorruptAudioError,
    EmptyAudioError,
    NotAudioError,
)

log = logging.getLogger(__name__)

TARGET_RATE = 16_000
"""The rate the ASR model was trained on."""

SUPPORTED_EXTENSIONS: tuple[str, ...] = (
    "wav",
    "mp3",
    "flac",
    "ogg",
    "opus",
    "m4a",
    "aac",
    "webm",
    "amr",
    "mp4",
)
"""What the upload widget offers. Detection is by content, never by name: a stored file has
no extension, and any container in ALLOWED_DEMUXERS is accepted whatever it is called."""

ALLOWED_DEMUXERS: tuple[str, ...] = (
    "wav",
    "w64",
    "aiff",
    "caf",
    "au",
    "mp3",
    "aac",
    "ac3",
    "eac3",
    "dts",
    "flac",
    "ogg",
    "mov",
    "matroska",
    "amr",
    "amrnb",
    "amrwb",
    "asf",
    "avi",
    "flv",
    "mpeg",
    "mpegts",
    "wv",
    "ape",
    "tta",
)
"""FFmpeg demuxers we let open an upload (its `format_whitelist`). Audio and video containers
only: playlist and image demuxers (hls, concat, image2...) would read other files or URLs
named inside an uploaded file, and nothing a user records needs them."""

MAX_CONSECUTIVE_ERRORS = 100
"""Packets in a row that may fail to decode before the file counts as corrupt. Isolated bad
packets are skipped, as the ffmpeg CLI does (a glitch in a long recording should not lose
the whole job); a stream that stopped decoding altogether is not a glitch."""

_SINK_FRAME = TARGET_RATE  # the filter graph hands back 1 s frames: few Python round trips


@dataclass(frozen=True)
class AudioInfo:
    """What we know about an upload's audio, stored with its job."""

    container: str  # short demuxer name: "wav", "mp3", "ogg", "mp4" (also m4a/mov/3gp)...
    codec: str  # FFmpeg's codec name: "pcm_s16le", "mp3", "opus", "aac", "amr_nb"...
    # probe: what the header claims (None when it says nothing); decode: exact, counted from
    # decoded samples
    duration_ms: int | None
    sample_rate: int  # of the source stream, from its first decoded frame
    channels: int  # of the source stream, from its first decoded frame
    # probe only: True when duration_ms is FFmpeg's guess from the bitrate (an MP3 without a
    # Xing/VBRI frame, raw AAC, AMR...), which can be several times off; never a reason to
    # refuse a file
    duration_estimated: bool = False


def check_size(n_bytes: int, max_bytes: int) -> None:
    """Reject an upload by its size alone, before anything tries to parse it."""
    if n_bytes <= 0:
        raise EmptyAudioError("The file is empty (0 bytes).")
    if n_bytes > max_bytes:
        raise AudioTooLargeError(
            f"The file is {_mb(n_bytes)} MB; the upload limit is {_mb(max_bytes)} MB "
            "(SEACO_MAX_UPLOAD_MB)."
        )


def probe(path: str | Path, *, max_duration_s: float | None = None) -> AudioInfo:
    """Prove that `path` is audio we can decode, cheaply: open the container, check the
    duration its header states against `max_duration_s`, decode the first audio frame.

    Only a duration the container states is checked here; one FFmpeg estimates from the
    bitrate (`AudioInfo.duration_estimated`) is returned as an estimate and the limit is left
    to `decode`, which counts real samples. A header cannot prove the rest of the file is
    sound either; `decode` re-checks everything. Raises an AudioError subclass (NotAudioError,
    CorruptAudioError, EmptyAudioError, AudioTooLongError) saying what is wrong."""
    try:
        with _open(path) as (container, stream, estimated):
            header_s = _header_seconds(container, stream)
            stated_s = None if estimated else header_s
            if max_duration_s is not None and stated_s is not None and stated_s > max_duration_s:
                raise _too_long(stated_s, max_duration_s)
            first = next(_frames(container, stream), None)
            if first is None:
                raise EmptyAudioError("The file holds no audio samples.")
            return AudioInfo(
                container=_container_name(container),
                codec=_codec_name(stream),
                duration_ms=None if header_s is None else round(header_s * 1000),
                sample_rate=first.sample_rate,
                channels=first.layout.nb_channels,
                duration_estimated=estimated and header_s is not None,
            )
    except AudioError:
        raise
    except (av.error.FFmpegError, ValueError, IndexError, RuntimeError) as exc:
        raise CorruptAudioError(f"The audio could not be read: {_reason(exc)}.") from exc


def decode(
    path: str | Path, *, max_duration_s: float | None = None
) -> tuple[np.ndarray, AudioInfo]:
    """Decode the whole file to float32 mono at TARGET_RATE, values in [-1, 1].

    Stops as soon as the decoded audio passes `max_duration_s` (AudioTooLongError), so an
    8-hour file costs no more than the limit. Silence is valid audio and comes back as zeros;
    a file that yields no samples at all is an EmptyAudioError. A truncated file gives what
    precedes the cut (as ffmpeg does); damage the decoder cannot get past is a
    CorruptAudioError. NaN and infinite samples (possible only in float PCM) become 0: one bad
    sample should not cost a long recording, and the model must never see NaN."""
    try:
        with _open(path) as (container, stream, estimated):
            # a bitrate estimate is no basis for messages about the file's length
            header_s = None if estimated else _header_seconds(container, stream)
            mono = _MonoResampler()
            chunks: list[np.ndarray] = []
            first: AudioFrame | None = None
            source_s = 0.0
            replaced = 0
            float_pcm = _codec_name(stream).startswith("pcm_f")
            for frame in _frames(container, stream):
                if first is None:
                    first = frame
                source_s += frame.samples / frame.sample_rate
                if max_duration_s is not None and source_s > max_duration_s:
                    raise _too_long(header_s, max_duration_s)
                if float_pcm:
                    frame, bad = _finite(frame)
                    replaced += bad
                chunks.extend(mono.push(frame))
            chunks.extend(mono.flush())
            container_name, codec = _container_name(container), _codec_name(stream)
    except AudioError:
        raise
    except (av.error.FFmpegError, ValueError, IndexError, RuntimeError) as exc:
        raise CorruptAudioError(f"The audio could not be decoded: {_reason(exc)}.") from exc

    samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
    if first is None or samples.size == 0:
        raise EmptyAudioError("The file holds no audio samples.")
    finite = np.isfinite(samples)
    if not finite.all():  # float PCM was cleaned above; this guards every other path
        replaced += int(np.count_nonzero(~finite))
        samples[~finite] = 0.0
    if replaced:
        log.warning("%s: replaced %d NaN/infinite samples with 0", path, replaced)
    np.clip(samples, -1.0, 1.0, out=samples)  # float sources may exceed full scale
    if header_s is not None and samples.size < 0.9 * header_s * TARGET_RATE:
        log.warning(
            "%s: decoded %.1f s of the %.1f s its header announces (truncated file?)",
            path,
            samples.size / TARGET_RATE,
            header_s,
        )
    info = AudioInfo(
        container=container_name,
        codec=codec,
        duration_ms=round(samples.size * 1000 / TARGET_RATE),
        sample_rate=first.sample_rate,
        channels=first.layout.nb_channels,
    )
    return samples, info


# --- opening and demuxing ------------------------------------------------------------------
_ESTIMATED_DURATION = "Estimating duration from bitrate"
"""What libavformat logs (as a warning) when a container states no duration and it guesses
one from the bitrate (AVFMT_DURATION_FROM_BITRATE); PyAV exposes no other sign of it."""

_LOG_LEVEL = threading.Lock()


@contextmanager
def _ffmpeg_warnings() -> Iterator[list[tuple[int, str, str]]]:
    """FFmpeg's warnings logged by this thread meanwhile, as (level, name, message). PyAV
    passes FFmpeg's log on only when a level is set, and the level is process-wide: it is
    raised for the moment of the capture and put back, under a lock, so the rest of the time
    FFmpeg's chatter about damaged files stays out of app.log as before."""
    with _LOG_LEVEL:
        previous, skip_repeated = av.logging.get_level(), av.logging.get_skip_repeated()
        av.logging.set_level(av.logging.WARNING)
        av.logging.set_skip_repeated(False)  # the second file's warning repeats the first's
        try:
            with av.logging.Capture() as captured:
                yield captured
        finally:
            av.logging.set_level(previous)
            av.logging.set_skip_repeated(skip_repeated)


@contextmanager
def _open(path: str | Path) -> Iterator[tuple[InputContainer, AudioStream, bool]]:
    """The container, its best audio stream and whether FFmpeg only estimated its duration
    from the bitrate; or the AudioError saying why not."""
    path = Path(path)
    # A missing or unreadable file is our storage's problem, not the upload's: Python's own
    # OSError says so, before FFmpeg can turn it into something that reads like bad audio.
    with path.open("rb") as file:
        if not file.read(1):
            raise EmptyAudioError("The file is empty (0 bytes).")
    try:
        with _ffmpeg_warnings() as warnings:
            container = av.open(
                str(path),
                mode="r",
                container_options={"format_whitelist": ",".join(ALLOWED_DEMUXERS)},
                metadata_errors="ignore",
            )
    except av.error.ArgumentError as exc:  # EINVAL: detected, but not on the whitelist
        raise NotAudioError(
            "This file is not audio we can read (not a supported audio or video format)."
        ) from exc
    except av.error.InvalidDataError as exc:
        raise NotAudioError(
            f"This file is not audio we can read (format not recognised): {_reason(exc)}."
        ) from exc
    except av.error.FFmpegError as exc:  # EOF or EIO inside the header: cut off or damaged
        raise CorruptAudioError(
            f"The file could not be opened as audio; it may be truncated or damaged: "
            f"{_reason(exc)}."
        ) from exc
    with container:
        stream = container.streams.best("audio")
        if not isinstance(stream, AudioStream):  # None: no audio stream at all
            raise NotAudioError("The file has no audio stream.")
        if stream.codec_context is None:
            raise NotAudioError(
                f"The audio is in a format we cannot decode ({_codec_name(stream)})."
            )
        estimated = any(_ESTIMATED_DURATION in message for _level, _name, message in warnings)
        yield container, stream, estimated


def _frames(container: InputContainer, stream: AudioStream) -> Iterator[AudioFrame]:
    """The stream's decoded, non-empty frames. Skips packets the decoder rejects (see
    MAX_CONSECUTIVE_ERRORS); a demuxer error means the container itself is damaged."""
    decoded_s = 0.0
    failures = 0
    last_error: Exception | None = None
    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            break
        except av.error.FFmpegError as exc:
            raise _corrupt(decoded_s, exc) from exc
        try:
            frames = packet.decode()
        except av.error.FFmpegError as exc:
            failures += 1
            last_error = exc
            if failures >= MAX_CONSECUTIVE_ERRORS:
                raise _corrupt(decoded_s, exc) from exc
            continue
        failures = 0
        for frame in frames:
            if frame.samples:
                decoded_s += frame.samples / frame.sample_rate
                yield frame
    if decoded_s == 0.0 and last_error is not None:
        raise _corrupt(0.0, last_error) from last_error


def _header_seconds(container: InputContainer, stream: AudioStream) -> float | None:
    """The duration the file claims: the audio stream's own, else the container's."""
    if stream.duration is not None and stream.time_base is not None and stream.duration > 0:
        return float(stream.duration * stream.time_base)
    if container.duration is not None and container.duration > 0:
        return container.duration / av.time_base
    return None


def _container_name(container: InputContainer) -> str:
    """The demuxer's first name, except "mov,mp4,m4a,3gp,3g2,mj2" -> "mp4"."""
    name = container.format.name.split(",")[0]
    return "mp4" if name == "mov" else name


def _codec_name(stream: AudioStream) -> str:
    """The codec, not the decoder: "mp3" rather than "mp3float", "amr_nb" rather than "amrnb"."""
    codec = stream.codec_context.codec if stream.codec_context is not None else None
    return codec.canonical_name if codec is not None else "unknown"


# --- resampling ----------------------------------------------------------------------------
class _MonoResampler:
    """FFmpeg filter graph: abuffer -> pan (plain average) -> aformat (flt, mono, 16 kHz).

    We average the channels ourselves (pan with equal gains) instead of asking for a mono
    layout: libswresample's stereo->mono downmix sums L and R at -3 dB each, so a signal
    present on both channels comes out 1.41x louder than its mono original, and the level
    would depend on how the file was recorded. The model was trained on plain mono speech.
    Averaging first also means only one channel is resampled.

    A stream may change rate or layout mid-way (joined recordings): the graph is then
    flushed and rebuilt for the new parameters."""

    def __init__(self) -> None:
        self._graph: Graph | None = None
        self._key: tuple[str, str, int] | None = None

    def push(self, frame: AudioFrame) -> list[np.ndarray]:
        key = (frame.format.name, frame.layout.name, frame.sample_rate)
        out: list[np.ndarray] = []
        if key != self._key:
            out = self.flush()
            self._graph, self._key = _build_graph(frame), key
        assert self._graph is not None
        self._graph.push(frame)
        _drain(self._graph, out)
        return out

    def flush(self) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        if self._graph is not None:
            self._graph.push(None)
            _drain(self._graph, out)
            self._graph, self._key = None, None
        return out


def _build_graph(frame: AudioFrame) -> Graph:
    n = frame.layout.nb_channels
    graph = Graph()
    source = graph.add(
        "abuffer",
        sample_rate=str(frame.sample_rate),
        sample_fmt=frame.format.name,
        channel_layout=frame.layout.name,
        time_base=str(frame.time_base or Fraction(1, frame.sample_rate)),
    )
    gains = "+".join(f"{1 / n!r}*c{i}" for i in range(n))
    pan = graph.add("pan", f"mono|c0={gains}")
    aformat = graph.add(
        "aformat", sample_fmts="flt", sample_rates=str(TARGET_RATE), channel_layouts="mono"
    )
    sink = graph.add("abuffersink")
    source.link_to(pan)
    pan.link_to(aformat)
    aformat.link_to(sink)
    graph.configure()
    graph.set_audio_frame_size(_SINK_FRAME)
    return graph


def _drain(graph: Graph, out: list[np.ndarray]) -> None:
    while True:
        try:
            frame = graph.pull()
        except (av.error.BlockingIOError, av.error.EOFError):
            return
        out.append(frame.to_ndarray().reshape(-1))


def _finite(frame: AudioFrame) -> tuple[AudioFrame, int]:
    """The frame with NaN and +-Inf samples set to 0 (before resampling, which would smear
    them over their neighbours), and how many there were. Only float PCM can carry them;
    codecs compute finite output."""
    data = frame.to_ndarray()
    bad = ~np.isfinite(data)
    n_bad = int(np.count_nonzero(bad))
    if not n_bad:
        return frame, 0
    zeroed = data.copy()
    zeroed[bad] = 0
    clean = AudioFrame.from_ndarray(zeroed, format=frame.format.name, layout=frame.layout.name)
    clean.sample_rate = frame.sample_rate
    clean.pts = frame.pts
    clean.time_base = frame.time_base
    return clean, n_bad


# --- messages ------------------------------------------------------------------------------
def _too_long(header_s: float | None, limit_s: float) -> AudioTooLongError:
    if header_s is not None and header_s > limit_s:
        return AudioTooLongError(
            f"The audio lasts {_duration(header_s)}; the limit is {_duration(limit_s)} "
            "(SEACO_MAX_DURATION_S)."
        )
    return AudioTooLongError(
        f"The audio lasts longer than the limit of {_duration(limit_s)} (SEACO_MAX_DURATION_S)."
    )


def _corrupt(decoded_s: float, exc: Exception) -> CorruptAudioError:
    where = f" after {_duration(decoded_s)}" if decoded_s > 0 else ""
    return CorruptAudioError(
        f"The audio data is corrupt and could not be decoded{where}: {_reason(exc)}."
    )


def _reason(exc: BaseException) -> str:
    """FFmpeg's explanation without the server-side path PyAV appends to it."""
    if isinstance(exc, av.error.FFmpegError) and exc.strerror:
        return str(exc.strerror)
    return str(exc) or type(exc).__name__


def _duration(seconds: float) -> str:
    """4 h, 2 h 3 min, 12 min 5 s, 1.2 s."""
    whole = round(seconds)
    if whole >= 3600:
        hours, minutes = whole // 3600, whole % 3600 // 60
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if whole >= 60:
        minutes, secs = divmod(whole, 60)
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return f"{seconds:.1f} s"


def _mb(n_bytes: int) -> str:
    mb = n_bytes / (1024 * 1024)
    return f"{mb:.0f}" if math.isclose(mb, round(mb)) else f"{mb:.1f}"
