"""The A/B wire: how the pytest process and a side's worker talk. Requests and replies are
length-prefixed pickles on two pipes (paths pickled by this module's name, so workers on other
Python versions load them); PROTOCOL is checked at start. Standard library only: the worker's
interpreter may have nothing else."""

from __future__ import annotations

import copyreg
import io
import os
import pathlib
import pickle
import struct
from typing import Any

PROTOCOL = 1
BOOT = ("import sys; sys.path[:1] = [sys.argv[1]]; "
        "from perfsuite.run.ab.worker import main; main(sys.argv[2:])")
_HEADER = struct.Struct(">I")


def _path(text: str) -> pathlib.Path:
    return pathlib.Path(text)


def _pure_path(text: str) -> pathlib.PurePath:
    return pathlib.PurePath(text)


def _reduce_path(path: pathlib.PurePath) -> tuple[Any, tuple[str]]:
    """A path pickled by this module's name, not its class's: Python 3.13 names the class
    pathlib._local.PosixPath, which a worker on 3.12 or older cannot load."""
    return (_path if isinstance(path, pathlib.Path) else _pure_path), (str(path),)


_PATHS: dict[type, Any] = {kind: _reduce_path for kind in (pathlib.PosixPath, pathlib.WindowsPath,
                                          pathlib.PurePosixPath, pathlib.PureWindowsPath)}


def dumps(message: Any) -> bytes:
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=4)
    pickler.dispatch_table = {**copyreg.dispatch_table, **_PATHS}
    pickler.dump(message)
    return buffer.getvalue()


def send(fd: int, message: Any) -> None:
    data = dumps(message)
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view):]


def receive(fd: int) -> Any:
    """The next message, or EOFError when the other end closed."""
    size = _HEADER.unpack(_read_exactly(fd, _HEADER.size))[0]
    return pickle.loads(_read_exactly(fd, size))


def _read_exactly(fd: int, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise EOFError("the other end closed the pipe")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)
