"""The Optimizer base: parameter groups, per-parameter state, ``zero_grad`` and a torch-shaped state_dict.

Subclasses implement ``step``. Updates work on the raw arrays (``p.array``, ``p.grad.array``) with
in-place ufuncs, so no graph is ever recorded and NumPy and CuPy share one code path. State
buffers are raw arrays and state scalars are Python numbers, so a state_dict is plain
arrays + numbers (safetensors + JSON friendly).
"""

from __future__ import annotations

import abc
import copy
import functools
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable
from itertools import chain
from typing import Any

import numpy as np

from ..autograd import bump_all, enable_grad
from ..backend import array_module, device_of, move_to
from ..tensor import Tensor


class _RequiredParameter:
    """Marks a default that every parameter group must set itself (torch.optim.optimizer.required)."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()


def _is_array(value) -> bool:
    """A NumPy or CuPy array (or NumPy scalar), without importing CuPy."""
    return isinstance(value, (np.ndarray, np.generic)) or (
        hasattr(value, "__cuda_array_interface__") and hasattr(value, "dtype")
    )


class Optimizer(abc.ABC):
    """Base class of all optimizers (``torch.optim.Optimizer`` semantics).

    ``params`` is an iterable of tensors, of ``(name, tensor)`` pairs, or of dicts that each hold
    ``"params"`` plus per-group options; ``defaults`` fills the options a group leaves out.

    >>> w = deepgrad.randn(3, requires_grad=True)
    >>> opt = deepgrad.optim.SGD([{"params": [w], "lr": 0.1}], momentum=0.9)
    >>> group = opt.param_groups[0]
    >>> group["lr"], group["momentum"], group["nesterov"]   # set by the group, by the call, by SGD's defaults
    (0.1, 0.9, False)
    """

    def __init__(self, params: Iterable, defaults: dict[str, Any]):
        self.defaults = defaults
        if isinstance(params, Tensor):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of Tensors or dicts, "
                f"but got {type(params).__name__}"
            )
        self.state: defaultdict = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        groups = list(params)
        if len(groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # ------------------------------------------------------------------ groups
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters (with its own options) to optimize, e.g. a newly unfrozen layer."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError(
                "optimizer parameters need to be organized in ordered collections, but the ordering of "
                "tensors in sets will change between runs. Please use a list instead."
            )
        else:
            params = list(params)
        names = [p[0] for p in params if isinstance(p, tuple)]
        params = [p[1] if isinstance(p, tuple) else p for p in params]
        if names:
            if len(names) != len(params):
                raise ValueError("all optimizer params should be with/without names. Some param names are missing")
            param_group["param_names"] = names
        param_group["params"] = params
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but one of the params is {type(p).__name__}")
            if not (p.grad_fn is None or p._retains_grad):
                raise ValueError("can't optimize a non-leaf Tensor")
        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError(f"parameter group didn't specify a value of required optimization parameter {name}")
            param_group.setdefault(name, default)
        ids = [id(p) for p in params]
        if len(ids) != len(set(ids)):
            warnings.warn(
                "optimizer contains a parameter group with duplicate parameters; in future, this will cause an error",
                stacklevel=3,
            )
        # Sets of ids, not of tensors: Tensor.__eq__ is elementwise.
        existing: set[int] = set()
        for group in self.param_groups:
            existing.update(id(p) for p in group["params"])
            if ("param_names" in param_group) != ("param_names" in group):
                which = "with names" if "param_names" in param_group else "without names"
                raise ValueError(
                    "all optimizer param groups should be with/without names. "
                    f"cannot add param group {which} to the optimizer"
                )
        if not existing.isdisjoint(ids):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(param_group)

    # ------------------------------------------------------------------ stepping
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of all parameters: drop them (default) or fill them with zeros."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    if set_to_none:
                        p.grad = None
                    else:
                        p.grad.grad_fn = None
                        p.grad.requires_grad = False
                        p.grad.array.fill(0)

    @abc.abstractmethod
    def step(self, closure: Callable[[], Any] | None = None):
        """Perform one update; ``closure`` re-evaluates the model and returns the loss."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        step = cls.__dict__.get("step")
        if step is not None and not getattr(step, "_marks_called", False):
            # Record that step() ran, so an LR scheduler can warn when it is stepped first (as torch does),
            # and count the update of every parameter it wrote (on raw arrays) as an in-place op: a graph
            # that saved a parameter before the step then refuses to backward, as in torch.
            @functools.wraps(step)
            def marked_step(self, *args, **kwargs):
                self._opt_called = True
                loss = step(self, *args, **kwargs)
                bump_all([p for group in self.param_groups for p in group["params"] if p.grad is not None])
                return loss

            marked_step._marks_called = True
            cls.step = marked_step

    def _evaluate(self, closure: Callable[[], Any] | None):
        """Run the closure with grad recording on (updates themselves touch raw arrays only)."""
        if closure is None:
            return None
        with enable_grad():
            return closure()

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """``{"state": {index: {...}}, "param_groups": [{..., "params": [index, ...]}]}`` as in torch.

        Parameters are referred to by their position across all groups; state buffers are the
        live arrays (save or copy them before stepping again).
        """
        mapping: dict[int, int] = {}
        groups, start = [], 0
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            for i, p in enumerate(group["params"], start):
                mapping.setdefault(id(p), i)
            packed["params"] = [mapping[id(p)] for p in group["params"]]
            start += len(packed["params"])
            groups.append(packed)
        state = {
            (mapping[id(k)] if isinstance(k, Tensor) else k): (dict(v) if isinstance(v, dict) else v)
            for k, v in self.state.items()
        }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` (arrays are copied onto each parameter's device and dtype).

        State keys may be strings of integers (as after a JSON round trip).
        """
        groups = self.param_groups
        saved_groups = copy.deepcopy(state_dict["param_groups"])
        if len(groups) != len(saved_groups):
            raise ValueError(
                f"loaded state dict has a different number of parameter groups ({len(saved_groups)}) "
                f"than the optimizer ({len(groups)})"
            )
        for i, (g, s) in enumerate(zip(groups, saved_groups)):
            if len(g["params"]) != len(s["params"]):
                raise ValueError(
                    f"loaded state dict contains a parameter group (#{i}, {len(s['params'])} params) "
                    f"that doesn't match the size of optimizer's group ({len(g['params'])} params)"
                )
        id_map = dict(
            zip(
                chain.from_iterable(g["params"] for g in saved_groups),
                chain.from_iterable(g["params"] for g in groups),
            )
        )
        state: defaultdict = defaultdict(dict)
        for key, value in state_dict["state"].items():
            if isinstance(key, str) and key.isdigit():
                key = int(key)
            if key in id_map:
                param = id_map[key]
                state[param] = {k: _cast_state(param, k, v) for k, v in value.items()}
            else:
                state[key] = value
        new_groups = []
        for group, saved in zip(groups, saved_groups):
            saved["params"] = group["params"]
            if "param_names" in group and "param_names" not in saved:
                saved["param_names"] = group["param_names"]
            for k, v in saved.items():  # JSON turns tuples (betas) into lists; give them back their type
                if isinstance(v, list) and isinstance(group.get(k), tuple):
                    saved[k] = tuple(v)
            new_groups.append(saved)
        self.state = state
        self.param_groups = new_groups

    def __getstate__(self) -> dict[str, Any]:
        return {"defaults": self.defaults, "state": self.state, "param_groups": self.param_groups}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines.extend(f"    {k}: {group[k]}" for k in sorted(group) if k != "params")
        return "\n".join(lines) + "\n)"


def _cast_state(param: Tensor, key, value):
    """A loaded state value, made independent of the dict it came from and placed like ``param``."""
    if isinstance(value, Tensor):
        value = value.array
    if isinstance(value, dict):
        return {k: _cast_state(param, k, v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_cast_state(param, None, v) for v in value)
    if not _is_array(value):
        return value
    if key == "step":  # a counter, kept as a Python number (torch keeps a 0-d float tensor)
        number = value.item()
        return int(number) if float(number).is_integer() else number
    target = param.array
    value = move_to(value, device_of(target))
    xp = array_module(target)
    dtype = target.dtype if value.dtype.kind == "f" else value.dtype
    return xp.array(value, dtype=dtype, copy=True)


def _grad_with_decay(p: Tensor, maximize: bool, weight_decay: float):
    """The gradient an update uses: negated for ``maximize``, plus ``weight_decay * p`` (L2).

    Returns ``(array, owned)``; ``owned`` says the array is a fresh temporary the caller may overwrite.
    """
    g = p.grad.array
    if weight_decay:
        out = p.array * weight_decay
        if maximize:
            out -= g
        else:
            out += g
        return out, True
    if maximize:
        return -g, True
    return g, False

