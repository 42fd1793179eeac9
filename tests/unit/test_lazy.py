"""perfsuite imports without its heavy optional dependencies, and says how to get them."""

from __future__ import annotations

import subprocess
import sys
import textwrap

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
