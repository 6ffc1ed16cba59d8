from pathlib import Path

import pytest

from engine.config import PROD_ASR_MODEL, SETTINGS_DOC, load_settings
from engine.errors import ConfigError


def test_defaults_are_the_documented_ones(tmp_path):
    settings = load_settings({}, env_file=None)
    assert settings.port == 7860 and settings.queue_max == 20
    assert settings.host == "127.0.0.1" and settings.device == "auto"
    assert settings.asr_model == PROD_ASR_MODEL
    assert settings.data_dir == Path("./data").resolve()
    assert set(settings.sources.values()) == {"default"}


def test_environment_wins_over_dotenv_which_wins_over_defaults(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("SEACO_PORT=9000\nSEACO_QUEUE_MAX=5\nSEACO_HOTWORDS=科哥,Paraformer\n")
    settings = load_settings({"SEACO_PORT": "9100"}, env_file=env_file)
    assert settings.port == 9100 and settings.sources["PORT"] == "env"
    assert settings.queue_max == 5 and settings.sources["QUEUE_MAX"] == ".env"
    assert settings.hotwords == "科哥,Paraformer"
    assert settings.sources["DEVICE"] == "default"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("PORT", "http", "whole number"),
        ("PORT", "70000", "at most 65535"),
        ("QUEUE_MAX", "0", "at least 1"),
        ("DEVICE", "tpu", "auto, cuda or cpu"),
        ("PRECISION", "int8", "fp32, fp16, bf16"),
        ("ASR_MODEL", "  ", "must not be empty"),
    ],
)
def test_bad_values_are_refused_with_the_setting_named(name, value, message):
    with pytest.raises(ConfigError, match=message) as info:
        load_settings({f"SEACO_{name}": value}, env_file=None)
    assert f"SEACO_{name}" in str(info.value)


def test_every_setting_is_in_the_readme():
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    for name, (default, _doc) in SETTINGS_DOC.items():
        assert f"`SEACO_{name}`" in readme
        assert f"`{default or '(empty)'}`" in readme


def test_child_environment_round_trips():
    settings = load_settings({"SEACO_PORT": "8123", "SEACO_HOTWORDS": "科哥"}, env_file=None)
    again = load_settings(settings.as_env(), env_file=None)
    assert again == settings
