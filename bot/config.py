"""All configuration, from environment variables (and a ``.env`` file).

The names are the public contract of SPEC §3; extensions are documented in the
README ("Configuration").
"""

from __future__ import annotations

import os
import re
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values
from pydantic import AnyHttpUrl, Field, PrivateAttr, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings.sources import ENV_FILE_SENTINEL

ROUTING_KEY_PREFIX = "PAGERDUTY_ROUTING_KEY_"
_CHANNEL_PREFIX = re.compile(r"^[a-z0-9][a-z0-9_-]{0,20}$")


class ConfigError(Exception):
    """A start-up problem with the configuration, worded for an operator."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: AnyHttpUrl = AnyHttpUrl("https://slack.com/api/")

    database_url: str = "sqlite+aiosqlite:///./firebreak.db"
    playbooks_dir: str = "./playbooks"
    port: int = Field(default=3000, ge=1, le=65535)
    host: str = "0.0.0.0"
    incident_channel_prefix: str = "inc"
    announce_channel: str | None = None
    display_timezone: str = "UTC"
    web_auth_token: SecretStr | None = None
    public_base_url: str | None = None

    render_api_key: SecretStr | None = None
    render_api_url: AnyHttpUrl = AnyHttpUrl("https://api.render.com/v1")
    railway_api_token: SecretStr | None = None
    railway_api_url: AnyHttpUrl = AnyHttpUrl("https://backboard.railway.com/graphql/v2")
    vercel_token: SecretStr | None = None
    vercel_api_url: AnyHttpUrl = AnyHttpUrl("https://api.vercel.com")
    heroku_api_key: SecretStr | None = None
    heroku_api_url: AnyHttpUrl = AnyHttpUrl("https://api.heroku.com")
    github_token: SecretStr | None = None
    github_api_url: AnyHttpUrl = AnyHttpUrl("https://api.github.com")
    pagerduty_events_url: AnyHttpUrl = AnyHttpUrl("https://events.pagerduty.com/v2/enqueue")
    opsgenie_api_key: SecretStr | None = None
    opsgenie_api_url: AnyHttpUrl = AnyHttpUrl("https://api.opsgenie.com")
    postmortem_github_repo: str | None = None

    # Extensions (README "Configuration"): worker tuning and logging.
    run_workers: bool = True
    worker_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    work_concurrency: int = Field(default=16, ge=1, le=256)
    work_queue_limit: int = Field(default=5000, ge=1)
    worker_lease_seconds: float = Field(default=120.0, ge=1, le=3600)
    rollback_poll_seconds: float = Field(default=3.0, gt=0, le=300)
    # HTTP hygiene: an idle keep-alive connection (or one whose request line and headers never
    # finish) is closed after HTTP_IDLE_TIMEOUT_SECONDS; a request body that has not arrived
    # HTTP_READ_TIMEOUT_SECONDS after its headers gets a 408 and the connection is closed.
    http_idle_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    http_read_timeout_seconds: float = Field(default=20.0, gt=0, le=600)
    log_level: str = "INFO"

    @field_validator("incident_channel_prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        if not _CHANNEL_PREFIX.match(value):
            raise ValueError(
                "must be 1-21 lowercase letters, digits, '-' or '_' (a Slack channel name prefix)"
            )
        return value

    @field_validator("display_timezone")
    @classmethod
    def _check_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r}") from None
        return value

    @field_validator("postmortem_github_repo")
    @classmethod
    def _check_repo(cls, value: str | None) -> str | None:
        if value and not re.match(r"^[\w.-]+/[\w.-]+$", value):
            raise ValueError("must be written owner/name")
        return value or None

    @field_validator("announce_channel", "public_base_url")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return value or None

    @cached_property
    def display_zone(self) -> ZoneInfo:
        return ZoneInfo(self.display_timezone)

    def __init__(self, **values: Any) -> None:
        # The routing keys are read when the other fields are, from the same sources:
        # the environment, and the .env file(s) unless ``_env_file=None`` turned them off.
        env_file = values.get("_env_file", ENV_FILE_SENTINEL)
        super().__init__(**values)
        if env_file is ENV_FILE_SENTINEL:
            env_file = self.model_config.get("env_file")
        self._routing_keys = _routing_keys(env_file)

    _routing_keys: dict[str, SecretStr] = PrivateAttr(default_factory=dict)

    @property
    def pagerduty_routing_keys(self) -> dict[str, SecretStr]:
        """``PAGERDUTY_ROUTING_KEY_<NAME>`` from the environment and ``.env``, by lower-case name."""
        return self._routing_keys

    def secret_values(self) -> list[str]:
        """Every configured secret, for scrubbing logs and checking exports."""
        values = [
            v.get_secret_value()
            for v in (
                self.slack_bot_token, self.slack_signing_secret, self.slack_app_token,
                self.web_auth_token, self.render_api_key, self.railway_api_token,
                self.vercel_token, self.heroku_api_key, self.github_token,
                self.opsgenie_api_key,
            )
            if v is not None
        ]
        values += [v.get_secret_value() for v in self.pagerduty_routing_keys.values()]
        return [v for v in values if len(v) >= 6]

    @classmethod
    def from_values(cls, **values: object) -> Settings:
        """Settings from ``values`` and the defaults alone, never the environment or a ``.env``
        (``firebreak demo``: a developer's shell or a deployment's .env must not reach it)."""
        return _ValuesOnly(**values)  # type: ignore[arg-type]

    @property
    def socket_mode(self) -> bool:
        return self.slack_app_token is not None

    def require_for_serve(self) -> None:
        """Raise ConfigError naming what ``firebreak serve`` cannot run without."""
        missing = []
        if self.slack_bot_token is None:
            missing.append("SLACK_BOT_TOKEN (the bot token, xoxb-...)")
        if not self.socket_mode and self.slack_signing_secret is None:
            missing.append("SLACK_SIGNING_SECRET (needed in HTTP mode to verify Slack's requests)")
        if missing:
            raise ConfigError("missing configuration: " + "; ".join(missing))


def _routing_keys(env_file: object) -> dict[str, SecretStr]:
    files = [env_file] if isinstance(env_file, (str, os.PathLike)) else list(env_file or ())  # type: ignore[call-overload]
    sources: list[dict[str, str | None]] = [dotenv_values(f) for f in files if os.path.isfile(f)]
    sources.append(dict(os.environ))  # the environment wins over .env, as for every other variable
    found: dict[str, SecretStr] = {}
    for source in sources:
        for key, value in source.items():
            if key.upper().startswith(ROUTING_KEY_PREFIX) and value:
                found[key[len(ROUTING_KEY_PREFIX):].lower()] = SecretStr(value)
    return found


class _ValuesOnly(Settings):
    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings,  # type: ignore[no-untyped-def,override]  # pydantic-settings' own signature
                                   dotenv_settings, file_secret_settings):
        return (init_settings,)


def load_settings(**overrides: object) -> Settings:
    """Build Settings, turning validation errors into one readable ConfigError."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = ".".join(str(p) for p in err["loc"]).upper() or "configuration"
            shown = err.get("input")
            hint = f" (got {shown!r})" if isinstance(shown, (str, int, float)) and "TOKEN" not in name and "KEY" not in name and "SECRET" not in name else ""
            problems.append(f"{name}: {err['msg']}{hint}")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None
