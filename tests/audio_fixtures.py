"""Real audio files for tests, written with PyAV (the library the service decodes with).

Shared by several test modules: `tone` makes samples, `write_audio` encodes them into any
container the service accepts, `speech` makes a Mandarin-like recording.
"""

from __future__ import annotations

import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

MPEG_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)  # MP3 and AAC

# fmt -> (container format, encoder, rates the encoder takes or None for any, forced channels)
# "ogg" is Vorbis and "opus" is Opus, both in Ogg, as browsers and phones label them; "m4a"
# and "mp4" are AAC in MP4, "aac" is raw AAC (ADTS).
FORMATS: dict[str, tuple[str, str, tuple[int, ...] | None, int | None]] = {
    "wav": ("wav", "pcm_s16le", None, None),
    "mp3": ("mp3", "libmp3lame", MPEG_RATES, None),
    "flac": ("flac", "flac", None, None),
    "ogg": ("ogg", "vorbis", None, None),
    "opus": ("ogg", "libopus", (48000,), None),
    "m4a": ("ipod", "aac", MPEG_RATES, None),
    "mp4": ("mp4", "aac", MPEG_RATES, None),
    "aac": ("adts", "aac", MPEG_RATES, None),
    "webm": ("webm", "libopus", (48000,), None),
    "amr": ("amr", "libopencore_amrnb", (8000,), 1),
}

LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}


def tone(
    seconds: float,
    rate: int = 16000,
    channels: int = 1,
    freq: float = 440.0,
    amp: float = 0.5,
) -> np.ndarray:
    """A sine at `amp` peak, identical on every channel: float32, shape (channels, n).

    RMS is amp/sqrt(2), so a test can check the decoded level without knowing the codec."""
    n = round(seconds * rate)
    t = np.arange(n, dtype=np.float64) / rate
    wave = (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.repeat(wave[np.newaxis, :], channels, axis=0)


def _resample_linear(samples: np.ndarray, rate: int, new_rate: int) -> np.ndarray:
    """Plain linear interpolation: good enough to *make* test input at an encoder's rate
    (the encoded content is what the decoder is then checked against)."""
    n_out = round(samples.shape[1] * new_rate / rate)
    x_old = np.arange(samples.shape[1]) / rate
    x_new = np.arange(n_out) / new_rate
    return np.stack([np.interp(x_new, x_old, ch) for ch in samples]).astype(np.float32)


def write_audio(
    path: Path,
    samples: np.ndarray,
    rate: int,
    fmt: str,
    *,
    codec: str | None = None,
) -> Path:
    """Encode `samples` (float in [-1, 1], shape (channels, n) or (n,)) into `path`.

    fmt is one of FORMATS. Encoders that only take some rates (Opus: 48 kHz, AMR-NB: 8 kHz)
    get the audio resampled; AMR-NB is mono, so channels are averaged first (averaging keeps
    the level, which FFmpeg's own downmix would not). `codec` overrides the encoder, e.g.
    "pcm_f64le" or "pcm_f32le" for a float wav."""
    container_format, encoder, rates, forced_channels = FORMATS[fmt]
    encoder = codec or encoder
    data = np.asarray(samples, dtype=np.float32)
    if data.ndim == 1:
        data = data[np.newaxis, :]
    if forced_channels == 1 and data.shape[0] > 1:
        data = data.mean(axis=0, keepdims=True)
    if rates is not None and rate not in rates:
        new_rate = min(rates, key=lambda r: (r < rate, abs(r - rate)))
        data = _resample_linear(data, rate, new_rate)
        rate = new_rate
    layout = LAYOUTS[data.shape[0]]

    with av.open(str(path), "w", format=container_format) as container:
        stream = container.add_stream(encoder, rate=rate, layout=layout)
        if encoder == "vorbis":  # FFmpeg's native Vorbis encoder is marked experimental
            stream.codec_context.options = {"strict": "experimental"}
        if encoder == "libopencore_amrnb":
            stream.codec_context.bit_rate = 12200
        # Feed in 100 ms chunks; PyAV re-frames to the encoder's frame size itself.
        chunk = max(1, rate // 10)
        for start in range(0, data.shape[1], chunk):
            piece = np.ascontiguousarray(data[:, start : start + chunk])
            frame = av.AudioFrame.from_ndarray(piece, format="fltp", layout=layout)
            frame.sample_rate = rate
            frame.pts = start
            frame.time_base = Fraction(1, rate)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def synthetic_speech(seconds: float, rate: int = 16000, seed: int = 0) -> np.ndarray:
    """A voiced, syllable-like signal: a gliding 100-200 Hz buzz with 16 harmonics, gated into
    about 4 syllables a second, at speech level (RMS 0.1)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    f0 = 150 + 50 * np.sin(2 * np.pi * 0.7 * t + rng.uniform(0, 6))
    phase = 2 * np.pi * np.cumsum(f0) / rate
    weights = rng.uniform(0.2, 1.0, size=16)
    voiced = sum(weights[k - 1] * np.sin(k * phase) / k for k in range(1, 17))
    syllable = np.clip(np.sin(2 * np.pi * 4.0 * t) * 1.5, 0, 1) ** 0.5
    signal = voiced * syllable + 0.003 * rng.standard_normal(n)
    return (0.1 * signal / np.sqrt(np.mean(signal**2))).astype(np.float32)


def speech(path: Path, text: str = "jin1 tian1 tian1 qi4 hen3 hao3") -> Path:
    """Write Mandarin-like speech for `text` (numbered pinyin) to `path` as a wav.

    Uses `espeak-ng -v cmn-latn-pinyin` when it is installed (22.05 kHz mono s16). Without
    espeak-ng (or if it fails) it falls back to a synthetic voiced signal at 16 kHz, about
    0.35 s per syllable, so tests that only need speech-like audio still run; tests that need
    real phonetics must check `shutil.which("espeak-ng")` themselves."""
    path = Path(path)
    exe = shutil.which("espeak-ng")
    if exe is not None:
        proc = subprocess.run(
            [exe, "-v", "cmn-latn-pinyin", "-w", str(path), text],
            capture_output=True,
            timeout=60,
            check=False,
        )
        if proc.returncode == 0 and path.exists() and path.stat().st_size > 44:
            return path
    syllables = max(1, len(text.split()))
    return write_audio(path, synthetic_speech(0.35 * syllables), 16000, "wav")


def speech_samples(path: Path, text: str = "jin1 tian1 tian1 qi4 hen3 hao3") -> np.ndarray:
    """`speech()` decoded by the service's own decoder: 16 kHz mono float32."""
    from engine.audio import decode

    samples, _info = decode(speech(path, text))
    return samples


def speech_file(tmp_path, fmt="mp3", text="jin1 tian1 tian1 qi4 hen3 hao3"):
    """Speech from espeak-ng (see speech_samples) in the given container format."""
    samples = speech_samples(tmp_path / f"speech-{fmt}.wav", text)
    return write_audio(tmp_path / f"speech.{fmt}", samples, 16000, fmt)


def mp3_without_xing(path: Path, silence_s: float = 5.0, noise_s: float = 10.0) -> Path:
    """An ABR MP3 whose header cannot tell its length: silence, then noise, 32 kbit/s average,
    no Xing/Info frame (the issue's `ffmpeg ... -abr 1 -b:a 32k -write_xing 0`, made with
    PyAV). FFmpeg guesses the length from the first (silent, cheap) frames' bitrate: about
    44 s for the 15 s file."""
    rate = 16000
    rng = np.random.default_rng(0)
    noise = rng.uniform(-0.3, 0.3, round(noise_s * rate))
    samples = np.concatenate([np.zeros(round(silence_s * rate)), noise]).astype(np.float32)
    with av.open(str(path), "w", format="mp3", options={"write_xing": "0"}) as container:
        stream = container.add_stream("libmp3lame", rate=rate, layout="mono")
        stream.codec_context.bit_rate = 32000
        stream.codec_context.options = {"abr": "1"}
        for start in range(0, samples.size, 1152):
            frame = av.AudioFrame.from_ndarray(
                samples[np.newaxis, start : start + 1152], format="flt", layout="mono"
            )
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path
