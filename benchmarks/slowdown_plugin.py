"""pytest plugin for the gate-quality benchmark (never loaded by the suite itself).

PERFSUITE_SLOW_OPS=k makes every model do k extra passes of real work inside its forward:
`h = tanh(h)` over its own output (PERFSUITE_SLOW_SIZE=0, the default: one small kernel a pass
on a GPU) or over a tensor of PERFSUITE_SLOW_SIZE elements derived from the input (for CPUs,
where a small pass costs nothing), folded into the output at 1e-6 scale. The work is part of
the model, so it is in the ONNX file, in the CUDA graph and between the CUDA events: what a
regression looks like, unlike a host-side spin after the call. k = 0 (the default) leaves the
model untouched (the A/A runs). The achieved slowdown is measured from the runs themselves
(gate_quality.py evaluate). `--perf-ab` builds its models in worker processes that never load
this plugin: ab_quality.py slows the working tree's factory instead.
"""

from __future__ import annotations

import os

import perfsuite.run.workshop

SLOW_OPS = int(os.environ.get("PERFSUITE_SLOW_OPS", "0"))
SLOW_SIZE = int(os.environ.get("PERFSUITE_SLOW_SIZE", "0"))


def slowed(inner, passes: int, size: int):
    import torch

    class SlowedModel(torch.nn.Module):
        """`inner(x)` plus `passes` elementwise passes over `size` values that depend on x."""

        def __init__(self) -> None:
            super().__init__()
            self.inner = inner
            self.register_buffer("scale", torch.linspace(0.5, 1.5, max(size, 1)))

        def forward(self, x):
            y = self.inner(x)
            h = x.mean() * self.scale if size else y
            for _ in range(passes):
                h = torch.tanh(h)
            return torch.add(y, h.mean() if size else h, alpha=1e-6)

    return SlowedModel().eval()


def pytest_configure(config):
    if SLOW_OPS <= 0:
        return
    original = perfsuite.run.workshop.build_model

    def build(spec, *args, **kwargs):
        return slowed(original(spec, *args, **kwargs), SLOW_OPS, SLOW_SIZE)

    perfsuite.run.workshop.build_model = build
