"""Write tests/data/trt_api/<version>.json: the public Python API of real TensorRT bindings.

TensorRT's native libraries cannot be installed from PyPI (the `tensorrt-*-libs` packages are
stubs that download from NVIDIA), but the bindings wheels are real. The bindings link a handful
of C entry points from libnvinfer & co; stub libraries that define them (returning NULL) let the
module import, so `dir()` shows each version's exact classes, enum members and methods. The 8.5
`tensorrt` wheels bundle the real libraries, which need cuBLAS and cuDNN: those stay unextracted.

    python tools/trt_api_snapshot.py                     # the four default versions
    python tools/trt_api_snapshot.py tensorrt-cu12-bindings==10.8.0.43
    python3.10 tools/trt_api_snapshot.py tensorrt==8.5.2.2      # 8.5 wheels stop at cp310
    TRT_SNAPSHOT_OUT=/tmp/trt python tools/trt_api_snapshot.py   # write elsewhere

Each snapshot holds:
    __version__, __wheel__     the version and the wheel's file name
    __module__                 public module-level names that are not classes
    __enums__                  {Enum: [MEMBER, ...]} (module-level enums)
    __classes__                {Class: [member, ...]} (every other module-level class)
    __enum_values__            {Enum: {MEMBER: int}}, nested enums as "Class.Enum"
    __enum_kinds__             {Enum: {"int_subclass": bool, "has_int": bool}}
    __signatures__             {Class: {member: {"kind", "doc"[, "settable"]}}} for __init__ and
                               public members: kind is method, property, static or attribute; doc
                               holds the pybind11 signature line(s), one per overload (an
                               attribute's doc describes its value)
    __module_bindings__        {name: description} for every public module-level name
    __datatype_itemsize__      {MEMBER: DataType.MEMBER.itemsize}

Signatures name the module `tensorrt`, as an installed TensorRT does, not `tensorrt_bindings`.
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
    "tensorrt-bindings==8.6.1",  # JetPack 5.1.x era API (8.5 ships cp36-cp310 wheels only)
    "tensorrt-cu12-bindings==10.3.0",  # JetPack 6.1 / 6.2
    "tensorrt-cu12-bindings==10.16.1.11",  # late 10.x
    "tensorrt-cu12-bindings==11.4.0.106",  # strongly typed only
)
OUT_DIR = Path(os.environ.get("TRT_SNAPSHOT_OUT")
               or Path(__file__).resolve().parents[1] / "tests" / "data" / "trt_api")

INTROSPECT = r"""
import importlib, inspect, json, re, sys
trt = importlib.import_module(sys.argv[1])


def is_enum(obj):
    return inspect.isclass(obj) and hasattr(obj, "__members__")


def signature(name, function):
    # pybind11 docstrings open with "name(args) -> ret", overloads with "N. name(args) -> ret".
    pattern = rf"(\d+\. )?{re.escape(name)}\("
    lines = [line for line in (function.__doc__ or "").splitlines() if re.match(pattern, line)]
    if len(lines) > 1 and lines[0].endswith("(*args, **kwargs)"):
        lines = lines[1:]
    if not lines:
        try:
            lines = [f"{name}{inspect.signature(function)}"]
        except (TypeError, ValueError):
            return ""
    return re.sub(rf"\b{re.escape(trt.__name__)}\.tensorrt\.", "tensorrt.", "\n".join(lines))


def describe(name, obj):
    if inspect.ismodule(obj):
        return "module"
    if inspect.isclass(obj):
        return "enum" if is_enum(obj) else "class"
    if is_enum(type(obj)):
        return f"{type(obj).__qualname__}.{obj.name}"
    if callable(obj):
        return f"function: {signature(name, obj)}"
    return type(obj).__name__


def member(cls, name):
    static = inspect.getattr_static(cls, name)
    if isinstance(static, property):
        return {"kind": "property", "doc": signature("", static.fget), "settable": static.fset is not None}
    if isinstance(static, (staticmethod, classmethod)):
        return {"kind": "static", "doc": signature(name, getattr(cls, name))}
    if callable(static) and not inspect.isclass(static):
        return {"kind": "method", "doc": signature(name, getattr(cls, name))}
    return {"kind": "attribute", "doc": describe(name, getattr(cls, name))}


def record_enum(api, key, cls):
    api["__enum_values__"][key] = {m: int(v) for m, v in cls.__members__.items()}
    api["__enum_kinds__"][key] = {"int_subclass": issubclass(cls, int), "has_int": hasattr(cls, "__int__")}


api = {"__version__": trt.__version__, "__module__": [], "__enums__": {}, "__classes__": {},
       "__enum_values__": {}, "__enum_kinds__": {}, "__signatures__": {}, "__module_bindings__": {}}
for name in sorted(n for n in dir(trt) if not n.startswith("_")):
    obj = getattr(trt, name)
    api["__module_bindings__"][name] = describe(name, obj)
    if inspect.isclass(obj):
        members = sorted(m for m in dir(obj) if not m.startswith("_"))
        if is_enum(obj):
            api["__enums__"][name] = sorted(obj.__members__)
            record_enum(api, name, obj)
        else:
            api["__classes__"][name] = members
            api["__signatures__"][name] = {m: member(obj, m) for m in ["__init__", *members]}
            for m in members:
                if is_enum(getattr(obj, m)):
                    record_enum(api, f"{name}.{m}", getattr(obj, m))
    else:
        api["__module__"].append(name)
api["__datatype_itemsize__"] = {m: getattr(v, "itemsize", None) for m, v in trt.DataType.__members__.items()}
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
        archive = zipfile.ZipFile(wheel)
        archive.extractall(site, [n for n in archive.namelist() if not Path(n).name.startswith("lib")])
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
