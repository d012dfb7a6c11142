"""Grad mode: switch graph recording off (``no_grad``: inference, hand-written updates) and on
(``enable_grad``, ``set_grad_enabled``), as context managers, decorators or plain calls.
"""

from __future__ import annotations

import contextlib

from . import core


class _GradMode(contextlib.ContextDecorator):
    """Base of the grad-mode switches: each use as a decorator gets a fresh context, so a
    recursive decorated function restores the mode its outermost caller had."""

    mode = False

    def _recreate_cm(self):
        return type(self)()

    def __enter__(self):
        self.prev = core.state.grad_enabled
        core.state.grad_enabled = self.mode
        return self

    def __exit__(self, *exc):
        core.state.grad_enabled = self.prev
        return False


class set_grad_enabled(_GradMode):
    """Turn graph recording on or off, as a function, context manager or decorator.

    >>> with set_grad_enabled(False):
    ...     y = x * 2          # y.requires_grad is False
    """

    def __init__(self, mode: bool):
        self.prev = core.state.grad_enabled
        self.mode = bool(mode)
        core.state.grad_enabled = self.mode  # takes effect as a plain call too, like torch

    def __call__(self, func):
        # Used as ``@set_grad_enabled(False)``: the call above must not outlive decoration.
        core.state.grad_enabled = self.prev
        return super().__call__(func)

    def _recreate_cm(self):
        return set_grad_enabled(self.mode)

    def __enter__(self):  # ``prev`` was taken in __init__, before the mode changed
        core.state.grad_enabled = self.mode
        return self


class _NoParamGradMode(_GradMode):
    """A switch usable as ``@no_grad()`` and, like torch, as a bare ``@no_grad``."""

    def __new__(cls, orig_func=None):
        if orig_func is None:
            return super().__new__(cls)
        return cls()(orig_func)


class no_grad(_NoParamGradMode):
    """Context manager / decorator that disables graph recording (inference, updates)."""

    mode = False


class enable_grad(_NoParamGradMode):
    """Context manager / decorator that re-enables graph recording inside ``no_grad``."""

    mode = True


def is_inference_mode_enabled() -> bool:
    """True inside ``inference_mode()`` (in this thread), like ``torch.is_inference_mode_enabled``."""
    return core.state.inference


class inference_mode(_GradMode):  # noqa: N801  (torch's name)
    """Context manager / decorator for forward passes that will never be differentiated, like
    ``torch.inference_mode``: no graph is recorded, so no op keeps what a backward would need.
    ``inference_mode(False)`` leaves inference mode and switches graph recording on, as torch does.

    Unlike torch, a tensor made inside is an ordinary tensor (torch marks "inference tensors" and refuses
    to save them for a later backward; deepgrad has no such mark): it behaves as one made under ``no_grad``.

    >>> import deepgrad as dg
    >>> w = dg.ones(3, requires_grad=True)
    >>> with dg.inference_mode():
    ...     y = w * 2
    >>> y.requires_grad, dg.is_inference_mode_enabled()
    (False, False)
    """

    def __new__(cls, mode=True):
        if isinstance(mode, bool):
            return super().__new__(cls)
        return cls()(mode)  # used bare, as ``@inference_mode``: ``mode`` is the decorated function

    def __init__(self, mode: bool = True):
        if isinstance(mode, bool):  # the bare-decorator path of __new__ already built the context
            self.on = mode

    def _recreate_cm(self):
        return inference_mode(self.on)

    def __enter__(self):
        self.prev = core.state.grad_enabled, core.state.inference
        core.state.grad_enabled, core.state.inference = not self.on, self.on
        return self

    def __exit__(self, *exc):
        core.state.grad_enabled, core.state.inference = self.prev
        return False
