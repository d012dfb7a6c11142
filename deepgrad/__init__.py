"""deepgrad: a deep-learning system from first principles, on NumPy (CPU) and CuPy (GPU).

>>> import deepgrad as dg
>>> w = dg.randn(3, 1, requires_grad=True)
>>> loss = ((dg.randn(8, 3) @ w - 1.0) ** 2).mean()
>>> loss.backward()          # w.grad now holds d(loss)/dw
"""

__version__ = "0.1.0"

# Import order matters: tensor first (it pulls in autograd and the ops once Tensor exists).
from .tensor import Tensor  # noqa: I001
from . import autograd, backend, functional
from .generator import Generator
from .io import load, save
from .kernels.parallel import get_num_threads, set_num_threads
from .autograd import (
    enable_grad,
    inference_mode,
    is_grad_enabled,
    is_inference_mode_enabled,
    no_grad,
    set_grad_enabled,
)
from .backend import (
    Device,
    bool_,
    cuda_is_available,
    float16,
    float32,
    float64,
    get_default_dtype,
    int8,
    int16,
    int32,
    int64,
    set_default_dtype,
    uint8,
)
from .creation import (
    arange,
    as_tensor,
    default_generator,
    empty,
    empty_like,
    eye,
    from_dlpack,
    from_numpy,
    full,
    full_like,
    get_rng_state,
    is_tensor,
    linspace,
    manual_seed,
    numel,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randint_like,
    randn,
    randn_like,
    randperm,
    set_rng_state,
    tensor,
    zeros,
    zeros_like,
)
from .functional import *  # noqa: F403  (the ops: deepgrad.exp, deepgrad.cat, ... as torch.*)

float = float32  # noqa: A001  (torch-style aliases: deepgrad.float, deepgrad.long, ...)
double = float64
half = float16
long = int64
int = int32  # noqa: A001
bool = bool_  # noqa: A001
short = int16


class cuda:  # noqa: N801  (mirrors torch.cuda.is_available())
    """GPU queries: ``deepgrad.cuda.is_available()``."""

    is_available = staticmethod(cuda_is_available)


def device(spec="cpu", index=None) -> Device:
    """A :class:`Device`: ``device("cuda:0")``."""
    return Device(spec, index)

# The layers above the engine, reachable as deepgrad.nn / deepgrad.optim like torch.nn / torch.optim.
from . import nn, optim  # noqa: E402
from . import jit  # noqa: E402  (deepgrad.jit.trace: record a forward once, replay it on raw arrays)
