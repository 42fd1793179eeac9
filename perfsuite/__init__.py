"""perfsuite: a pytest performance regression suite for deep-learning inference."""

from __future__ import annotations

__version__ = "0.1.0"
