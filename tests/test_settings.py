"""Settings precedence (flags > ``CLAIMFLOW_*`` env > TOML config file) and the secret key."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from claimflow.cli.options import settings_from_flags
from claimflow.errors import ConfigurationError
from claimflow.settings import SECRET_KEY_FILE, Settings, load_settings

ENVIRONMENT_KEY = "from-the-environment-Qm7Vx2Lp9Wd4Kz8B"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each test runs in an empty directory with no CLAIMFLOW_* variables set."""
    for name in list(os.environ):
        if name.startswith("CLAIMFLOW_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def write_config(path: Path, body: str) -> Path:
    path.write_text(body, encoding="utf-8")
    return path


def test_defaults_are_a_sqlite_file_in_the_working_directory_and_a_local_issuer() -> None:
    settings = Settings()
    assert settings.database_url == "sqlite+aiosqlite:///./claimflow.db"
    assert settings.public_issuer() == "http://127.0.0.1:8000"


def test_config_file_in_working_directory_is_read(tmp_path: Path) -> None:
    write_config(tmp_path / "claimflow.toml", '[claimflow]\nport = 9100\nhost = "0.0.0.0"\n')
    settings = Settings()
    assert (settings.host, settings.port) == ("0.0.0.0", 9100)
    assert settings.public_issuer() == "http://0.0.0.0:9100"


def test_config_file_named_by_claimflow_config_with_top_level_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path / "elsewhere.toml", 'issuer = "https://id.example.com/"\n')
    monkeypatch.setenv("CLAIMFLOW_CONFIG", str(config))
    assert Settings().public_issuer() == "https://id.example.com"


def test_environment_beats_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(
        tmp_path / "claimflow.toml", "[claimflow]\nport = 9100\naccess_token_max_bytes = 5000\n"
    )
    monkeypatch.setenv("CLAIMFLOW_PORT", "9200")
    settings = Settings()
    assert settings.port == 9200
    assert settings.access_token_max_bytes == 5000


def test_flags_beat_environment_and_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(
        tmp_path / "claimflow.toml",
        '[claimflow]\nport = 9100\ndatabase_url = "sqlite+aiosqlite:///./from-file.db"\n',
    )
    monkeypatch.setenv("CLAIMFLOW_PORT", "9200")
    monkeypatch.setenv("CLAIMFLOW_DATABASE_URL", "sqlite+aiosqlite:///./from-env.db")
    settings = settings_from_flags("sqlite+aiosqlite:///./from-flag.db", port=9300, host=None)
    assert settings.port == 9300
    assert settings.database_url == "sqlite+aiosqlite:///./from-flag.db"
    assert settings.host == "127.0.0.1"


def test_list_settings_come_from_environment_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAIMFLOW_WORKFLOWS_ENABLED", '["org_billing"]')
    assert Settings().workflows_enabled == ["org_billing"]


def test_unknown_keys_in_config_file_are_refused_with_the_closest_setting(tmp_path: Path) -> None:
    write_config(tmp_path / "claimflow.toml", "[claimflow]\ndatabse_url = 1\nport = 9100\n")
    with pytest.raises(ConfigurationError, match="'databse_url' \\(did you mean 'database_url'"):
        load_settings()


def test_a_config_file_named_but_missing_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAIMFLOW_CONFIG", "/no/such/claimflow.toml")
    with pytest.raises(ConfigurationError, match="not a file"):
        load_settings()


def test_no_config_file_in_the_working_directory_is_fine() -> None:
    assert load_settings().port == 8000


@pytest.mark.parametrize(
    ("url", "fixed"),
    [
        ("postgres://u:pw@db/claims", "postgresql+asyncpg://u:***@db/claims"),
        ("postgresql://u@db/claims", "postgresql+asyncpg://u@db/claims"),
        ("postgresql+psycopg2://u@db/claims", "postgresql+asyncpg://u@db/claims"),
        ("sqlite:///./claims.db", "sqlite+aiosqlite:///./claims.db"),
    ],
)
def test_a_sync_driver_url_is_refused_with_the_async_url_to_write(url: str, fixed: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(f"write {fixed}")):
        load_settings(database_url=url)


@pytest.mark.parametrize(
    "key", ["short-key", "change-me-to-a-long-random-value-please-0123", "x" * 40, "ab" * 20]
)
def test_a_short_or_placeholder_secret_key_is_refused(key: str) -> None:
    with pytest.raises(ConfigurationError, match="CLAIMFLOW_SECRET_KEY"):
        load_settings(secret_key=key)


@given(st.text(min_size=0, max_size=80))
def test_any_database_url_is_accepted_or_refused_with_a_configuration_error(url: str) -> None:
    try:
        settings = load_settings(database_url=url)
    except ConfigurationError as exc:
        assert str(exc).startswith("CLAIMFLOW_DATABASE_URL: ")
    else:
        assert settings.database_url.startswith(("sqlite+aiosqlite:", "postgresql+asyncpg:"))


def test_secret_key_is_generated_once_and_kept_for_the_next_run(tmp_path: Path) -> None:
    first = Settings().resolved_secret_key()
    key_file = tmp_path / SECRET_KEY_FILE
    assert key_file.is_file()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(first) >= 32
    assert Settings().resolved_secret_key() == first


def test_secret_key_from_environment_is_used_and_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLAIMFLOW_SECRET_KEY", ENVIRONMENT_KEY)
    assert Settings().resolved_secret_key() == ENVIRONMENT_KEY
    assert not (tmp_path / SECRET_KEY_FILE).exists()


def test_the_readme_configuration_table_names_every_setting() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    missing = [
        name for name in Settings.model_fields if f"`CLAIMFLOW_{name.upper()}`" not in readme
    ]
    assert missing == []
