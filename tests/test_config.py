from __future__ import annotations

from pathlib import Path

import pytest

from runtime.config import DEFAULTS, Config
from runtime.exceptions import ConfigError


def test_defaults_live_in_one_place() -> None:
    config = Config(environ={})
    assert dict(config) == DEFAULTS
    assert config.GRACEFUL_SHUTDOWN_TIMEOUT == 15.0


def test_environment_variables_with_prefix_are_parsed() -> None:
    config = Config(
        environ={
            "VIVACE_REQUEST_TIMEOUT": "2.5",
            "VIVACE_WORKER_CRASH_LIMIT": "3",
            "VIVACE_ACCESS_LOG": "true",
            "VIVACE_GREETING": "hello",
            "OTHER_THING": "x",
        }
    )
    assert config.REQUEST_TIMEOUT == 2.5
    assert config.WORKER_CRASH_LIMIT == 3
    assert config.ACCESS_LOG is True
    assert config.GREETING == "hello"
    assert "OTHER_THING" not in config and "THING" not in config


def test_attribute_and_item_access_agree() -> None:
    config = Config(environ={})
    config.CUSTOM = 1
    assert config["CUSTOM"] == 1
    del config.CUSTOM
    with pytest.raises(AttributeError, match="CUSTOM"):
        _ = config.CUSTOM


def test_update_from_mapping_object_and_file(tmp_path: Path) -> None:
    config = Config(environ={})
    config.update({"A": 1})

    class Settings:
        B = 2
        lower = "ignored"

    config.update(Settings)
    settings_file = tmp_path / "settings.py"
    settings_file.write_text("C = 3\nhelper = 4\n")
    config.update(str(settings_file))
    config.update(D=4)
    assert (config.A, config.B, config.C, config.D) == (1, 2, 3, 4)
    assert "lower" not in config and "helper" not in config


def test_update_from_missing_or_broken_file_says_which(tmp_path: Path) -> None:
    config = Config(environ={})
    with pytest.raises(ConfigError, match="does not exist"):
        config.update(str(tmp_path / "nope.py"))
    broken = tmp_path / "broken.py"
    broken.write_text("X = (\n")
    with pytest.raises(ConfigError, match=r"broken\.py"):
        config.update(str(broken))
