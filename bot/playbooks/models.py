"""Validated playbook models (SPEC §5)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class Severity(StrEnum):
    """Incident severity, most severe first (``P0`` < ``P3`` in urgency order)."""

    P0 = "P0"
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RenderConfig(_Strict):
    type: Literal["render"]
    service_id: str = Field(min_length=1)


class RailwayConfig(_Strict):
    type: Literal["railway"]
    project_id: str = Field(min_length=1)
    environment_id: str = Field(min_length=1)
    service_id: str = Field(min_length=1)


class VercelConfig(_Strict):
    type: Literal["vercel"]
    project_id: str = Field(min_length=1)
    team_id: str | None = None


class HerokuConfig(_Strict):
    type: Literal["heroku"]
    app: str = Field(min_length=1)


class GithubActionsConfig(_Strict):
    type: Literal["github-actions"]
    repo: str = Field(pattern=r"^[\w.-]+/[\w.-]+$")
    workflow: str = Field(min_length=1)  # file name (rollback.yml) or numeric id
    ref: str = "main"
    inputs: dict[str, str] = Field(default_factory=dict)
    environment: str = "production"  # the GitHub deployment environment


ProviderConfig = Annotated[
    RenderConfig | RailwayConfig | VercelConfig | HerokuConfig | GithubActionsConfig,
    Field(discriminator="type"),
]
