"""Global switches that torch programs set: inference mode, deterministic algorithms, matmul precision.

On deepgrad they mean what they can mean:

- ``inference_mode`` (in ``autograd.grad_mode``, per thread like grad mode) records no graph; deepgrad has no
  separate "inference tensors", so tensors made inside are ordinary tensors that do not require grad.
- deepgrad's CPU ops are deterministic (NumPy, a fixed summation order, no atomics), so
  ``use_deterministic_algorithms(True)`` changes nothing and is only remembered for the query.
- float32 matrix products always run in float32 (no TF32 or bfloat16 shortcuts); the precision setting is
  remembered and otherwise ignored.
- ``compile`` hands the model (or function) back unchanged: deepgrad runs eagerly.

>>> import deepgrad as dg
>>> with dg.inference_mode():
...     y = dg.ones(2, requires_grad=True) * 2
>>> y.requires_grad
False
"""

from __future__ import annotations

from .autograd.grad_mode import inference_mode, is_inference_mode_enabled  # noqa: F401  (re-exported)

_deterministic = False
_warn_only = False
_matmul_precision = "highest"


def use_deterministic_algorithms(mode: bool, *, warn_only: bool = False) -> None:
    """Accepted for torch programs: deepgrad's CPU ops are already deterministic (see the module docstring)."""
    global _deterministic, _warn_only
    if not isinstance(mode, bool):
        raise RuntimeError(f"use_deterministic_algorithms expects a bool, but got {type(mode).__name__}")
    _deterministic, _warn_only = mode, bool(warn_only)


def are_deterministic_algorithms_enabled() -> bool:
    """What ``use_deterministic_algorithms`` was last given (deepgrad's ops are deterministic either way)."""
    return _deterministic


def is_deterministic_algorithms_warn_only_enabled() -> bool:
    return _deterministic and _warn_only


def set_float32_matmul_precision(precision: str) -> None:
    """Accepted for torch programs: deepgrad's float32 products are always full float32."""
    global _matmul_precision
    if precision not in ("highest", "high", "medium"):
        raise RuntimeError(f"Invalid precision {precision}: expected 'highest', 'high' or 'medium'")
    _matmul_precision = precision


def get_float32_matmul_precision() -> str:
    return _matmul_precision


def compile(model=None, **options):  # noqa: A001  (torch's name)
    """torch.compile, accepted: deepgrad runs eagerly, so the model or function comes back unchanged (also as
    a decorator, with or without options)."""
    if model is None:
        return lambda fn: fn
    return model
