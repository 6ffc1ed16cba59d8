"""The bad-input corpus, through a real `seaco serve` over real HTTP: every hostile or broken
request gets a clear answer (a specific 4xx error, or a job that ends as it should), never a
500; the worker that started with the service is the one still running at the end, and a
good job submitted after everything else is done."""

from __future__ import annotations

import io
import struct
import uuid
import zipfile

import numpy as np
import pytest
import requests

from engine.store import open_store
from tests.audio_fixtures import speech_file, tone, write_audio
from tests.conftest import SERVICE_TOKEN as TOKEN
from tests.procs import get_health, wait_for

pytestmark = pytest.mark.slow
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def svc(tiny_service):
    return tiny_service


# --- the files ------------------------------------------------------------------------------
def wav_header(n_data: int, rate: int = 16000, channels: int = 1, bits: int = 16) -> bytes:
    block = channels * bits // 8
    return b"".join(
        [
            b"RIFF" + struct.pack("<I", 36 + n_data) + b"WAVEfmt ",
            struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * block, block, bits),
            b"data" + struct.pack("<I", n_data),
        ]
    )


def flac_claiming(tmp, seconds: float) -> bytes:
    """A real 1 s FLAC whose STREAMINFO says it holds `seconds` of audio."""
    data = bytearray(write_audio(tmp / "claim.flac", tone(1.0), 16000, "flac").read_bytes())
    assert data[:4] == b"fLaC" and data[4] & 0x7F == 0  # STREAMINFO comes first
    offset = 8 + 10  # after the block header and the block/frame size fields
    (packed,) = struct.unpack(">Q", data[offset : offset + 8])
    packed = (packed & ~((1 << 36) - 1)) | int(seconds * 16000)
    data[offset : offset + 8] = struct.pack(">Q", packed)
    return bytes(data)


def zip_of(name: str, payload: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr(name, payload)
    return buffer.getvalue()


def nan_wav(tmp) -> bytes:
    samples = tone(1.0)
    samples[0, 1000:1100] = np.nan
    samples[0, 5000:5010] = np.inf
    samples[0, 6000:6010] = -np.inf
    return write_audio(tmp / "nan.wav", samples, 16000, "wav", codec="pcm_f32le").read_bytes()


def build(kind: str, tmp) -> bytes:
    """Each corpus entry's bytes, made on demand in the module's temporary directory."""
    mp3 = speech_file(tmp, "mp3").read_bytes()
    one_s = write_audio(tmp / "one.wav", tone(1.0), 16000, "wav").read_bytes()
    return {
        "empty": lambda: b"",
        "zero_duration_wav": lambda: wav_header(0),
        "truncated_mp3": lambda: mp3[: len(mp3) // 2],
        "mp3_cut_inside_its_header": lambda: mp3[:100],
        "text_as_wav": lambda: b"meeting notes, not audio\n" * 40,
        "png_as_wav": lambda: b"\x89PNG\r\n\x1a\n" + bytes(600),
        "jpeg_as_mp3": lambda: b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(600),
        "html_as_m4a": lambda: b"<!DOCTYPE html><html><body>x</body></html>\n" * 20,
        "zip_as_wav": lambda: zip_of("a.wav", one_s),
        "random_bytes": lambda: np.random.default_rng(7).bytes(4000),
        "riff_header_then_garbage": lambda: b"RIFF\0\0\0\0WAVEfmt " + bytes(range(256)) * 8,
        "mp3_sync_then_garbage": lambda: b"\xff\xfb\x90\x64" + bytes(range(256)) * 20,
        "hls_playlist_naming_a_local_file": lambda: (
            b"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n"
        ),
        "ffconcat_naming_a_local_file": lambda: b"ffconcat version 1.0\nfile /etc/passwd\n",
        "wav_with_sample_rate_zero": lambda: wav_header(32000, rate=0) + bytes(32000),
        "flac_header_claiming_8_hours": lambda: flac_claiming(tmp, 8 * 3600),
        "wav_header_claiming_8_hours": lambda: wav_header(8 * 3600 * 32000) + one_s[44:],
        "8khz_mono": lambda: write_audio(
            tmp / "8k.wav", tone(1.0, rate=8000), 8000, "wav"
        ).read_bytes(),
        "6ch_48khz": lambda: write_audio(
            tmp / "6ch.wav", tone(1.0, rate=48000, channels=6), 48000, "wav"
        ).read_bytes(),
        "float64_wav": lambda: write_audio(
            tmp / "f64.wav", tone(1.0), 16000, "wav", codec="pcm_f64le"
        ).read_bytes(),
        "nan_and_inf_samples": lambda: nan_wav(tmp),
        "silence_only": lambda: write_audio(
            tmp / "silence.wav", tone(2.0, amp=0.0), 16000, "wav"
        ).read_bytes(),
        "over_the_size_limit": lambda: bytes(3 * 1024 * 1024),  # 1 MB limit; sent at once
    }[kind]()


# kind -> (HTTP status, error code) for refusals, or (202, final job state) for acceptances
FILES = {
    "empty": (400, "empty_audio"),
    "zero_duration_wav": (400, "empty_audio"),
    "truncated_mp3": (202, "done"),  # what precedes the cut is transcribed
    "mp3_cut_inside_its_header": (415, "not_audio"),
    "text_as_wav": (415, "not_audio"),
    "png_as_wav": (415, "not_audio"),
    "jpeg_as_mp3": (415, "not_audio"),
    "html_as_m4a": (415, "not_audio"),
    "zip_as_wav": (415, "not_audio"),
    "random_bytes": (415, "not_audio"),
    "riff_header_then_garbage": (415, "not_audio"),
    "mp3_sync_then_garbage": (415, "not_audio"),
    "hls_playlist_naming_a_local_file": (415, "not_audio"),
    "ffconcat_naming_a_local_file": (415, "not_audio"),
    "wav_with_sample_rate_zero": (415, "not_audio"),
    "flac_header_claiming_8_hours": (413, "audio_too_long"),
    "wav_header_claiming_8_hours": (202, "done"),  # FFmpeg trusts the file's real size
    "8khz_mono": (202, "done"),
    "6ch_48khz": (202, "done"),
    "float64_wav": (202, "done"),
    "nan_and_inf_samples": (202, "done"),
    "silence_only": (202, "done"),
    "over_the_size_limit": (413, "audio_too_large"),
}


def post_file(base: str, name: str, data: bytes, **fields: str) -> requests.Response:
    return requests.post(
        f"{base}/api/v1/jobs", files={"file": (name, data)}, data=fields, headers=AUTH, timeout=60
    )


def final(base: str, job_id: int) -> dict:
    def finished() -> dict | None:
        job = requests.get(f"{base}/api/v1/jobs/{job_id}", headers=AUTH, timeout=10).json()
        return job if job["state"] in ("done", "failed", "cancelled") else None

    return wait_for(finished, timeout=120, what=f"job {job_id} to finish")


def assert_error(response: requests.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["status"] == status and len(error["message"]) > 10
    return error


@pytest.mark.parametrize("kind", list(FILES))
def test_bad_file(svc, kind):
    _cfg, base, tmp, _pid = svc
    status, expected = FILES[kind]
    response = post_file(base, f"{kind}.wav", build(kind, tmp))
    if status != 202:
        assert_error(response, status, expected)
        return
    assert response.status_code == 202, response.text
    job = final(base, response.json()["id"])
    assert job["state"] == expected, job.get("error")
    if kind == "silence_only":
        assert job["text"] == "" and job["sentences"] == []
    if kind == "wav_header_claiming_8_hours":
        assert job["duration_ms"] < 2_000


# --- names and hotwords: accepted, kept as labels, never as paths ---------------------------
def multipart(filename: bytes, data: bytes) -> tuple[bytes, str]:
    """A form with one file whose name is sent byte for byte (requests would escape it)."""
    boundary = uuid.uuid4().hex
    body = b"".join(
        [
            f"--{boundary}\r\n".encode(),
            b'Content-Disposition: form-data; name="file"; filename="' + filename + b'"\r\n',
            b"Content-Type: application/octet-stream\r\n\r\n" + data,
            f"\r\n--{boundary}--\r\n".encode(),
        ]
    )
    return body, f"multipart/form-data; boundary={boundary}"


NAMES = {
    "dot_dot_slash": (b"../../../../etc/cron.d/evil.wav", "evil.wav"),
    "absolute_windows_path": (b"C:\\Windows\\system32\\x.wav", "x.wav"),
    "nul_byte": (b"a\x00b.wav", "ab.wav"),
    "emoji": ("😀 会议.wav".encode(), "😀 会议.wav"),
    "300_characters": (b"n" * 300 + b".wav", "n" * 200),
    "only_dots": (b"..", "upload"),
}


@pytest.mark.parametrize("case", list(NAMES))
def test_hostile_file_names_are_labels_only(svc, case):
    cfg, base, tmp, _pid = svc
    raw, label = NAMES[case]
    clip = write_audio(tmp / f"{case}.wav", tone(0.5, freq=200 + len(case)), 16000, "wav")
    body, content_type = multipart(raw, clip.read_bytes())
    r = requests.post(
        f"{base}/api/v1/jobs", data=body, timeout=60, headers={**AUTH, "Content-Type": content_type}
    )
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["original_name"] == label
    stored = open_store(cfg.db_path).get(job["id"]).audio_path
    assert stored == f"audio/{job['audio_sha256'][:2]}/{job['audio_sha256']}"
    # nothing anywhere in the data directory is named after the upload
    names = {p.name for p in cfg.data_dir.rglob("*")}
    assert not {n for n in names if "evil" in n or "😀" in n or "nnnn" in n or "passwd" in n}
    assert final(base, job["id"])["state"] == "done"


HOTWORDS = {
    "1000_hotwords": (",".join(f"词{i}" for i in range(1000)), 1000),
    "500_character_hotword": ("长" * 500, 1),
    "sql_and_fts_metacharacters": ("'; DROP TABLE jobs; -- \"NEAR( * OR AND) ^科哥", 10),
    "control_characters": ("科\x00哥\x07,\x1b[31m天气\u200b", 2),
}


@pytest.mark.parametrize("case", list(HOTWORDS))
def test_hostile_hotwords_are_kept_as_text(svc, case):
    _cfg, base, tmp, _pid = svc
    text, count = HOTWORDS[case]
    clip = speech_file(tmp, "wav")
    r = post_file(base, f"{case}.wav", clip.read_bytes(), hotwords=text)
    assert r.status_code == 202, r.text
    job = final(base, r.json()["id"])
    assert job["state"] == "done", job.get("error")
    assert len(job["hotwords"]) == count
    assert all(ch.isprintable() for word in job["hotwords"] for ch in word)


def test_too_many_hotword_characters_are_refused(svc):
    _cfg, base, tmp, _pid = svc
    r = post_file(base, "x.wav", speech_file(tmp, "wav").read_bytes(), hotwords="字" * 20_001)
    assert_error(r, 422, "invalid_request")


# --- requests that are not uploads ----------------------------------------------------------
REQUESTS = [
    ("get", "/api/v1/jobs/999999999", {}, 404, "job_not_found"),
    ("get", "/api/v1/jobs/0", {}, 422, "invalid_request"),
    ("get", "/api/v1/jobs/-5", {}, 422, "invalid_request"),
    ("get", f"/api/v1/jobs/{2**70}", {}, 422, "invalid_request"),
    ("get", "/api/v1/jobs/1e9", {}, 422, "invalid_request"),
    ("get", "/api/v1/jobs/999999999/transcript", {}, 404, "job_not_found"),
    ("post", "/api/v1/jobs/999999999/cancel", {}, 404, "job_not_found"),
    ("delete", "/api/v1/jobs/999999999", {}, 404, "job_not_found"),
    ("get", "/api/v1/jobs", {"limit": "-1"}, 422, "invalid_request"),
    ("get", "/api/v1/jobs", {"limit": "0"}, 422, "invalid_request"),
    ("get", "/api/v1/jobs", {"limit": str(10**30)}, 422, "invalid_request"),
    ("get", "/api/v1/jobs", {"offset": "-1"}, 422, "invalid_request"),
    ("get", "/api/v1/jobs", {"offset": str(2**64)}, 422, "invalid_request"),
    ("get", "/api/v1/jobs", {"state": "'; DROP TABLE jobs; --"}, 422, "invalid_request"),
    ("get", "/api/v1/jobs", {"batch_id": "x" * 65}, 422, "invalid_request"),
    ("get", "/api/v1/search", {"q": "x", "limit": "-3"}, 422, "invalid_request"),
    ("get", "/api/v1/search", {"q": "x", "offset": str(2**64)}, 422, "invalid_request"),
    ("get", "/api/v1/search", {"q": "字" * 501}, 422, "invalid_request"),
    ("post", "/api/v1/jobs", {}, 422, "invalid_request"),  # no file at all
]


@pytest.mark.parametrize(("method", "path", "params", "status", "code"), REQUESTS)
def test_bad_request(svc, method, path, params, status, code):
    _cfg, base, _tmp, _pid = svc
    r = requests.request(method, base + path, params=params, headers=AUTH, timeout=10)
    assert_error(r, status, code)


def test_not_multipart_and_bad_priority_are_invalid_requests(svc):
    _cfg, base, tmp, _pid = svc
    r = requests.post(f"{base}/api/v1/jobs", json={"file": "x"}, headers=AUTH, timeout=10)
    assert_error(r, 422, "invalid_request")
    wav = write_audio(tmp / "p.wav", tone(0.5), 16000, "wav").read_bytes()
    for priority in ("-1", "21", "high", "1e3"):
        assert_error(post_file(base, "p.wav", wav, priority=priority), 422, "invalid_request")


@pytest.mark.parametrize(
    "query",
    [
        '"',
        '""',
        "NEAR(",
        "a NEAR/2 b",
        "*",
        "a OR",
        "AND",
        "NOT x",
        "col:x",
        "^x",
        "()",
        "'; DROP TABLE jobs; --",
        "\x00",
        "x\x00y",
        "{a b}",
        "\\",
        "%",
        "_",
        "😀",
        "   ",
    ],
)
def test_malformed_search_queries_find_nothing_without_error(svc, query):
    _cfg, base, _tmp, _pid = svc
    r = requests.get(f"{base}/api/v1/search", params={"q": query}, headers=AUTH, timeout=10)
    assert r.status_code == 200 and isinstance(r.json()["hits"], list), r.text


def test_the_worker_survived_everything_and_still_works(svc):
    cfg, base, tmp, worker_pid = svc
    store = open_store(cfg.db_path)
    assert store.latest_worker()["pid"] == worker_pid  # never restarted
    assert store.counts_by_state()["running"] == 0
    r = post_file(base, "good.mp3", speech_file(tmp, "mp3").read_bytes(), hotwords="天气")
    assert r.status_code == 202 and final(base, r.json()["id"])["state"] == "done"
    assert get_health(base)[1]["status"] == "ok"
    assert store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


# --- security: the checks in front of the handlers (the upload limit: test_upload_limit.py) -
def test_streamlit_refuses_uploads_without_its_xsrf_token(svc):
    _cfg, base, _tmp, _pid = svc
    session, file_id = uuid.uuid4().hex, uuid.uuid4().hex
    r = requests.put(
        f"{base}/_stcore/upload_file/{session}/{file_id}",
        files={"file": ("a.wav", b"RIFF")},
        timeout=10,
    )
    assert r.status_code == 403 and "XSRF" in r.text


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer",
        "Bearer ",
        "Basic " + TOKEN,
        "Token " + TOKEN,
        "Bearer " + TOKEN[:-1],
        "Bearer " + TOKEN + "x",
        "Bearer " + TOKEN.upper(),
        "Bearer \xff\xfe\xfd",
        "Bearer " + "a" * 8000,
        "Bearer other-token",
    ],
)
def test_wrong_tokens_are_401_on_both_apis(svc, header):
    _cfg, base, _tmp, _pid = svc
    headers = {} if header is None else {"Authorization": header}
    r = requests.get(f"{base}/api/v1/jobs", headers=headers, timeout=10)
    assert_error(r, 401, "unauthorized")
    r = requests.post(
        f"{base}/v1/audio/transcriptions",
        headers=headers,
        timeout=10,
        files={"file": ("a.wav", b"x")},
        data={"model": "seaco"},
    )
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"


def test_the_right_token_however_spaced_is_accepted(svc):
    _cfg, base, _tmp, _pid = svc
    for header in (f"Bearer {TOKEN}", f"bearer {TOKEN}", f"Bearer   {TOKEN}  "):
        r = requests.get(f"{base}/api/v1/jobs", headers={"Authorization": header}, timeout=10)
        assert r.status_code == 200, header
    assert requests.get(f"{base}/health", timeout=10).status_code == 200  # always open
