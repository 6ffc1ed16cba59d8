import math
import re
import typing
from pathlib import Path

import pytest

from engine import cli
from engine.config import (
    PROD_ASR_MODEL,
    SETTINGS,
    Settings,
    load_settings,
    settings_markdown,
)
from engine.cron import OFF
from engine.dashboard.system_info import settings_rows
from engine.errors import ConfigError

README = Path(__file__).parent.parent / "README.md"


def test_defaults_are_the_documented_ones(tmp_path):
    settings = load_settings({}, env_file=None)
    assert settings.port == 7860 and settings.queue_max == 20
    assert settings.host == "127.0.0.1" and settings.device == "auto"
    assert settings.asr_model == PROD_ASR_MODEL
    assert settings.data_dir == Path("./data").resolve()
    assert settings.job_timeout_factor == 1.0 and settings.gpu_alert_pct == 95.0
    assert settings.vacuum_cron == "0 3 * * 0"
    assert set(settings.sources.values()) == {"default"}
    assert set(settings.sources) == {spec.name for spec in SETTINGS}


def test_every_field_is_a_declared_setting_of_its_declared_type():
    """A kind that parses to another type than the field says (an Int on a `str` field)
    would pass mypy, since `setting()` is untyped: check each value against its field."""
    hints = typing.get_type_hints(Settings)
    settings = load_settings({}, env_file=None)
    assert [spec.field for spec in SETTINGS] == [name for name in hints if name != "sources"]
    for spec in SETTINGS:
        assert spec.env == f"SEACO_{spec.field.upper()}"
        assert isinstance(getattr(settings, spec.field), hints[spec.field]), spec.name


def test_environment_wins_over_dotenv_which_wins_over_defaults(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("SEACO_PORT=9000\nSEACO_QUEUE_MAX=5\nSEACO_HOTWORDS=科哥,Paraformer\n")
    settings = load_settings({"SEACO_PORT": "9100"}, env_file=env_file)
    assert settings.port == 9100 and settings.sources["PORT"] == "env"
    assert settings.queue_max == 5 and settings.sources["QUEUE_MAX"] == ".env"
    assert settings.hotwords == "科哥,Paraformer"
    assert settings.sources["DEVICE"] == "default"


def test_a_child_of_seaco_serve_reports_the_supervisors_sources(tmp_path):
    """Issue 16.8: the supervisor hands every setting to its children as environment
    variables; the System page (in the web child) must still say .env or default where the
    supervisor found them, not "env" for all."""
    env_file = tmp_path / ".env"
    env_file.write_text("SEACO_QUEUE_MAX=5\n")
    supervisor = load_settings({"SEACO_PORT": "9100"}, env_file=env_file)
    child = load_settings(supervisor.supervised_env(), env_file=None)  # the child's cwd: no .env
    assert child == supervisor
    assert child.sources["PORT"] == "env"
    assert child.sources["QUEUE_MAX"] == ".env"
    assert child.sources["DEVICE"] == "default"
    # a plain environment (tests, a hand-started worker) still reads as env
    assert load_settings(supervisor.as_env(), env_file=None).sources["QUEUE_MAX"] == "env"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("PORT", "http", "whole number, got 'http'"),
        ("PORT", "0", "at least 1, got 0"),
        ("PORT", "70000", "at most 65535, got 70000"),
        ("QUEUE_MAX", "0", "at least 1"),
        ("LEASE_S", "4", "at least 5, got 4"),
        ("JOB_TIMEOUT_FACTOR", "fast", "must be a number, got 'fast'"),
        ("JOB_TIMEOUT_FACTOR", "-0.5", "at least 0.0, got -0.5"),
        ("GPU_ALERT_PCT", "nan", "at least 1.0, got nan"),
        ("DEVICE", "tpu", "auto, cuda or cpu, got 'tpu'"),
        ("PRECISION", "int8", "fp32, fp16, bf16, got 'int8'"),
        ("ASR_MODEL", "  ", "must not be empty"),
        ("HOST", "", "must not be empty"),
        ("VACUUM_CRON", "0 3 * *", "crontab expression .* or 'off', got '0 3 \\* \\*'"),
        ("RETENTION_CRON", "0 3 * * 8", "day of week 8"),
    ],
)
def test_bad_values_are_refused_with_the_setting_named(name, value, message):
    with pytest.raises(ConfigError, match=message) as info:
        load_settings({f"SEACO_{name}": value}, env_file=None)
    assert f"SEACO_{name}" in str(info.value)


def test_values_are_normalised_by_their_kind(tmp_path):
    settings = load_settings(
        {
            "SEACO_DEVICE": " CUDA:1 ",
            "SEACO_PRECISION": "BF16",
            "SEACO_HOST": " 0.0.0.0 ",
            "SEACO_LOG_ROTATE_CRON": "  0   1 * *  * ",
            "SEACO_VACUUM_CRON": "OFF",
            "SEACO_DATA_DIR": "~/seaco-data",
            "SEACO_GPU_ALERT_PCT": "90.5",
        },
        env_file=None,
    )
    assert settings.device == "cuda:1" and settings.precision == "bf16"
    assert settings.host == "0.0.0.0"
    assert settings.log_rotate_cron == "0 1 * * *" and settings.vacuum_cron == OFF
    assert (
        settings.data_dir == Path("~/seaco-data").expanduser() and settings.data_dir.is_absolute()
    )
    assert math.isclose(settings.gpu_alert_pct, 90.5)


def readme_settings_table() -> list[str]:
    lines = README.read_text(encoding="utf-8").splitlines()
    start = lines.index("| setting | default | meaning |")
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return lines[start:end]


def test_the_readme_settings_table_is_the_declared_one():
    readme = readme_settings_table()
    declared = settings_markdown().splitlines()

    def cells(rows: list[str]) -> dict[str, str]:  # variable -> default cell
        found = (re.match(r"\| `(SEACO_\w+)` \| (.*?) \|", row) for row in rows[2:])
        return {m[1]: m[2] for m in found if m}

    in_readme, in_code = cells(readme), cells(declared)
    assert not in_code.keys() - in_readme.keys(), "missing from the README"
    assert not in_readme.keys() - in_code.keys(), "in the README but not declared"
    assert {k: v for k, v in in_readme.items() if in_code[k] != v} == {}, "defaults differ"
    # the descriptions too: regenerate the table with `seaco config --markdown`
    assert readme == declared


def test_seaco_config_masks_secrets_and_names_sources(monkeypatch, capsys):
    for spec in SETTINGS:
        monkeypatch.delenv(spec.env, raising=False)
    monkeypatch.setenv("SEACO_API_TOKENS", "tok-one-9f2, tok-two-41c")
    monkeypatch.setenv("SEACO_CALLBACK_SECRET", "hmac-secret-77")
    monkeypatch.setenv("SEACO_ALERT_SMTP", "smtp://me:pw-3e1@mail:587")
    Path(".env").write_text("SEACO_QUEUE_MAX=7\n")  # the test's own working directory

    assert cli.main(["config"]) == 0
    out = capsys.readouterr().out
    lines = {line.split("=", 1)[0]: line for line in out.splitlines()}
    assert list(lines) == [spec.env for spec in SETTINGS]
    assert lines["SEACO_API_TOKENS"].startswith("SEACO_API_TOKENS=(2 set)    # env: ")
    assert lines["SEACO_CALLBACK_SECRET"].startswith("SEACO_CALLBACK_SECRET=(set)    # env")
    assert lines["SEACO_QUEUE_MAX"].startswith("SEACO_QUEUE_MAX=7    # .env: Queued jobs")
    assert lines["SEACO_ALERT_WEBHOOK_URL"].startswith("SEACO_ALERT_WEBHOOK_URL=    # default")
    for secret in ("tok-one", "tok-two", "hmac-secret", "pw-3e1"):
        assert secret not in out
    assert "`" not in out  # descriptions are Markdown; the plain text shows no backticks


def test_every_secret_is_masked_on_the_system_page():
    secrets = [spec for spec in SETTINGS if spec.secret]
    assert {spec.name for spec in secrets} == {
        "API_TOKENS",
        "CALLBACK_SECRET",
        "ALERT_WEBHOOK_URL",
        "ALERT_SMTP",
    }
    settings = load_settings({s.env: f"x-secret-{s.name}" for s in secrets}, env_file=None)
    rows = settings_rows(settings)
    assert [row["setting"] for row in rows] == [spec.env for spec in SETTINGS]
    shown = {row["setting"]: row for row in rows}
    assert shown["SEACO_API_TOKENS"]["value"] == "(1 set)"
    assert shown["SEACO_ALERT_SMTP"] == {
        "setting": "SEACO_ALERT_SMTP",
        "value": "(set)",
        "from": "env",
        "meaning": "Mail server for alerts: smtp://user:password@host:587 (STARTTLS) or "
        "smtps://user:password@host:465; empty: no e-mail.",
    }
    assert "x-secret" not in repr(rows)
    assert shown["SEACO_PORT"]["value"] == "7860" and shown["SEACO_PORT"]["from"] == "default"


def test_seaco_config_markdown_prints_the_table_without_reading_settings(monkeypatch, capsys):
    monkeypatch.setenv("SEACO_PORT", "not a port")  # would stop `seaco config`
    assert cli.main(["config", "--markdown"]) == 0
    assert capsys.readouterr().out == settings_markdown()
    assert cli.main(["config"]) == 2
    assert "SEACO_PORT must be a whole number" in capsys.readouterr().err


def test_child_environment_round_trips():
    settings = load_settings(
        {"SEACO_PORT": "8123", "SEACO_HOTWORDS": "科哥", "SEACO_VACUUM_CRON": "off"},
        env_file=None,
    )
    assert set(settings.as_env()) == {spec.env for spec in SETTINGS}
    again = load_settings(settings.as_env(), env_file=None)
    assert again == settings
