"""Models under test: their spec, how they are built, and deterministic, realistic weights.

A randomly initialised torchvision classifier has logits near 1e-10 (its BatchNorm layers keep the
identity statistics, so activations shrink layer after layer); fp16 then underflows to zero and
every drift metric reads 100%. Without a weights file perfsuite therefore (1) seeds the
initialisation, (2) calibrates BatchNorm statistics on synthetic inputs from the model's input
domain, and (3) scales the last Linear layer so logits have a standard deviation of
`LOGIT_STD`, about what trained ImageNet classifiers produce. The result is deterministic for a
given seed, torch version and machine; its digest keys the ONNX cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from perfsuite.errors import BackendUnavailable, ModelError
from perfsuite.lazy import require

if TYPE_CHECKING:
    import torch

# ImageNet-normalised pixels, (p - mean) / std with p in [0, 1], lie within about this range.
IMAGE_INPUT_RANGE = (-2.1, 2.6)
LOGIT_STD = 3.0
CALIBRATION_BATCHES = 4
CALIBRATION_BATCH_SIZE = 8


@dataclass(frozen=True)
class ModelSpec:
    """What to build: a torchvision model by name or a `module:callable` factory."""

    name: str
    input_shape: tuple[int, ...]
    torchvision: str | None = None
    factory: str | None = None
    weights: Path | None = None
    seed: int = 0
    input_range: tuple[float, float] = IMAGE_INPUT_RANGE
    search_path: tuple[Path, ...] = ()  # folders a factory's module may live in (config, rootdir)

    @property
    def source(self) -> str:
        return f"torchvision:{self.torchvision}" if self.torchvision else f"factory:{self.factory}"


def check_torchvision_names(specs: Sequence[ModelSpec]) -> None:
    """Every torchvision model named in `specs` exists: a ModelError naming the first that does
    not (with the valid names), or BackendUnavailable's words where torchvision is missing."""
    wanted = [spec for spec in specs if spec.torchvision]
    if not wanted:
        return
    try:
        known = set(torchvision_classifiers())
    except BackendUnavailable as exc:
        raise BackendUnavailable(f"perfsuite: torchvision models are configured but {exc}") \
            from exc
    for spec in wanted:
        if spec.torchvision not in known:
            raise ModelError(
                f"perfsuite configuration: model {spec.name!r} | unknown torchvision model "
                f"{spec.torchvision!r}. Valid names: {', '.join(sorted(known))}."
            )


def torchvision_classifiers() -> list[str]:
    """Names of torchvision's classification models (imports torchvision)."""
    models = require("torchvision.models")
    return sorted(models.list_models(module=models))


def import_folders(roots: Sequence[Path]) -> tuple[Path, ...]:
    """The folders a factory's code imports from: each root, and its src/ where present."""
    found: dict[Path, None] = {}
    for root in roots:
        for folder in (root, root / "src"):
            if folder == root or folder.is_dir():
                found.setdefault(folder)
    return tuple(found)


def build_model(spec: ModelSpec,
                realistic: Callable[[torch.nn.Module, ModelSpec], None] | None = None
                ) -> torch.nn.Module:
    """The fp32 CPU model in eval mode, with the spec's weights file or realistic seeded weights
    (made by `realistic`, `make_weights_realistic` unless given: the run's passes a cached one)."""
    torch = require("torch")
    torch.manual_seed(spec.seed)
    model = _construct(spec)
    if not isinstance(model, torch.nn.Module):
        raise ModelError(
            f"model {spec.name!r} | {spec.source} returned {type(model).__name__}, "
            "expected a torch.nn.Module.\nRemedy: make the factory return the model instance."
        )
    model = model.float().eval()
    if not any(True for _ in model.parameters()) and not any(True for _ in model.buffers()):
        raise ModelError(f"model {spec.name!r} | {spec.source} returned a model with no "
                         "parameters or buffers: it has no weights to export, size or check.\n"
                         "Remedy: return the model with its layers (an nn.Module whose layers "
                         "hold weights).")
    check_one_tensor_in_and_out(model, spec)
    if spec.weights is not None:
        load_weights(model, spec.weights, spec.name)
    else:
        (realistic or make_weights_realistic)(model, spec)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model


SUPPORTED_SIGNATURE = (
    "perfsuite runs models with one float32 input tensor and one output tensor; several "
    "inputs or outputs and integer inputs (token ids) are not supported yet"
)


def check_one_tensor_in_and_out(model: torch.nn.Module, spec: ModelSpec) -> None:
    """One forward pass on a float32 input of the spec's shape must return one tensor; anything
    else is refused with what was found and what perfsuite supports."""
    torch = require("torch")
    low, high = spec.input_range
    probe = torch.full(spec.input_shape, (low + high) / 2, dtype=torch.float32)
    try:
        with torch.no_grad():
            output = model(probe)
    except Exception as exc:  # whatever the model raises: its message says what it expected
        raise ModelError(
            f"model {spec.name!r} | a forward pass on one float32 input of shape "
            f"{tuple(spec.input_shape)} failed: {type(exc).__name__}: {str(exc).splitlines()[0]}"
            f"\n{SUPPORTED_SIGNATURE}.\nRemedy: check input_shape, or wrap the model in a module "
            "whose forward takes that one float tensor."
        ) from exc
    if not isinstance(output, torch.Tensor) or not output.is_floating_point():
        found = (f"a {output.dtype} tensor" if isinstance(output, torch.Tensor)
                 else f"{type(output).__name__}" + (f" of {len(output)}" if
                                                    isinstance(output, (tuple, list, dict)) else ""))
        raise ModelError(
            f"model {spec.name!r} | forward returns {found}; {SUPPORTED_SIGNATURE}.\n"
            "Remedy: wrap the model so that forward returns the one float tensor to compare "
            "(the logits, say)."
        )


def _construct(spec: ModelSpec) -> Any:
    if spec.torchvision is not None:
        models = require("torchvision.models")
        try:
            return models.get_model(spec.torchvision, weights=None)
        except ValueError as exc:
            raise ModelError(
                f"model {spec.name!r} | torchvision has no model {spec.torchvision!r} ({exc})."
            ) from exc
    return call_factory(spec, resolve_factory(spec))


class _ExitCalled(BaseException):
    """os._exit called by a factory, turned into an exception while the factory runs."""


def call_factory(spec: ModelSpec, factory: Callable[[], Any]) -> Any:
    """The factory's model, under a guard: an error, sys.exit() or os._exit() in it becomes a
    ModelError (a run must not end green and silent inside a factory), and so does a change to
    torch's global state (default dtype, CPU threads, grad mode) that would skew every other
    benchmark of the run; that state is put back first."""
    torch = require("torch")
    state = _torch_state(torch)
    real_exit = os._exit

    def refuse_exit(code: int) -> None:
        raise _ExitCalled(code)

    os._exit = refuse_exit  # type: ignore[assignment]
    try:
        model = factory()
    except SystemExit as exc:
        raise ModelError(f"model {spec.name!r} | factory {spec.factory!r} called sys.exit"
                         f"({exc.code!r}): it would have ended the run.\nRemedy: return the "
                         "model instead; raise an exception to report a problem.") from None
    except _ExitCalled as exc:
        raise ModelError(f"model {spec.name!r} | factory {spec.factory!r} called os._exit"
                         f"({exc.args[0]!r}): it would have ended the run with no summary.\n"
                         "Remedy: return the model instead; raise an exception to report a "
                         "problem.") from None
    except Exception as exc:  # the user's code: any error, reported as theirs
        raise ModelError(
            f"model {spec.name!r} | factory {spec.factory!r} raised {type(exc).__name__}: {exc}"
        ) from exc
    finally:
        os._exit = real_exit
        changed = _restore_torch_state(torch, state)
    if changed:
        raise ModelError(f"model {spec.name!r} | factory {spec.factory!r} changed torch's global "
                         f"state: {'; '.join(changed)} (put back). It would change every "
                         "benchmark of the run, not just this model.\nRemedy: convert the model "
                         "itself (model.double(), ...) instead of setting a global default.")
    return model


def _torch_state(torch: Any) -> dict[str, Any]:
    return {"default dtype": torch.get_default_dtype(), "CPU threads": torch.get_num_threads(),
            "grad mode": torch.is_grad_enabled()}


def _restore_torch_state(torch: Any, before: dict[str, Any]) -> list[str]:
    """Put torch's global state back; what the factory had changed, as 'name: old -> new'."""
    after = _torch_state(torch)
    changed = [f"{name}: {before[name]} -> {after[name]}" for name in before
               if after[name] != before[name]]
    torch.set_default_dtype(before["default dtype"])
    if after["CPU threads"] != before["CPU threads"]:
        torch.set_num_threads(before["CPU threads"])
    torch.set_grad_enabled(before["grad mode"])
    return changed


def resolve_factory(spec: ModelSpec) -> Callable[[], Any]:
    module_name, _, attr = (spec.factory or "").partition(":")
    if not module_name or not attr:
        raise ModelError(
            f"model {spec.name!r} | factory {spec.factory!r} is not of the form 'module:callable'."
        )
    try:
        with _importable_from(spec.search_path):
            target: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError, SyntaxError) as exc:
        where = ", ".join(map(str, spec.search_path)) or "sys.path"
        raise ModelError(
            f"model {spec.name!r} | factory {spec.factory!r} cannot be resolved: {exc}.\n"
            f"Remedy: put the module in {where} (or install it) and check the callable exists."
        ) from exc
    if not callable(target):
        raise ModelError(f"model {spec.name!r} | factory {spec.factory!r} is not callable.")
    return target  # type: ignore[no-any-return]


@contextlib.contextmanager
def _importable_from(folders: tuple[Path, ...]) -> Iterator[None]:
    """Modules in `folders` import during the block, as from the rootdir under plain `pytest`
    (whose console script, unlike `python -m pytest`, puts no folder of the user's on sys.path).
    An A/B run's sides import in their own worker processes (perfsuite.run.ab.worker)."""
    present = {os.path.realpath(entry) for entry in sys.path if entry}
    # a folder already on the path under another spelling (an A/B worker's equal-length one)
    # keeps that spelling's place: putting it first again would change the files' names
    added = [str(f) for f in folders if os.path.realpath(f) not in present]
    sys.path[:0] = added
    try:
        yield
    finally:
        for folder in added:
            if folder in sys.path:
                sys.path.remove(folder)


def load_weights(model: torch.nn.Module, path: Path, name: str) -> None:
    """Load a state_dict file safely (`weights_only=True`); every key must match."""
    torch = require("torch")
    if not path.is_file():
        raise ModelError(
            f"model {name!r} | weights file {str(path)!r} does not exist.\n"
            "Remedy: fix the `weights` path (relative paths start at the rootdir) or remove it "
            "to use deterministic synthetic weights."
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several unrelated types for unreadable files
        raise ModelError(
            f"model {name!r} | weights file {str(path)!r} cannot be read as a state_dict: {exc}"
        ) from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ModelError(
            f"model {name!r} | weights file {str(path)!r} holds {type(state).__name__}, "
            "expected a state_dict (a dict of tensors).\n"
            "Remedy: save with torch.save(model.state_dict(), path)."
        )
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # tensors of the wrong shape
        raise ModelError(
            f"model {name!r} | weights file {str(path)!r} does not fit the model: "
            f"{str(exc).strip().splitlines()[-1].strip()}"
        ) from exc
    if result.missing_keys or result.unexpected_keys:
        raise ModelError(
            f"model {name!r} | weights file {str(path)!r} does not match the model: "
            f"missing keys {_preview(result.missing_keys)}, "
            f"unexpected keys {_preview(result.unexpected_keys)}."
        )


def _preview(keys: list[str], limit: int = 5) -> str:
    shown = ", ".join(keys[:limit]) or "none"
    return f"[{shown}{', ...' if len(keys) > limit else ''}] ({len(keys)})"


def make_weights_realistic(model: torch.nn.Module, spec: ModelSpec) -> None:
    """Calibrate BatchNorm statistics and scale the classifier head (see the module docstring)."""
    torch = require("torch")
    generator = torch.Generator().manual_seed(spec.seed + 1)
    batch_shape = (CALIBRATION_BATCH_SIZE, *spec.input_shape[1:])
    low, high = spec.input_range

    def synthetic_batch() -> Any:
        return torch.rand(batch_shape, generator=generator) * (high - low) + low

    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    with torch.no_grad():
        if norms:
            momenta = [m.momentum for m in norms]
            for norm in norms:
                norm.reset_running_stats()
                norm.momentum = None  # cumulative average over all calibration batches
            model.train()
            for _ in range(CALIBRATION_BATCHES):
                model(synthetic_batch())
            for norm, momentum in zip(norms, momenta):  # equal lengths: momenta is read from norms
                norm.momentum = momentum
            model.eval()
        heads = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
        if heads:
            logits = model(synthetic_batch())
            spread = float(logits.float().std())
            if spread > 0:
                heads[-1].weight.mul_(LOGIT_STD / spread)
                if heads[-1].bias is not None:
                    heads[-1].bias.mul_(LOGIT_STD / spread)


def weights_digest(model: torch.nn.Module) -> str:
    """sha256 over the state_dict's names, dtypes, shapes and bytes: keys the ONNX cache."""
    digest = hashlib.sha256()
    for key, tensor in sorted(model.state_dict().items()):
        data = tensor.detach().cpu().contiguous()
        digest.update(f"{key}|{data.dtype}|{tuple(data.shape)}|".encode())
        digest.update(data.view(-1).view(dtype=_byte_dtype()).numpy().tobytes())
    return digest.hexdigest()


def code_digest(spec: ModelSpec) -> str:
    """What the model's code is, beside its weights (both key the ONNX cache): for a factory,
    sha256 over every loaded module file under the factory's folders (its own module, helpers,
    a library under src/; not pytest's test files and conftest.py), so a change to a forward()
    misses the cache; for a torchvision model, torchvision's version."""
    if spec.factory is None:
        return f"torchvision {require('torchvision').__version__}"
    roots = [folder.resolve() for folder in spec.search_path]
    files: dict[str, Path] = {}
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if not path or not path.endswith(".py"):
            continue
        resolved = Path(path).resolve()
        if _is_test_file(resolved.name):
            continue
        for root in roots:
            if root == resolved.parent or root in resolved.parents:
                files[str(resolved.relative_to(root))] = resolved
                break
    digest = hashlib.sha256()
    for name, path in sorted(files.items()):
        try:
            digest.update(f"{name}|".encode() + path.read_bytes())
        except OSError:
            digest.update(f"{name}|unreadable".encode())
    return digest.hexdigest()


def _is_test_file(name: str) -> bool:
    return name == "conftest.py" or name.startswith("test_") or name.endswith("_test.py")


def _byte_dtype() -> Any:
    return require("torch").uint8
