"""The one way perfsuite imports heavy optional packages (torch, onnxruntime, tensorrt, pycuda).

`is_installed` never imports; `require` imports on first use and turns a missing package into a
`BackendUnavailable` that names the package and the pip extra that provides it.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from perfsuite.errors import BackendUnavailable

# Which `pip install perfsuite[extra]` brings each optional package: the backends add their own
# (Backend.extras, registered as each backend class is defined), the others are here.
_EXTRAS = {
    "hypothesis": "test",
    "matplotlib": "plots",
}


def register_extras(extras: dict[str, str]) -> None:
    """Module -> extra entries of a backend (Backend.__init_subclass__ calls this)."""
    _EXTRAS.update(extras)


def extras() -> dict[str, str]:
    return dict(_EXTRAS)


def is_installed(module: str) -> bool:
    """True when `module` can be imported; finds it without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def install_hint(module: str) -> str:
    top = module.split(".")[0]
    extra = extras().get(top)
    return f"pip install 'perfsuite[{extra}]'" if extra else f"pip install {top}"


def require(module: str) -> ModuleType:
    """Import `module`, or raise BackendUnavailable saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise BackendUnavailable(
            f"{module} | cannot be imported ({exc}).\nRemedy: {install_hint(module)}"
        ) from exc
