"""Validators shared by the configuration parsers. Each error names the setting and where it came
from, what was expected and, for choices, the valid values."""

from __future__ import annotations

import math
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


def check_number(value: Any, where: str, above_zero: bool = False) -> float:
    """A finite number >= 0, or > 0 (TOML accepts nan and inf; a limit of nan would pass
    everything)."""
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
            or value < 0 or (above_zero and value == 0)):
        bound = "> 0" if above_zero else ">= 0"
        raise ConfigError(f"{where} | expected a finite number {bound}, got {value!r}.")
    return float(value)


MACHINE_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
MACHINE_KEY_MAX = 100


def check_machine_key(key: str, where: str) -> str:
    """A machine key names a folder under baselines/: letters, digits, '.', '_' and '-', at most
    100 characters, not starting with '.' (so never '..', an absolute path or a hidden folder)."""
    if (not key or len(key) > MACHINE_KEY_MAX or key.startswith(".")
            or not set(key) <= MACHINE_KEY_CHARS):
        raise ConfigError(
            f"{where} {key!r} | a machine key names a folder under baselines/: use letters, "
            f"digits, '.', '_' and '-' (not first: '.'), at most {MACHINE_KEY_MAX} characters, "
            "e.g. jetson-orin-nano-mode-0."
        )
    return key


def check_bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where} | expected true or false, got {value!r}.")
    return value
