"""Incident rules as data: one YAML file, validated when a process starts.

A bad file is refused with a message that names the rule and the field, so an operator who
edits the rules learns what is wrong before anything runs on them.
"""

from __future__ import annotations

from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from schemas.events import Level


class RulesError(ValueError):
    """The rules file cannot be used; the message names the rule and what is wrong."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClockRules(_Strict):
    future_skew_minutes: float = Field(default=5, ge=0, le=60)
    quiet_minutes: float = Field(default=60, gt=0)
    quake_max_age_minutes: float = Field(default=60, gt=0)
    quake_in_force_minutes: float = Field(default=60, gt=0)
    remember_hours: float = Field(default=48, gt=0)

    @property
    def future_skew(self) -> timedelta:
        return timedelta(minutes=self.future_skew_minutes)

    @property
    def quiet(self) -> timedelta:
        return timedelta(minutes=self.quiet_minutes)

    @property
    def quake_max_age(self) -> timedelta:
        return timedelta(minutes=self.quake_max_age_minutes)

    @property
    def quake_in_force(self) -> timedelta:
        return timedelta(minutes=self.quake_in_force_minutes)

    @property
    def remember(self) -> timedelta:
        return timedelta(hours=self.remember_hours)


class CorroborationRule(_Strict):
    name: str = Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9-]*$")
    when: Literal["warned", "unwarned"]
    distinct_reporters: int = Field(ge=1, le=1000)
    within_minutes: float = Field(gt=0, le=24 * 60)
    then: Literal["escalate_once", "open_unverified"]
    level: Level | None = None

    @model_validator(mode="after")
    def _consistent(self) -> CorroborationRule:
        if self.when == "warned" and self.then != "escalate_once":
            raise ValueError("under a warning the only action is escalate_once")
        if self.when == "unwarned" and self.then != "open_unverified":
            raise ValueError("without a warning the only action is open_unverified")
        if self.then == "open_unverified" and self.level is None:
            raise ValueError("open_unverified needs the level to open at")
        return self

    @property
    def window(self) -> timedelta:
        return timedelta(minutes=self.within_minutes)


class Rules(_Strict):
    version: Literal[1] = 1
    clock: ClockRules = Field(default_factory=ClockRules)
    corroboration: list[CorroborationRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> Rules:
        names = [rule.name for rule in self.corroboration]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"rule names must be unique: {', '.join(twice)}")
        for when in ("warned", "unwarned"):
            if sum(rule.when == when for rule in self.corroboration) > 1:
                raise ValueError(f"at most one corroboration rule for when: {when}")
        return self

    def rule_for(self, when: Literal["warned", "unwarned"]) -> CorroborationRule | None:
        return next((rule for rule in self.corroboration if rule.when == when), None)

    @property
    def report_window(self) -> timedelta:
        """How far back reports can matter to any rule (older ones are pruned)."""
        windows = [rule.window for rule in self.corroboration]
        return max([self.clock.quiet, *windows])


def default_rules_path() -> Path:
    return Path(str(resources.files("stream_processors") / "rules.yaml"))


def load_rules(path: Path | None = None) -> Rules:
    """Read and validate the rules; :class:`RulesError` names what is wrong and where."""
    path = path or default_rules_path()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RulesError(f"{path}: cannot read the rules: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise RulesError(f"{path}: not valid YAML: {exc}") from None
    return parse_rules(data, str(path))


def parse_rules(data: object, origin: str = "rules") -> Rules:
    if not isinstance(data, dict):
        raise RulesError(f"{origin}: expected a mapping with version, clock, corroboration")
    try:
        return Rules.model_validate(data)
    except ValidationError as exc:
        raise RulesError(f"{origin}: " + "; ".join(
            _describe(data, error["loc"], error["msg"]) for error in exc.errors()
        )) from None


def _describe(data: dict[str, object], loc: tuple[int | str, ...], msg: str) -> str:
    """``corroboration.1.distinct_reporters`` -> ``rule 'citizens-confirm': distinct_reporters``."""
    if len(loc) >= 2 and loc[0] == "corroboration" and isinstance(loc[1], int):
        rules = data.get("corroboration")
        name = None
        if isinstance(rules, list) and loc[1] < len(rules) and isinstance(rules[loc[1]], dict):
            name = rules[loc[1]].get("name")
        label = f"rule {name!r}" if name else f"rule #{loc[1] + 1}"
        field = ".".join(str(part) for part in loc[2:]) or "the rule"
        return f"{label}: {field}: {msg}"
    return f"{'.'.join(str(part) for part in loc) or 'the file'}: {msg}"
