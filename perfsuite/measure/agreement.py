"""Output comparison (Polygraphy's elementwise rule) and drift metrics. Pure numpy.

An element fails only where its absolute error exceeds `atol` AND its relative error exceeds
`rtol` (relative to the reference). A comparison of nothing is an error, never a pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from perfsuite.errors import InternalError


@dataclass(frozen=True)
class Tolerance:
    atol: float
    rtol: float


@dataclass(frozen=True)
class OutputDiff:
    """Result of comparing one output with its reference; truthy when it passed."""

    passed: bool
    tolerance: Tolerance
    elements: int
    failing: int
    max_abs: float
    max_rel: float
    mean_abs: float
    p99_abs: float
    required_atol: float  # smallest atol that passes with the configured rtol
    required_rtol: float  # smallest rtol that passes with the configured atol

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        verdict = "passed" if self.passed else f"FAILED on {self.failing} of {self.elements}"
        return (
            f"{verdict} (atol={self.tolerance.atol:g}, rtol={self.tolerance.rtol:g}): "
            f"max abs error {self.max_abs:.3e}, max rel error {self.max_rel:.3e}, "
            f"mean abs {self.mean_abs:.3e}, p99 abs {self.p99_abs:.3e}; smallest passing "
            f"tolerance: atol={self.required_atol:.3e} (with rtol={self.tolerance.rtol:g}) "
            f"or rtol={self.required_rtol:.3e} (with atol={self.tolerance.atol:g})"
        )


@dataclass(frozen=True)
class Drift:
    """How far a session's outputs are from the reference's, over a whole input set."""

    rel_l2: float
    max_abs: float
    cosine: float
    top1_agreement: float

    def as_dict(self) -> dict[str, float]:
        return {
            "rel_l2": self.rel_l2,
            "max_abs": self.max_abs,
            "cosine": self.cosine,
            "top1_agreement": self.top1_agreement,
        }


def _as_pair(actual: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(actual, dtype=np.float64)
    b = np.asarray(reference, dtype=np.float64)
    if a.shape != b.shape:
        raise InternalError(f"compared outputs differ in shape: {a.shape} vs {b.shape}")
    if a.size == 0:
        raise InternalError("compared outputs are empty: nothing was compared")
    return a, b


def compare(actual: np.ndarray, reference: np.ndarray, tolerance: Tolerance) -> OutputDiff:
    a, b = _as_pair(actual, reference)
    abs_err = np.abs(a - b)
    scale = np.abs(b)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel_err = np.where(scale > 0, abs_err / scale, np.where(abs_err > 0, np.inf, 0.0))
    nan = np.isnan(a) | np.isnan(b)
    failing = nan | ((abs_err > tolerance.atol) & (rel_err > tolerance.rtol))
    beyond_rtol = abs_err[(rel_err > tolerance.rtol) | nan]
    beyond_atol = rel_err[(abs_err > tolerance.atol) | nan]
    return OutputDiff(
        passed=not bool(failing.any()),
        tolerance=tolerance,
        elements=int(a.size),
        failing=int(failing.sum()),
        max_abs=float(np.max(abs_err)),
        max_rel=float(np.max(rel_err)),
        mean_abs=float(np.mean(abs_err)),
        p99_abs=float(np.percentile(abs_err, 99)),
        required_atol=float(np.max(beyond_rtol)) if beyond_rtol.size else 0.0,
        required_rtol=float(np.max(beyond_atol)) if beyond_atol.size else 0.0,
    )


def drift(actual: np.ndarray, reference: np.ndarray) -> Drift:
    """Drift over a batch of outputs shaped (inputs, ..., classes).

    rel_l2 = ||a - b|| / ||b|| (0 when both are zero, inf when only b is); cosine of the flattened
    outputs (1 when both are zero); top-1 agreement = share of rows whose argmax over the last
    axis matches.
    """
    a, b = _as_pair(actual, reference)
    diff_norm = float(np.linalg.norm(a - b))
    ref_norm = float(np.linalg.norm(b))
    act_norm = float(np.linalg.norm(a))
    if ref_norm > 0:
        rel_l2 = diff_norm / ref_norm
    else:
        rel_l2 = 0.0 if diff_norm == 0 else float("inf")
    if act_norm > 0 and ref_norm > 0:
        cosine = float(np.dot(a.ravel(), b.ravel()) / (act_norm * ref_norm))
    else:
        cosine = 1.0 if act_norm == ref_norm else 0.0
    rows_a = a.reshape(-1, a.shape[-1]) if a.ndim else a.reshape(1, 1)
    rows_b = b.reshape(-1, b.shape[-1]) if b.ndim else b.reshape(1, 1)
    top1 = float(np.mean(np.argmax(rows_a, axis=-1) == np.argmax(rows_b, axis=-1)))
    return Drift(
        rel_l2=rel_l2,
        max_abs=float(np.max(np.abs(a - b))),
        cosine=min(1.0, max(-1.0, cosine)),
        top1_agreement=top1,
    )
