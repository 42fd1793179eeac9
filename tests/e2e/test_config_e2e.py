"""Configuration errors end to end: pytest runs (pytester) that stop with a usage error naming
the bad value (unit tests: tests/unit/config/test_config.py)."""

from __future__ import annotations

import pytest


def test_unknown_value_is_a_usage_error_end_to_end(pytester):
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest_subprocess("--perf-precisions", "fp8")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--perf-precisions | unknown value 'fp8'. Valid values: fp32, fp16, bf16*"])


def test_unknown_torchvision_model_is_a_usage_error(pytester):
    pytester.makefile(".toml", pyproject='[tool.perfsuite]\n[[tool.perfsuite.models]]\nname = "x"\n'
                      'torchvision = "resnet19"\ninput_shape = [1, 3, 32, 32]\n')
    pytester.makepyfile("def test_size(perf_model):\n    pass\n")
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown torchvision model 'resnet19'. Valid names: *resnet18*"])
