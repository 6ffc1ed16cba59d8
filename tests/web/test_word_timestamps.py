"""Word timestamps end to end: the official openai client's `timestamp_granularities` against
a real `seaco serve` with the tiny models, our own API's `?words=true`, the JSON export, the
400s for what OpenAI refuses, and the words stored with the job (a fresh store reads them;
a job stored before schema 9 answers an empty list). Every example of the README's word
timestamp sections is one of these tests; expected values are computed from the job at
test time (the tiny models' text is random)."""

from __future__ import annotations

import json
import shutil
import unicodedata

import pytest
import requests

from engine.jobs import Sentence, job_document
from engine.store import SCHEMA_DIR, JobResult, NewJob, Store, open_store
from tests.audio_fixtures import speech_file
from tests.conftest import SERVICE_TOKEN as TOKEN

pytestmark = pytest.mark.slow
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    return speech_file(tmp_path_factory.mktemp("words"), "wav")


def client(base: str):
    from openai import OpenAI

    return OpenAI(base_url=f"{base}/v1", api_key=TOKEN, max_retries=0)


def transcribe(base: str, speech, **kwargs):
    with open(speech, "rb") as f:
        return client(base).audio.transcriptions.create(model="seaco", file=f, **kwargs)


def post_v1(base: str, speech, fields: list[tuple[str, str]]) -> requests.Response:
    """A raw multipart POST to /v1/audio/transcriptions (repeated fields kept in order)."""
    with open(speech, "rb") as f:
        return requests.post(
            f"{base}/v1/audio/transcriptions",
            files={"file": (speech.name, f)},
            data=fields,
            headers=AUTH,
            timeout=120,
        )


def spoken(text: str) -> str:
    """The transcript without punctuation and spaces: what its words spell."""
    return "".join(
        ch for ch in text if not ch.isspace() and not unicodedata.category(ch).startswith("P")
    )


def assert_words_fit(words: list[tuple[str, float, float]], text: str, duration: float) -> None:
    """(word, start, end) triples spell the text, start in order, lie within the audio."""
    assert words, "the job has no word timestamps"
    assert "".join(w for w, _, _ in words) == spoken(text)
    assert all(w.strip() == w and spoken(w) == w for w, _, _ in words)
    starts = [start for _, start, _ in words]
    assert starts == sorted(starts)
    assert all(0 <= start <= end <= duration for _, start, end in words)


@pytest.fixture(scope="module")
def word_job(tiny_service, speech):
    """README example 1: the openai client, verbose_json, word granularity."""
    _cfg, base, _tmp, _pid = tiny_service
    transcription = transcribe(
        base, speech, response_format="verbose_json", timestamp_granularities=["word"]
    )
    return transcription, transcription.to_dict()["x_seaco"]["job_id"]


# --- /v1: OpenAI's timestamp_granularities ---------------------------------------------------
def test_openai_client_gets_words_that_spell_the_transcript(word_job):
    transcription, _job_id = word_job
    assert isinstance(transcription.words, list)
    triples = [(w.word, w.start, w.end) for w in transcription.words]
    assert_words_fit(triples, transcription.text, transcription.duration)
    assert transcription.segments is None  # as OpenAI: only what was asked for


def test_both_granularities_give_segments_and_words(tiny_service, speech):
    _cfg, base, _tmp, _pid = tiny_service
    both = transcribe(
        base, speech, response_format="verbose_json", timestamp_granularities=["word", "segment"]
    )
    assert both.segments and both.words
    assert_words_fit([(w.word, w.start, w.end) for w in both.words], both.text, both.duration)
    assert spoken("".join(s.text for s in both.segments)) == "".join(w.word for w in both.words)
    for word in both.words:  # every word lies in a segment
        assert any(s.start <= word.start and word.end <= s.end for s in both.segments)


def test_verbose_json_without_granularities_is_unchanged(tiny_service, speech):
    _cfg, base, _tmp, _pid = tiny_service
    default = transcribe(base, speech, response_format="verbose_json")
    assert default.segments and default.words is None
    segments_only = transcribe(
        base, speech, response_format="verbose_json", timestamp_granularities=["segment"]
    )
    assert segments_only.segments == default.segments and segments_only.words is None


def test_the_bare_field_name_is_accepted_too(tiny_service, speech):
    _cfg, base, _tmp, _pid = tiny_service
    answer = post_v1(
        base, speech, [("response_format", "verbose_json"), ("timestamp_granularities", "word")]
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    triples = [(w["word"], w["start"], w["end"]) for w in body["words"]]
    assert_words_fit(triples, body["text"], body["duration"])


def assert_openai_400(answer: requests.Response, *phrases: str) -> None:
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error" and error["code"] == "invalid_request"
    for phrase in phrases:
        assert phrase in error["message"]


@pytest.mark.parametrize("response_format", ["json", "text", "srt", "vtt"])
def test_word_granularity_needs_verbose_json(tiny_service, speech, response_format):
    cfg, base, _tmp, _pid = tiny_service
    jobs_before = open_store(cfg.db_path).count_jobs()
    answer = post_v1(
        base,
        speech,
        [("response_format", response_format), ("timestamp_granularities[]", "word")],
    )
    assert_openai_400(answer, "timestamp_granularities[]", "verbose_json", repr(response_format))
    assert open_store(cfg.db_path).count_jobs() == jobs_before  # refused before any work


def test_segment_granularity_with_another_format_changes_nothing(tiny_service, speech):
    _cfg, base, _tmp, _pid = tiny_service
    answer = post_v1(base, speech, [("timestamp_granularities[]", "segment")])
    assert answer.status_code == 200 and set(answer.json()) == {"text"}


@pytest.mark.parametrize("value", ["sentence", "WORD", "", "char"])
def test_unknown_granularities_are_a_400_in_openais_shape(tiny_service, speech, value):
    _cfg, base, _tmp, _pid = tiny_service
    answer = post_v1(
        base,
        speech,
        [
            ("response_format", "verbose_json"),
            ("timestamp_granularities[]", "word"),
            ("timestamp_granularities[]", value),
        ],
    )
    assert_openai_400(answer, "timestamp_granularities[]", "'segment' or 'word'")


def test_the_openai_client_raises_bad_request_for_an_unknown_granularity(tiny_service, speech):
    from openai import BadRequestError

    _cfg, base, _tmp, _pid = tiny_service
    with pytest.raises(BadRequestError, match="timestamp_granularities"):
        transcribe(base, speech, response_format="verbose_json", timestamp_granularities=["char"])


# --- /api: ?words=true, the JSON export, the stored words ----------------------------------
def get_job(base: str, job_id: int, **params) -> dict:
    answer = requests.get(f"{base}/api/v1/jobs/{job_id}", params=params, headers=AUTH, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_jobs_api_words_are_opt_in_and_match_the_openai_words(tiny_service, word_job):
    _cfg, base, _tmp, _pid = tiny_service
    transcription, job_id = word_job
    default = get_job(base, job_id)
    assert default["sentences"] and all("words" not in s for s in default["sentences"])
    assert get_job(base, job_id, words="false") == default

    # README example 2: GET /api/v1/jobs/{id}?words=true
    with_words = get_job(base, job_id, words="true")
    sentences = with_words["sentences"]
    assert [{k: s[k] for k in ("text", "start_ms", "end_ms")} for s in sentences] == (
        default["sentences"]
    )
    for s in sentences:
        assert "".join(w["text"] for w in s["words"]) == spoken(s["text"])
        assert all(s["start_ms"] <= w["start_ms"] for w in s["words"])
        assert all(set(w) == {"text", "start_ms", "end_ms"} for w in s["words"])
    ours = [(w["text"], w["start_ms"], w["end_ms"]) for s in sentences for w in s["words"]]
    openai = [(w.word, round(w.start * 1000), round(w.end * 1000)) for w in transcription.words]
    assert ours == openai


def test_words_is_a_boolean(tiny_service, word_job):
    _cfg, base, _tmp, _pid = tiny_service
    answer = requests.get(
        f"{base}/api/v1/jobs/{word_job[1]}", params={"words": "lots"}, headers=AUTH, timeout=10
    )
    assert answer.status_code == 422 and answer.json()["error"]["code"] == "invalid_request"
    assert "words" in answer.json()["error"]["message"]


def test_json_export_includes_the_words(tiny_service, word_job):
    _cfg, base, _tmp, _pid = tiny_service
    job_id = word_job[1]
    # README example 3: the JSON export
    answer = requests.get(
        f"{base}/api/v1/jobs/{job_id}/transcript",
        params={"format": "json"},
        headers=AUTH,
        timeout=10,
    )
    assert answer.status_code == 200
    exported = json.loads(answer.content)["sentences"]
    assert exported == get_job(base, job_id, words="true")["sentences"]
    assert any(s["words"] for s in exported)


def test_words_are_stored_with_the_job(tiny_service, word_job):
    cfg, _base, _tmp, _pid = tiny_service
    transcription, job_id = word_job
    fresh = Store(cfg.db_path)  # a new handle on the file, as after a restart
    try:
        job = fresh.get(job_id)
    finally:
        fresh.close()
    stored = [(w.text, w.start_ms / 1000, w.end_ms / 1000) for s in job.sentences for w in s.words]
    assert stored == [(w.word, w.start, w.end) for w in transcription.words]


# --- jobs done before word timestamps -------------------------------------------------------
def test_a_job_stored_before_schema_9_answers_empty_words(tmp_path):
    db_path = tmp_path / "jobs.db"
    old_schema = tmp_path / "schema-8"
    old_schema.mkdir()
    # every migration but 009: today's submit() and claim() write the later ones' columns,
    # which only add columns; what this test is about (sentences without words) stays
    for path in SCHEMA_DIR.glob("[0-9][0-9][0-9]_*.sql"):
        if not path.name.startswith("009_"):
            shutil.copy(path, old_schema)
    old = Store(db_path, schema_dir=old_schema)
    old.migrate()
    job = old.submit(
        NewJob(audio_sha256="0" * 64, audio_path="audio/x", audio_bytes=1, original_name="a.wav"),
        queue_max=10,
        max_attempts=1,
    )
    old.claim("w", 30)
    with old._write() as conn:  # what the code before schema 9 wrote: no words column
        conn.execute("UPDATE jobs SET state = 'done', text = '好。' WHERE id = ?", (job.id,))
        conn.execute(
            "INSERT INTO sentences (job_id, idx, start_ms, end_ms, text)"
            " VALUES (?, 0, 100, 400, '好。')",
            (job.id,),
        )
    old.close()

    store = open_store(db_path)  # applies 009
    try:
        done = store.get(job.id)
    finally:
        store.close()
    assert done.sentences == [Sentence("好。", 100, 400)] and done.sentences[0].words == ()
    document = job_document(done, words=True)
    assert document["sentences"] == [{"text": "好。", "start_ms": 100, "end_ms": 400, "words": []}]
    assert "words" not in job_document(done)["sentences"][0]


def test_a_sentence_without_words_is_stored_as_such(store):
    job = store.submit(
        NewJob(audio_sha256="1" * 64, audio_path="audio/y", audio_bytes=1, original_name="b.wav"),
        queue_max=10,
        max_attempts=1,
    )
    claimed = store.claim("w", 30)
    sentences = [Sentence("一。", 0, 500)]
    result = JobResult(
        text="一。",
        raw_text="一",
        confidence=None,
        sentences=sentences,
        effective_hotwords=[],
        duration_ms=500,
        decode_ms=1,
        inference_ms=1,
        model_info={},
    )
    assert store.complete(job.id, "w", claimed.attempts, result)
    assert store.get(job.id).sentences == sentences
    assert job_document(store.get(job.id), words=True)["sentences"][0]["words"] == []
