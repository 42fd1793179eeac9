"""This repository's own pytest configuration; the suite itself is set in pyproject.toml
([tool.perfsuite]) and the perfsuite plugin loads through its `pytest11` entry point."""

pytest_plugins = ["pytester"]  # tests/unit runs pytest itself end to end
