"""The README's reference lists every configuration key, option and table word the code has,
with the code's defaults: a key added to the code but not to the reference fails here."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest

from perfsuite import plugin
from perfsuite.config.gate_policy import GatePolicy
from perfsuite.config.parts import OnnxConfig, TensorRTConfig, TimingConfig
from perfsuite.config.settings import SuiteConfig, configuration_keys
from perfsuite.gate.summary import GATE_WORDS
from perfsuite.measure.latency_stats import WARNING_LABELS

README = Path(__file__).resolve().parents[2] / "README.md"


def reference() -> str:
    text = README.read_text()
    start = text.index("\n## Reference\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else None]


def sections() -> dict[str, list[list[str]]]:
    """Heading (each backticked [table] name in it, or its text) -> the rows of its table."""
    found: dict[str, list[list[str]]] = {}
    names: list[str] = []
    for line in reference().splitlines():
        if line.startswith("### "):
            names = re.findall(r"`\[\[?([^\]`]+)\]\]?`", line) or [line[4:].strip()]
            for name in names:
                found[name] = []
        elif line.startswith("| ") and not line.startswith("|---") and names:
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            if cells[0] not in ("key", "option", "word"):
                for name in names:
                    found[name].append(cells)
    return found


def first_column(rows: list[list[str]]) -> set[str]:
    return {re.sub(r"^`([^`]*)`$", r"\1", row[0]) for row in rows}


@pytest.mark.parametrize("table", sorted(configuration_keys()))
def test_every_configuration_key_is_in_the_reference(table):
    documented = sections()
    assert table in documented, f"README reference has no section for [{table}]"
    assert first_column(documented[table]) == configuration_keys()[table]


DEFAULTS = {
    "tool.perfsuite": SuiteConfig(),
    "tool.perfsuite.timing": TimingConfig(),
    "tool.perfsuite.onnx": OnnxConfig(),
    "tool.perfsuite.gate": GatePolicy(),
    "tool.perfsuite.tensorrt": TensorRTConfig(),
}


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


@pytest.mark.parametrize("table", sorted(DEFAULTS))
def test_documented_scalar_defaults_are_the_codes(table):
    rows = {row[0].strip("`"): row[1] for row in sections()[table]}
    instance = DEFAULTS[table]
    checked = 0
    for field in fields(instance):  # type: ignore[arg-type]
        value = getattr(instance, field.name)
        if field.name in rows and isinstance(value, (bool, int, float, str)):
            assert rows[field.name] == f"`{toml_value(value)}`", field.name
            checked += 1
    assert checked >= 2


def test_every_command_line_option_is_in_the_reference():
    class Recorder:
        def __init__(self) -> None:
            self.options: list[str] = []

        def getgroup(self, *args: object) -> Recorder:
            return self

        def addoption(self, name: str, **kwargs: object) -> None:
            self.options.append(name)

    recorder = Recorder()
    plugin.pytest_addoption(recorder)  # type: ignore[arg-type]
    assert recorder.options and all(o.startswith("--perf-") for o in recorder.options)
    assert first_column(sections()["Command-line options"]) == set(recorder.options)


def test_every_word_the_table_prints_is_explained():
    words = first_column(sections()["Words in the table and the verdicts"])
    for word in (*WARNING_LABELS, *GATE_WORDS.values(), "reference", "advisory"):
        assert word in words, word
