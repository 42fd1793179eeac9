"""pytest plugin: `PERFSUITE_EMULATE_TRT=<version> pytest -p fakes.emulated_tensorrt_plugin ...`
(with tests/ on PYTHONPATH) runs the suite against the TensorRT emulator of that version. Used
to exercise the TensorRT runners' CUDA paths on a GPU machine that has no TensorRT."""

from __future__ import annotations

import os
import sys

from fakes.tensorrt_emulator import emulated_tensorrt

sys.modules["tensorrt"] = emulated_tensorrt(os.environ.get("PERFSUITE_EMULATE_TRT", "10.3.0"))
