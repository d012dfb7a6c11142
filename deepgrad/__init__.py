"""deepgrad: a deep-learning system from first principles, on NumPy (CPU) and CuPy (GPU).

>>> import deepgrad as dg
>>> w = dg.randn(3, 1, requires_grad=True)
>>> loss = ((dg.randn(8, 3) @ w - 1.0) ** 2).mean()
>>> loss.backward()          # w.grad now holds d(loss)/dw
"""

__version__ = "0.1.0"

# Import order matters: tensor first (it pulls in autograd and the ops once Tensor exists).
from .tensor import Tensor  # noqa: I001
from . import autograd, backend, backends, cuda, functional, linalg
from ._tensor_str import set_printoptions
from .generator import Generator
from .io import load, save
from .kernels.parallel import get_num_threads, set_num_threads
from .autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .modes import (
    are_deterministic_algorithms_enabled,
    compile,
    get_float32_matmul_precision,
    inference_mode,
    is_deterministic_algorithms_warn_only_enabled,
    is_inference_mode_enabled,
    set_float32_matmul_precision,
    use_deterministic_algorithms,
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
    bernoulli,
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
    logspace,
    manual_seed,
    multinomial,
    normal,
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
    scalar_tensor,
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


def device(spec="cpu", index=None) -> Device:
    """A :class:`Device`: ``device("cuda:0")``."""
    return Device(spec, index)

Size = tuple  # a tensor's shape is a tuple; torch.Size([2, 3]) == (2, 3) there too

# The layers above the engine, reachable as deepgrad.nn / deepgrad.optim like torch.nn / torch.optim, and
# deepgrad.jit.trace (record a forward once, replay it on raw arrays).
from . import jit, nn, optim  # noqa: E402

# torch also has these nn functions at the top level, with the same signatures as torch.nn.functional's
from .nn.functional import (  # noqa: E402
    adaptive_avg_pool1d,
    avg_pool1d,
    celu,
    channel_shuffle,
    conv1d,
    conv2d,
    conv_transpose1d,
    conv_transpose2d,
    cosine_similarity,
    group_norm,
    hardshrink,
    layer_norm,
    max_pool1d,
    max_pool2d,
    pairwise_distance,
    pixel_shuffle,
    pixel_unshuffle,
    prelu,
    rms_norm,
    selu,
    threshold,
)
