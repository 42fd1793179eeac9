from __future__ import annotations

import torch
from torch import nn

from perfsuite.measure.sizes import parameter_bytes, parameter_count, state_dict_bytes


def test_linear_and_batchnorm_bytes():
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    # Linear: 6 weights + 2 biases; BatchNorm: 2 weights + 2 biases -> 12 fp32 parameters
    assert parameter_count(model) == 12
    assert parameter_bytes(model) == 48
    # buffers: running_mean (2 fp32) + running_var (2 fp32) + num_batches_tracked (1 int64)
    assert state_dict_bytes(model) == 48 + 16 + 8
    assert parameter_bytes(model.to(torch.float16)) == 24
