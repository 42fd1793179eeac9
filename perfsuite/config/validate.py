"""Validators shared by the configuration parsers. Each error names the setting and where it came
from, what was expected and, for choices, the valid values."""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
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


def check_int(value: Any, where: str, minimum: int, maximum: int | None = None,
              each_s: float = 0.0) -> int:
    """An integer in [minimum, maximum]; above `maximum`, the refusal estimates the time the
    value would take at `each_s` seconds per unit (a call, a pair)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{where} | expected an integer >= {minimum}, got {value!r}.")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{where} | {value} is above perfsuite's limit of {maximum}"
                          f"{_estimate(value, each_s)}.\nRemedy: use at most {maximum} (README, "
                          "Configuration, limits).")
    return value


def check_number(value: Any, where: str, above_zero: bool = False,
                 maximum: float | None = None) -> float:
    """A finite number >= 0, or > 0 (TOML accepts nan and inf; a limit of nan would pass
    everything), and at most `maximum` where one is given."""
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
            or value < 0 or (above_zero and value == 0)):
        bound = "> 0" if above_zero else ">= 0"
        raise ConfigError(f"{where} | expected a finite number {bound}, got {value!r}.")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{where} | {value:g} is above perfsuite's limit of {maximum:g}.\n"
                          f"Remedy: use at most {maximum:g} (README, Configuration, limits).")
    return float(value)


def _estimate(value: int, each_s: float) -> str:
    if each_s <= 0:
        return ""
    seconds = value * each_s
    shown = (f"{seconds / 86400:,.0f} days" if seconds >= 86400 else
             f"{seconds / 3600:.1f} hours" if seconds >= 3600 else f"{seconds / 60:.0f} minutes")
    return f": at {each_s * 1e3:g} ms each, about {shown} per benchmark"


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


def check_program(value: Any, where: str, remedy: str, on_path: bool = False) -> str:
    """A program's path ("" for none), checked to be an executable file when given; with
    `on_path`, a bare name is looked up on PATH (the path found is returned)."""
    if not isinstance(value, str):
        raise ConfigError(f"{where} | expected a path string, got {value!r}.")
    found = shutil.which(value) if on_path and value and os.sep not in value else value
    if value and not (found and Path(found).is_file() and os.access(found, os.X_OK)):
        raise ConfigError(f"{where} | {value!r} is not an executable file.\nRemedy: {remedy}")
    return found or ""
