"""engine.audio on real files: every accepted format, resampling and downmix levels, damaged
and hostile input. Files are written with PyAV's encoders into tmp_path; nothing is mocked."""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

import av
import numpy as np
import pytest

from engine import audio
from engine.errors import (
    AudioError,
    AudioTooLargeError,
    AudioTooLongError,
    CorruptAudioError,
    EmptyAudioError,
    NotAudioError,
)
from tests.audio_fixtures import mp3_without_xing, speech, tone, write_audio

SINE_RMS = 0.5 / np.sqrt(2)  # tone()'s default amplitude

# fmt -> (container, codec, source rate after encoding from 44.1 kHz, channels, level tolerance)
# Lossy codecs move the level a little: LAME encodes ~5% quieter, AMR-NB ~8%.
EXPECTED = {
    "wav": ("wav", "pcm_s16le", 44100, 2, 0.01),
    "mp3": ("mp3", "mp3", 44100, 2, 0.07),
    "flac": ("flac", "flac", 44100, 2, 0.01),
    "ogg": ("ogg", "vorbis", 44100, 2, 0.05),
    "opus": ("ogg", "opus", 48000, 2, 0.05),
    "m4a": ("mp4", "aac", 44100, 2, 0.05),
    "mp4": ("mp4", "aac", 44100, 2, 0.05),
    "aac": ("aac", "aac", 44100, 2, 0.05),
    "webm": ("matroska", "opus", 48000, 2, 0.05),
    "amr": ("amr", "amr_nb", 8000, 1, 0.12),
}


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def peak_hz(x: np.ndarray, rate: int = audio.TARGET_RATE) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.fft.rfftfreq(x.size, 1 / rate)[np.argmax(spectrum)])


def assert_sentence(exc: pytest.ExceptionInfo[AudioError], *words: str) -> None:
    """A message for a user: a capitalised sentence naming the problem, with no Python or
    FFmpeg internals and no server path in it."""
    message = str(exc.value)
    assert re.fullmatch(r"[A-Z].*[.)]", message), message
    for word in words:
        assert word.lower() in message.lower(), (word, message)
    assert "Errno" not in message and "/tmp" not in message and "av.error" not in message


def wav_header(n_data_bytes: int, *, rate: int = 16000, channels: int = 1) -> bytes:
    """A canonical 16-bit PCM RIFF header that claims n_data_bytes of samples."""
    block = 2 * channels
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * block, block, 16)
    return (
        b"RIFF"
        + struct.pack("<I", 36 + n_data_bytes)
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", n_data_bytes)
    )


def png_bytes() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    pixels = b"".join(b"\x00" + bytes(range(30)) for _ in range(10))
    header = struct.pack(">IIBBBBB", 10, 10, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(pixels))
        + chunk(b"IEND", b"")
    )


# --- formats -------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", sorted(EXPECTED))
def test_every_format_round_trips_to_16k_mono_float(tmp_path: Path, fmt: str) -> None:
    container, codec, rate, channels, level_tol = EXPECTED[fmt]
    path = write_audio(tmp_path / f"tone.{fmt}", tone(1.5, 44100, 2, freq=1000), 44100, fmt)

    info = audio.probe(path, max_duration_s=60)
    assert (info.container, info.codec) == (container, codec)
    assert (info.sample_rate, info.channels) == (rate, channels)
    assert info.duration_ms is None or abs(info.duration_ms - 1500) <= 100  # AMR: estimated

    samples, decoded = audio.decode(path, max_duration_s=60)
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert decoded.duration_ms == round(samples.size * 1000 / audio.TARGET_RATE)
    assert abs(decoded.duration_ms - 1500) <= 50
    assert (decoded.container, decoded.codec, decoded.sample_rate) == (container, codec, rate)
    assert rms(samples[1600:-1600]) == pytest.approx(SINE_RMS, rel=level_tol)
    assert peak_hz(samples) == pytest.approx(1000, abs=5)
    assert np.abs(samples).max() <= 1.0


def test_supported_extensions_are_all_covered_here() -> None:
    assert set(audio.SUPPORTED_EXTENSIONS) == set(EXPECTED)


def test_every_allowed_demuxer_exists_in_pyav() -> None:
    """A typo in the whitelist would silently refuse a whole format."""
    names: set[str] = set()
    for name in av.formats_available:
        try:
            names.update(av.ContainerFormat(name, "r").name.split(","))
        except ValueError:
            continue  # muxer only
    assert set(audio.ALLOWED_DEMUXERS) <= names


def test_content_decides_the_format_not_the_name(tmp_path: Path) -> None:
    """Stored uploads have no extension, and users rename files."""
    mp3 = write_audio(tmp_path / "a.mp3", tone(1.0), 16000, "mp3")
    (tmp_path / "stored").write_bytes(mp3.read_bytes())
    (tmp_path / "lying.wav").write_bytes(mp3.read_bytes())
    for path in (tmp_path / "stored", tmp_path / "lying.wav"):
        assert audio.probe(path).codec == "mp3"
        assert audio.decode(path)[1].duration_ms == 1000


def test_speech_fixture_decodes_at_speech_level(tmp_path: Path) -> None:
    samples, info = audio.decode(speech(tmp_path / "speech.wav"))
    assert info.duration_ms > 1000
    assert 0.01 < rms(samples) < 0.5


def test_audio_track_of_a_video_file_is_decoded(tmp_path: Path) -> None:
    path = tmp_path / "clip.webm"
    with av.open(str(path), "w") as out:
        video = out.add_stream("libvpx", rate=10)
        video.width, video.height, video.pix_fmt = 32, 32, "yuv420p"
        sound = out.add_stream("libopus", rate=48000, layout="mono")
        for i in range(10):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), i * 20, np.uint8), "rgb24")
            frame.pts = i
            out.mux(video.encode(frame))
        samples = tone(1.0, 48000, freq=1000)
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 48000, 0
        out.mux(sound.encode(frame))
        out.mux(sound.encode(None))
        out.mux(video.encode(None))
    decoded, info = audio.decode(path)
    assert info.codec == "opus" and abs(info.duration_ms - 1000) <= 50
    assert rms(decoded[1600:-1600]) == pytest.approx(SINE_RMS, rel=0.05)


# --- resampling and downmix ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("rate", "channels"),
    [(16000, 1), (44100, 2), (8000, 1), (22050, 1), (48000, 6), (8000, 2)],
)
def test_resampling_keeps_duration_pitch_and_level(
    tmp_path: Path, rate: int, channels: int
) -> None:
    path = write_audio(tmp_path / "in.wav", tone(1.234, rate, channels, freq=1000), rate, "wav")
    samples, info = audio.decode(path)
    assert (info.sample_rate, info.channels) == (rate, channels)
    assert abs(samples.size - round(1.234 * audio.TARGET_RATE)) <= 1
    assert info.duration_ms == 1234
    assert peak_hz(samples) == pytest.approx(1000, abs=2)
    assert rms(samples[160:-160]) == pytest.approx(SINE_RMS, rel=0.02)


@pytest.mark.parametrize("fmt", ["wav", "flac"])
def test_stereo_with_identical_channels_has_the_mono_level(tmp_path: Path, fmt: str) -> None:
    """FFmpeg's own stereo->mono downmix is 3 dB louder (sums at 0.707 each); we average."""
    mono, _ = audio.decode(write_audio(tmp_path / f"m.{fmt}", tone(2, 44100, 1, 1000), 44100, fmt))
    both, _ = audio.decode(write_audio(tmp_path / f"s.{fmt}", tone(2, 44100, 2, 1000), 44100, fmt))
    assert rms(both) == pytest.approx(SINE_RMS, rel=0.02)
    assert rms(both) == pytest.approx(rms(mono), rel=0.005)


def test_six_channels_are_averaged_equally(tmp_path: Path) -> None:
    """A sine on one channel of six (silence elsewhere) comes out at 1/6 of its level."""
    samples = tone(1.0, 48000, 6, freq=1000)
    samples[1:] = 0.0
    decoded, info = audio.decode(write_audio(tmp_path / "51.wav", samples, 48000, "wav"))
    assert info.channels == 6
    assert rms(decoded[160:-160]) == pytest.approx(SINE_RMS / 6, rel=0.02)


def test_stream_that_changes_rate_midway_is_decoded_whole(tmp_path: Path) -> None:
    """Two MP3s joined byte for byte (as some recorders append): 44.1 kHz stereo then
    22.05 kHz mono. The resampler is rebuilt at the change; both halves keep their level."""
    first = write_audio(tmp_path / "a.mp3", tone(1.0, 44100, 2, freq=1000), 44100, "mp3")
    second = write_audio(tmp_path / "b.mp3", tone(1.0, 22050, 1, freq=1000), 22050, "mp3")
    joined = tmp_path / "joined.mp3"
    joined.write_bytes(first.read_bytes() + second.read_bytes())
    samples, info = audio.decode(joined)
    assert 1900 <= info.duration_ms <= 2200
    assert rms(samples[1600:8000]) == pytest.approx(SINE_RMS, rel=0.07)
    assert rms(samples[-8000:-1600]) == pytest.approx(SINE_RMS, rel=0.07)


# --- sample values -------------------------------------------------------------------------
def test_float64_wav_comes_through_unchanged(tmp_path: Path) -> None:
    source = tone(1.0, 16000, 1, freq=440, amp=0.8).astype(np.float64)
    path = write_audio(tmp_path / "f64.wav", source, 16000, "wav", codec="pcm_f64le")
    samples, info = audio.decode(path)
    assert info.codec == "pcm_f64le"
    np.testing.assert_allclose(samples, source[0], atol=1e-6)


@pytest.mark.parametrize("rate", [16000, 44100])
def test_nan_and_inf_samples_become_zero(tmp_path: Path, rate: int) -> None:
    """They decode exactly as zero samples would: replaced before resampling, which would
    otherwise spread each one over its neighbours."""
    source = tone(1.0, rate, 1, freq=440)
    bad = [100, rate // 3, rate // 2]
    zeroed = source.copy()
    zeroed[0, bad] = 0.0
    source[0, bad] = [np.nan, np.inf, -np.inf]
    path = write_audio(tmp_path / "nan.wav", source, rate, "wav", codec="pcm_f32le")
    reference = write_audio(tmp_path / "zero.wav", zeroed, rate, "wav", codec="pcm_f32le")

    samples, info = audio.decode(path)
    assert np.isfinite(samples).all()
    assert info.duration_ms == 1000
    np.testing.assert_allclose(samples, audio.decode(reference)[0], atol=1e-6)
    if rate == audio.TARGET_RATE:
        np.testing.assert_array_equal(samples[bad], 0.0)


def test_float_samples_beyond_full_scale_are_clipped(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "loud.wav", tone(1.0, amp=3.0), 16000, "wav", codec="pcm_f32le")
    samples, _ = audio.decode(path)
    assert np.abs(samples).max() == pytest.approx(1.0)


@pytest.mark.parametrize("fmt", ["wav", "mp3", "opus"])
def test_silence_is_valid_audio(tmp_path: Path, fmt: str) -> None:
    path = write_audio(tmp_path / f"silence.{fmt}", tone(2.0, amp=0.0), 16000, fmt)
    assert audio.probe(path).duration_ms is not None
    samples, info = audio.decode(path)
    assert abs(info.duration_ms - 2000) <= 50
    assert np.abs(samples).max() < 1e-4


# --- errors --------------------------------------------------------------------------------
def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    for read in (audio.probe, audio.decode):
        with pytest.raises(EmptyAudioError) as exc:
            read(path)
        assert_sentence(exc, "empty", "0 bytes")


def test_wav_with_a_valid_header_and_no_samples(tmp_path: Path) -> None:
    path = tmp_path / "zero.wav"
    path.write_bytes(wav_header(0))
    for read in (audio.probe, audio.decode):
        with pytest.raises(EmptyAudioError) as exc:
            read(path)
        assert_sentence(exc, "no audio samples")


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"hello, this is not audio at all\n" * 40, id="text"),
        pytest.param(png_bytes(), id="png"),
        pytest.param(np.random.default_rng(1).bytes(20_000), id="random-1"),
        pytest.param(np.random.default_rng(2).bytes(20_000), id="random-2"),
        pytest.param(b"#EXTM3U\n#EXTINF:1,\nfile:///etc/passwd\n", id="playlist"),
    ],
)
def test_files_that_are_not_audio(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "renamed.wav"
    path.write_bytes(content)
    for read in (audio.probe, audio.decode):
        with pytest.raises(NotAudioError) as exc:
            read(path)
        assert_sentence(exc, "not audio we can read")


def test_video_without_audio_has_no_audio_stream(tmp_path: Path) -> None:
    path = tmp_path / "silent-film.webm"
    with av.open(str(path), "w") as out:
        video = out.add_stream("libvpx", rate=10)
        video.width, video.height, video.pix_fmt = 32, 32, "yuv420p"
        for i in range(5):
            frame = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), "rgb24")
            frame.pts = i
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
    for read in (audio.probe, audio.decode):
        with pytest.raises(NotAudioError) as exc:
            read(path)
        assert_sentence(exc, "no audio stream")


def test_mp3_cut_to_its_first_100_bytes(tmp_path: Path) -> None:
    data = write_audio(tmp_path / "full.mp3", tone(2.0, 44100, 2), 44100, "mp3").read_bytes()
    path = tmp_path / "cut.mp3"
    path.write_bytes(data[:100])
    for read in (audio.probe, audio.decode):
        with pytest.raises(AudioError) as exc:
            read(path)
        assert_sentence(exc, "audio")


def test_mp3_cut_in_half_decodes_what_is_there(tmp_path: Path) -> None:
    """As ffmpeg does: the frames before the cut are good audio."""
    data = write_audio(tmp_path / "full.mp3", tone(2.0, 44100, 2), 44100, "mp3").read_bytes()
    path = tmp_path / "half.mp3"
    path.write_bytes(data[: len(data) // 2])
    assert audio.probe(path).duration_ms == 2000  # the header still claims the whole
    samples, info = audio.decode(path)
    assert 800 <= info.duration_ms <= 1200
    assert rms(samples[1600:-1600]) == pytest.approx(SINE_RMS, rel=0.07)


def amr_with_garbage(tmp_path: Path, seconds: float, n_bad: int) -> Path:
    """An AMR-NB file whose good frames are followed by n_bad one-byte frames of a reserved
    mode, which the demuxer accepts and the decoder rejects."""
    good = write_audio(tmp_path / "good.amr", tone(seconds, 8000), 8000, "amr").read_bytes()
    if seconds == 0:
        good = good[:6]  # just the "#!AMR\n" magic
    path = tmp_path / "damaged.amr"
    path.write_bytes(good + bytes([0x54]) * n_bad)
    return path


def test_audio_that_stops_decoding_midway_is_corrupt(tmp_path: Path) -> None:
    path = amr_with_garbage(tmp_path, 1.0, 1000)
    assert audio.probe(path).codec == "amr_nb"  # cheap: the start is fine
    with pytest.raises(CorruptAudioError) as exc:
        audio.decode(path)
    assert_sentence(exc, "corrupt", "after 1.0 s")


def test_isolated_bad_packets_are_skipped(tmp_path: Path) -> None:
    path = amr_with_garbage(tmp_path, 1.0, audio.MAX_CONSECUTIVE_ERRORS - 1)
    _, info = audio.decode(path)
    assert abs(info.duration_ms - 1000) <= 50


def test_audio_that_never_decodes_is_corrupt(tmp_path: Path) -> None:
    path = amr_with_garbage(tmp_path, 0, 50)
    for read in (audio.probe, audio.decode):
        with pytest.raises(CorruptAudioError) as exc:
            read(path)
        assert_sentence(exc, "corrupt", "could not be decoded")


def test_decode_stops_at_the_limit_instead_of_reading_on(tmp_path: Path) -> None:
    """The damage after 2 s would raise CorruptAudioError if decode read that far."""
    path = amr_with_garbage(tmp_path, 2.0, 1000)
    with pytest.raises(AudioTooLongError) as exc:
        audio.decode(path, max_duration_s=1.0)
    # AMR states no duration (FFmpeg guesses one from the bitrate), so the message names only
    # the limit
    assert_sentence(exc, "limit of 1.0 s", "SEACO_MAX_DURATION_S")


def test_wav_header_claiming_8_hours_over_1_s_of_data(tmp_path: Path) -> None:
    """FFmpeg bounds a wav's data size by the file size, so probe reports what is really
    there and decode finishes at the end of the data instead of waiting for 8 hours."""
    path = tmp_path / "liar.wav"
    n = 8 * 3600 * 16000 * 2
    path.write_bytes(wav_header(n) + (tone(1.0)[0] * 32767).astype("<i2").tobytes())
    assert audio.probe(path, max_duration_s=3600).duration_ms == 1000
    samples, info = audio.decode(path, max_duration_s=3600)
    assert info.duration_ms == 1000
    assert rms(samples) == pytest.approx(SINE_RMS, rel=0.01)


def test_mp3_header_claiming_8_hours(tmp_path: Path) -> None:
    """An MP3's Info header gives its frame count; probe trusts it, decode counts samples."""
    data = bytearray(write_audio(tmp_path / "a.mp3", tone(2.0, 44100), 44100, "mp3").read_bytes())
    tag = data.find(b"Info")
    assert tag > 0 and struct.unpack(">I", data[tag + 4 : tag + 8])[0] & 1  # frames present
    data[tag + 8 : tag + 12] = struct.pack(">I", 8 * 3600 * 44100 // 1152)
    path = tmp_path / "liar.mp3"
    path.write_bytes(bytes(data))

    with pytest.raises(AudioTooLongError) as exc:
        audio.probe(path, max_duration_s=3600)
    assert_sentence(exc, "lasts 8 h", "limit is 1 h", "SEACO_MAX_DURATION_S")
    _, info = audio.decode(path, max_duration_s=3600)
    assert abs(info.duration_ms - 2000) <= 50


def test_duration_limit(tmp_path: Path) -> None:
    path = write_audio(tmp_path / "3s.flac", tone(3.0), 16000, "flac")
    assert audio.probe(path, max_duration_s=3.5).duration_ms == 3000
    assert audio.decode(path, max_duration_s=3.5)[1].duration_ms == 3000
    with pytest.raises(AudioTooLongError) as exc:
        audio.probe(path, max_duration_s=2)
    assert_sentence(exc, "lasts 3.0 s", "limit is 2.0 s")
    with pytest.raises(AudioTooLongError) as exc:
        audio.decode(path, max_duration_s=2)
    assert_sentence(exc, "limit is 2.0 s")


def test_duration_limit_without_a_header_duration(tmp_path: Path) -> None:
    """A browser's MediaRecorder writes WebM as a live stream, with no duration anywhere:
    probe has nothing to check and only decoding can enforce the limit."""
    path = tmp_path / "recorded.webm"
    with av.open(str(path), "w", format="webm", options={"live": "1"}) as out:
        stream = out.add_stream("libopus", rate=48000, layout="mono")
        frame = av.AudioFrame.from_ndarray(tone(3.0, 48000), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 48000, 0
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))

    assert audio.probe(path, max_duration_s=2).duration_ms is None
    assert abs(audio.decode(path, max_duration_s=4)[1].duration_ms - 3000) <= 50
    with pytest.raises(AudioTooLongError) as exc:
        audio.decode(path, max_duration_s=2)
    assert_sentence(exc, "longer than the limit of 2.0 s")


def test_long_durations_read_naturally(tmp_path: Path) -> None:
    path = tmp_path / "long.wav"
    path.write_bytes(wav_header(7380 * 100 * 2, rate=100) + bytes(7380 * 100 * 2))
    with pytest.raises(AudioTooLongError) as exc:
        audio.probe(path, max_duration_s=3600)
    assert str(exc.value) == "The audio lasts 2 h 3 min; the limit is 1 h (SEACO_MAX_DURATION_S)."


def test_missing_file_is_not_an_audio_error(tmp_path: Path) -> None:
    """Our own storage losing a file is an operations problem, not the user's."""
    with pytest.raises(FileNotFoundError):
        audio.probe(tmp_path / "gone.wav")


def test_check_size() -> None:
    audio.check_size(1, 512 * 1024 * 1024)
    audio.check_size(512 * 1024 * 1024, 512 * 1024 * 1024)
    with pytest.raises(EmptyAudioError) as exc:
        audio.check_size(0, 512 * 1024 * 1024)
    assert_sentence(exc, "empty (0 bytes)")
    with pytest.raises(AudioTooLargeError) as exc:
        audio.check_size(int(600.5 * 1024 * 1024), 512 * 1024 * 1024)
    assert_sentence(exc, "600.5 MB", "limit is 512 MB", "SEACO_MAX_UPLOAD_MB")


def test_a_duration_guessed_from_the_bitrate_is_an_estimate_not_a_refusal(tmp_path: Path) -> None:
    """Issue 12.1: an MP3 without a Xing frame states no length; FFmpeg guesses ~44 s for
    this 15.1 s file. probe says it is an estimate and does not hold it against the limit;
    decode counts the real length and enforces the limit itself."""
    path = mp3_without_xing(tmp_path / "x.mp3")
    info = audio.probe(path, max_duration_s=30)
    assert info.duration_estimated
    assert info.duration_ms is not None and info.duration_ms > 30_000  # the guess
    samples, decoded = audio.decode(path, max_duration_s=30)
    assert abs(decoded.duration_ms - 15_080) <= 100 and not decoded.duration_estimated
    with pytest.raises(AudioTooLongError) as exc:
        audio.decode(path, max_duration_s=10)
    assert_sentence(exc, "longer than the limit of 10.0 s", "SEACO_MAX_DURATION_S")


def test_a_stated_duration_is_not_an_estimate(tmp_path: Path) -> None:
    """Containers that state their length (an MP3 with its Info frame, wav) are checked at
    probe time, and their length is not called an estimate; the guess is recognised again
    on every call (FFmpeg's repeated-message filter does not hide the second one)."""
    mp3 = write_audio(tmp_path / "a.mp3", tone(2.0), 16000, "mp3")
    wav = write_audio(tmp_path / "a.wav", tone(2.0), 16000, "wav")
    for path in (mp3, wav):
        assert not audio.probe(path).duration_estimated
    guessed = mp3_without_xing(tmp_path / "x.mp3")
    assert [audio.probe(guessed).duration_estimated for _ in range(3)] == [True] * 3
