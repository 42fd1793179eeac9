"""This repository's own conftest: empty on purpose. The suite's settings live in pyproject.toml
([tool.perfsuite]), the perfsuite plugin loads through its `pytest11` entry point, and pytester
(for tests/unit) is enabled in pytest.ini. Keep it free of `pytest_plugins`: runs of other
repositories against an editable install load it when they collect perfsuite/suite."""
