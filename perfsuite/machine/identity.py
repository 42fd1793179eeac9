"""MachineIdentity: this machine's fingerprint and baseline key, each resolved once per run and
shared by the gates, the reports and pytest-benchmark's JSON."""

from __future__ import annotations

import typing
from collections.abc import Sequence

from perfsuite.config.validate import check_machine_key
from perfsuite.machine.fingerprint import MachineFingerprint, fingerprint, machine_key

# the pytest_perfsuite_machine_key hook (typing's Callable: subscriptable at run time on 3.8)
KeyChooser = typing.Callable[[MachineFingerprint], object]


class MachineIdentity:
    """The fingerprint (hardware, and the versions of `packages`) and the key baselines are
    stored under: `key` where given (--perf-machine-key or PERFSUITE_MACHINE_KEY), else the
    chooser's answer, else the hardware slug."""

    def __init__(self, packages: Sequence[str], key: str | None = None,
                 choose_key: KeyChooser = lambda fingerprint: None) -> None:
        self._packages = tuple(packages)
        self._key = key
        self._choose_key = choose_key
        self._fingerprint: MachineFingerprint | None = None

    @property
    def fingerprint(self) -> MachineFingerprint:
        if self._fingerprint is None:
            self._fingerprint = fingerprint(packages=self._packages)
        return self._fingerprint

    @property
    def key(self) -> str:
        """ConfigError where the chooser returns no usable name."""
        if self._key is None:
            chosen = self._choose_key(self.fingerprint)
            self._key = (check_machine_key(str(chosen), "pytest_perfsuite_machine_key returned")
                         if chosen else machine_key(self.fingerprint))
        return self._key

    @property
    def known_key(self) -> str | None:
        """The key if it is resolved already (nothing is read to say this)."""
        return self._key
