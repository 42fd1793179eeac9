"""Write tests/data/trt_api/<version>.json: the public Python API of real TensorRT bindings.

TensorRT's native libraries cannot be installed from PyPI (the `tensorrt-*-libs` packages are
stubs that download from NVIDIA), but the bindings wheels are real. The bindings link a handful
of C entry points from libnvinfer & co; stub libraries that define them (returning NULL) let the
module import, so `dir()` shows each version's exact classes, enum members and methods.

    python tools/trt_api_snapshot.py                     # the four default versions
    python tools/trt_api_snapshot.py tensorrt-cu12-bindings==10.8.0.43

Needs pip, gcc, nm and readelf (binutils). The emulator in tests/fakes reads these snapshots.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

DEFAULT_WHEELS = (
    "tensorrt-bindings==8.6.1",  # JetPack 5.1.x era API (8.5 shares it but ships no cp3x wheel)
    "tensorrt-cu12-bindings==10.3.0",  # JetPack 6.1 / 6.2
    "tensorrt-cu12-bindings==10.16.1.11",  # late 10.x
    "tensorrt-cu12-bindings==11.4.0.106",  # strongly typed only
)
OUT_DIR = Path(__file__).resolve().parents[1] / "tests" / "data" / "trt_api"

INTROSPECT = r"""
import importlib, inspect, json, sys
trt = importlib.import_module(sys.argv[1])
api = {"__version__": trt.__version__, "__module__": [], "__enums__": {}, "__classes__": {}}
for name in sorted(n for n in dir(trt) if not n.startswith("_")):
    obj = getattr(trt, name)
    if inspect.isclass(obj):
        members = sorted(m for m in dir(obj) if not m.startswith("_"))
        if hasattr(obj, "__members__"):
            api["__enums__"][name] = sorted(obj.__members__)
        else:
            api["__classes__"][name] = members
    else:
        api["__module__"].append(name)
print(json.dumps(api))
"""


def run(command: list[str], **kwargs: object) -> str:
    return subprocess.run(command, check=True, capture_output=True, text=True, **kwargs).stdout


def download(spec: str, into: Path) -> Path:
    run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
         f"--python-version={sys.version_info.major}.{sys.version_info.minor}",
         "--platform=manylinux_2_17_x86_64", "--platform=manylinux_2_28_x86_64",
         "--platform=manylinux2014_x86_64", "-d", str(into), spec])
    return next(into.glob("*.whl"))


def stub_libraries(module_so: Path, lib_dir: Path) -> None:
    """One stub .so per NEEDED TensorRT library, each defining every entry point the bindings use."""
    needed = re.findall(r"\[(libnv\S+)\]", run(["readelf", "-d", str(module_so)]))
    symbols = [line.split()[-1] for line in run(["nm", "-D", "--undefined-only", str(module_so)])
               .splitlines() if line.split()[0] == "U" and "@" not in line
               and not re.match(r"_?Py", line.split()[-1])]
    source = lib_dir / "stub.c"
    source.write_text("".join(f"void* {name}(void) {{ return 0; }}\n" for name in symbols))
    for library in needed:
        run(["gcc", "-shared", "-fPIC", "-o", str(lib_dir / library), f"-Wl,-soname,{library}",
             str(source)])


def snapshot(spec: str) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        wheel = download(spec, root)
        site, libs = root / "site", root / "lib"
        site.mkdir()
        libs.mkdir()
        zipfile.ZipFile(wheel).extractall(site)
        module_so = next(site.glob("*/tensorrt*.so"))
        stub_libraries(module_so, libs)
        env = {**os.environ, "LD_LIBRARY_PATH": str(libs), "PYTHONPATH": str(site)}
        output = run([sys.executable, "-c", INTROSPECT, module_so.parent.name], env=env)
        api: dict[str, object] = json.loads(output)
        api["__wheel__"] = wheel.name
        return api


def main(specs: list[str]) -> None:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for spec in specs or DEFAULT_WHEELS:
        api = snapshot(spec)
        path = OUT_DIR / f"{api['__version__']}.json"
        path.write_text(json.dumps(api, indent=1, sort_keys=True) + "\n")
        classes, enums = api["__classes__"], api["__enums__"]
        print(f"{spec}: {path} ({len(classes)} classes, {len(enums)} enums)")  # type: ignore[arg-type]


if __name__ == "__main__":
    main(sys.argv[1:])
