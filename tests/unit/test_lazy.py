"""perfsuite imports without its heavy optional dependencies, and says how to get them."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import ClassVar

BLOCKED = ["torch", "torchvision", "onnx", "onnxruntime", "onnxscript", "tensorrt", "pycuda"]


def test_every_module_imports_without_heavy_packages():
    script = textwrap.dedent(f"""
        import importlib, pkgutil, sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {BLOCKED!r}:
                    raise ImportError("blocked: " + name)
        sys.meta_path.insert(0, Block())
        import perfsuite
        names = [m.name for m in pkgutil.walk_packages(perfsuite.__path__, "perfsuite.")]
        for name in names:
            importlib.import_module(name)
        from perfsuite.backends import make_backend
        print(make_backend("onnxruntime").available())
        print(make_backend("torch").available())
        from perfsuite.lazy import require
        try:
            require("onnxruntime")
        except Exception as exc:
            print(type(exc).__name__, exc)
        print(len(names), "modules")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "(False, \"onnxruntime is not installed (pip install 'perfsuite[ort]')\")" in out
    assert "(False, 'torch is not installed (pip install torch)')" in out
    assert "BackendUnavailable onnxruntime | cannot be imported" in out
    assert "pip install 'perfsuite[ort]'" in out


def test_a_backend_is_one_module_and_one_registry_entry(tmp_path, monkeypatch):
    """Its packages join the recorded software versions, its extras the install hints, and it
    runs by default: nothing else to edit."""
    from perfsuite import backends
    from perfsuite.backends import software_packages
    from perfsuite.backends.base import Backend
    from perfsuite.config.settings import load_config
    from perfsuite.lazy import install_hint

    class NewBackend(Backend):
        name = "new-backend"
        precisions = ("fp32",)
        packages = ("newpkg",)
        extras: ClassVar[dict[str, str]] = {"newmod": "new"}

        def available(self):
            return True, ""

        def prepare(self, spec, artifacts, precision, device):
            raise NotImplementedError

    monkeypatch.setitem(backends.BACKEND_TYPES, NewBackend.name, NewBackend)
    assert "newpkg" in software_packages() and "onnxruntime" in software_packages()
    assert install_hint("newmod.sub") == "pip install 'perfsuite[new]'"
    assert install_hint("pycuda") == "pip install 'perfsuite[trt]'"
    config = load_config(tmp_path, list(backends.BACKEND_TYPES), environ={})
    assert "new-backend" in config.backends
