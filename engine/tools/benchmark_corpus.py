"""A Mandarin-like speech corpus for the throughput benchmark, built from espeak-ng.

`espeak-ng -v cmn-latn-pinyin` reads numbered pinyin with Mandarin phonetics (FUNASR_NOTES).
A pool of utterances of random syllables is synthesised once; each corpus file is those
utterances in a seeded random order with pauses between them (half 0.15-0.5 s, half
0.9-2 s, so VAD cuts segments of a few to a few tens of seconds) and faint noise under
everything (so no stretch is digital silence), trimmed to its target length. Files
alternate between two shapes a service sees most: 16 kHz mono 16-bit WAV (telephony,
recorders) and 44.1 kHz stereo 128 kbit/s MP3.
Deterministic for a seed; needs espeak-ng on PATH.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.audio.stream import AudioStream

from engine.audio import decode

RATE = 16_000
DEFAULT_LENGTHS_S = (5, 8, 12, 20, 30, 45, 60, 90, 120, 180, 300)
SYLLABLES = (
    "jin1 tian1 qi4 hen3 hao3 wo3 men5 qu4 gong1 yuan2 san4 bu4 ke1 ge1 jiang3 yi1 xia4 "
    "da4 jia1 dou1 gao1 xing4 ming2 wu3 san1 dian3 zai4 hui4 shi4 kai1 zhong1 guo2 ren2 "
    "xue2 sheng1 lao3 shi1 dian4 nao3 shou3 ji1 gong1 si1 jing1 li3 ke4 hu4 fu2 wu4 "
    "wen4 ti2 jie3 jue2 fang1 an4 shu4 ju4 fen1 xi1 bao4 gao4 xiang4 mu4 jin4 du4"
).split()


@dataclass(frozen=True)
class CorpusFile:
    path: Path
    fmt: str  # "wav" or "mp3"
    seconds: float

    def to_dict(self) -> dict:
        return {**asdict(self), "path": str(self.path)}


def build_corpus(
    directory: Path,
    lengths_s: tuple[float, ...] = DEFAULT_LENGTHS_S,
    *,
    seed: int = 0,
    utterances: int = 24,
) -> list[CorpusFile]:
    """Write one file per entry of `lengths_s` (alternately wav and mp3) and a manifest.json;
    an existing manifest with the same parameters is reused."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    manifest = directory / "manifest.json"
    params = {"lengths_s": list(lengths_s), "seed": seed, "utterances": utterances}
    if manifest.is_file():
        data = json.loads(manifest.read_text())
        if data.get("params") == params and all(Path(f["path"]).is_file() for f in data["files"]):
            return [CorpusFile(Path(f["path"]), f["fmt"], f["seconds"]) for f in data["files"]]
    rng = random.Random(seed)
    pool = [_utterance(rng) for _ in range(utterances)]
    noise = np.random.default_rng(seed)
    files = []
    for i, seconds in enumerate(lengths_s):
        fmt = "wav" if i % 2 == 0 else "mp3"
        samples = _assemble(pool, seconds, rng, noise)
        path = directory / f"{i:02d}-{int(seconds)}s.{fmt}"
        if fmt == "wav":
            _write(path, samples, "wav", "pcm_s16le", RATE, "mono", None)
        else:
            _write(path, samples, "mp3", "libmp3lame", 44_100, "stereo", 128_000)
        files.append(CorpusFile(path, fmt, round(len(samples) / RATE, 3)))
    manifest.write_text(json.dumps({"params": params, "files": [f.to_dict() for f in files]}))
    return files


def _utterance(rng: random.Random) -> np.ndarray:
    """3-12 s of espeak-ng speech: a few 'sentences' of random syllables."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("The benchmark corpus needs espeak-ng (apt-get install espeak-ng).")
    sentences = []
    for _ in range(rng.randint(1, 3)):
        words = " ".join(rng.choice(SYLLABLES) for _ in range(rng.randint(6, 16)))
        sentences.append(words)
    text = ", ".join(sentences) + "."
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "u.wav"
        subprocess.run(
            [exe, "-v", "cmn-latn-pinyin", "-w", str(wav), text],
            check=True,
            capture_output=True,
            timeout=60,
        )
        samples, _info = decode(wav)  # the service's own decoder: 16 kHz mono float32
    return samples


def _assemble(
    pool: list[np.ndarray], seconds: float, rng: random.Random, noise: np.random.Generator
) -> np.ndarray:
    total = int(seconds * RATE)
    pieces, length = [], 0
    while length < total:
        # half are pauses inside a turn, half sentence ends long enough (> 0.8 s) for VAD
        pause = rng.uniform(0.15, 0.5) if rng.random() < 0.5 else rng.uniform(0.9, 2.0)
        gap = np.zeros(int(pause * RATE), np.float32)
        clip = pool[rng.randrange(len(pool))]
        pieces += [gap, clip]
        length += len(gap) + len(clip)
    out = np.concatenate(pieces)[:total]
    out += (0.001 * noise.standard_normal(total)).astype(np.float32)  # about -60 dBFS
    return np.clip(out, -1.0, 1.0)


def _write(
    path: Path,
    samples: np.ndarray,
    fmt: str,
    codec: str,
    rate: int,
    layout: str,
    bit_rate: int | None,
) -> None:
    resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
    with av.open(str(path), "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=rate, layout=layout)
        if not isinstance(stream, AudioStream):
            raise ValueError(f"{codec} is not an audio codec")
        if bit_rate:
            stream.codec_context.bit_rate = bit_rate
        for start in range(0, len(samples), RATE):
            piece = np.ascontiguousarray(samples[start : start + RATE].reshape(1, -1))
            frame = av.AudioFrame.from_ndarray(piece, format="flt", layout="mono")
            frame.sample_rate = RATE
            frame.pts = start
            frame.time_base = Fraction(1, RATE)
            for converted in resampler.resample(frame):
                for packet in stream.encode(converted):
                    container.mux(packet)
        for converted in resampler.resample(None):
            for packet in stream.encode(converted):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
