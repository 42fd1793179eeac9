"""Size accounting: what a model weighs in memory and on disk."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def parameter_bytes(model: torch.nn.Module) -> int:
    """Bytes of the trainable parameters (buffers such as BatchNorm statistics excluded)."""
    return sum(p.numel() * p.element_size() for p in model.parameters())


def state_dict_bytes(model: torch.nn.Module) -> int:
    """Bytes of every tensor in the state_dict: parameters plus buffers, at their dtypes."""
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())


def parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
