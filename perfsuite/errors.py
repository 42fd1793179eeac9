"""One error family. Messages follow: subject, what failed, expected vs got, remedy."""

from __future__ import annotations


class PerfsuiteError(Exception):
    """Base of every error perfsuite raises on purpose."""


class ConfigError(PerfsuiteError):
    """A setting is missing, unknown or malformed; the plugin turns it into a pytest usage error."""


class BackendUnavailable(PerfsuiteError):
    """A backend cannot run here (package missing, device or precision unsupported); tests skip."""


class BuiltNotRunnable(BackendUnavailable):
    """The backend built its artifact (an engine for another GPU) but cannot run it here; the
    artifact's size still belongs in the results."""

    def __init__(self, message: str, artifact_bytes: int, details: dict[str, str]) -> None:
        super().__init__(message)
        self.artifact_bytes = artifact_bytes
        self.details = dict(details)


class PreflightFailed(PerfsuiteError):
    """The machine is not in a state to time (clocks, power mode, heat): the benchmark fails."""


class PreflightSkip(BackendUnavailable):
    """As PreflightFailed, where the run asked for skips instead of failures."""


class ModelError(PerfsuiteError):
    """A model cannot be built or its weights file cannot be loaded."""


class ExportError(PerfsuiteError):
    """The ONNX export failed or wrote something other than what was asked for."""


class CacheError(PerfsuiteError):
    """The artifact cache cannot be used (unwritable directory, lock failure)."""


class InternalError(Exception):
    """A bug in perfsuite itself, never the user's input. Deliberately not a PerfsuiteError."""


class SideError(PerfsuiteError):
    """--perf-ab: one request failed on a side (its model does not build, say); the worker goes on."""

    def __init__(self, message: str, label: str = "") -> None:
        super().__init__(message)
        self.label = label  # the side's


class SideStopped(PerfsuiteError):
    """--perf-ab: a side's worker is gone: crashed, exited or stopped after a time-out."""


class CliError(PerfsuiteError):
    """A mistake in how `perfsuite` was called or in what it found; exit status 2."""
