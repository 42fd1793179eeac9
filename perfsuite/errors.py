"""One error family. Messages follow: subject, what failed, expected vs got, remedy."""

from __future__ import annotations


class PerfsuiteError(Exception):
    """Base of every error perfsuite raises on purpose."""


class ConfigError(PerfsuiteError):
    """A setting is missing, unknown or malformed; the plugin turns it into a pytest usage error."""


class BackendUnavailable(PerfsuiteError):
    """A backend cannot run here (package missing, device or precision unsupported); tests skip."""


class ModelError(PerfsuiteError):
    """A model cannot be built or its weights file cannot be loaded."""


class ExportError(PerfsuiteError):
    """The ONNX export failed or wrote something other than what was asked for."""


class CacheError(PerfsuiteError):
    """The artifact cache cannot be used (unwritable directory, lock failure)."""


class InternalError(Exception):
    """A bug in perfsuite itself, never the user's input. Deliberately not a PerfsuiteError."""
