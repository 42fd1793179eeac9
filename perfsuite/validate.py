"""Validators shared by the configuration parsers. Each error names the setting and where it came
from, what was expected and, for choices, the valid values."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from perfsuite.errors import ConfigError


def check_keys(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where}| expected a table, got {type(table).__name__}.")
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(
            f"{where}| unknown key {unknown[0]!r}. Valid keys: {', '.join(sorted(allowed))}."
        )


def check_choices(value: Any, valid: Sequence[str], where: str, note: str = "") -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not value:
        raise ConfigError(f"{where} | expected a non-empty list of: {', '.join(valid)}.")
    for item in value:
        check_choice(item, valid, where, note)
    return tuple(dict.fromkeys(value))


def check_choice(value: Any, valid: Sequence[str], where: str, note: str = "") -> str:
    if value not in valid:
        raise ConfigError(f"{where} | unknown value {value!r}. Valid values{note}: "
                          f"{', '.join(valid)}.")
    return str(value)


def is_positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def check_int(value: Any, where: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{where} | expected an integer >= {minimum}, got {value!r}.")
    return value


def check_number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigError(f"{where} | expected a number >= 0, got {value!r}.")
    return float(value)


def check_bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where} | expected true or false, got {value!r}.")
    return value
