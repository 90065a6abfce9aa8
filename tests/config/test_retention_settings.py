"""Retention settings: ages in days (0 or null = keep forever), dead letters kept at least as long as the
sync log, problems named by file, line and key; environment overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from destination.actions.loader import ConfigError
from destination.config import RetentionConfig, load_settings


def test_the_defaults_keep_outcomes_30_days_dead_letters_90_and_embedded_events_7() -> None:
    config = load_settings(None).retention
    assert (config.sync_log_days, config.dead_letter_days, config.event_log_days) == (30, 90, 7)
    assert config.interval_seconds == 3600 and config.batch_rows == 1000


@pytest.mark.parametrize("text", ["{sync_log_days: 30, dead_letter_days: 10}",
                                  "{sync_log_days: 0, dead_letter_days: 90}",
                                  "{sync_log_days: null, dead_letter_days: 90}"])
def test_dead_letters_kept_shorter_than_outcomes_are_refused_naming_the_key(tmp_path: Path, text: str) -> None:
    path = tmp_path / "destination.yaml"
    path.write_text(f"retention: {text}\n")
    with pytest.raises(ConfigError) as refused:
        load_settings(path)
    assert f"{path}:1:" in str(refused.value) and "dead_letter_days must be at least sync_log_days" in str(refused.value)


@pytest.mark.parametrize("fields", [{"sync_log_days": 30, "dead_letter_days": 30}, {"sync_log_days": 5, "dead_letter_days": 0},
                                    {"sync_log_days": None, "dead_letter_days": None}, {"sync_log_days": 0.5}])
def test_equal_ages_forever_for_dead_letters_and_fractions_of_days_are_accepted(fields: dict[str, float | None]) -> None:
    assert RetentionConfig.model_validate(fields).model_dump(include=set(fields)) == fields


def test_the_environment_overrides_a_retention_age(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DESTINATION_RETENTION__EVENT_LOG_DAYS", "2")
    monkeypatch.setenv("DESTINATION_RETENTION__SYNC_LOG_DAYS", "0")
    monkeypatch.setenv("DESTINATION_RETENTION__DEAD_LETTER_DAYS", "0")
    config = load_settings(tmp_path / "absent.yaml").retention
    assert (config.event_log_days, config.sync_log_days, config.dead_letter_days) == (2, 0, 0)
