"""``deepgrad.nn.functional``: the functional form of every layer, loss and activation
(torch.nn.functional's names and signatures).

>>> import deepgrad.nn.functional as F
>>> F.conv2d(deepgrad.randn(1, 3, 8, 8), deepgrad.randn(4, 3, 3, 3), padding=1).shape
(1, 4, 8, 8)
"""

from ..functional import (  # noqa: F401
    elu,
    gelu,
    leaky_relu,
    linear,
    log_softmax,
    pad,
    relu,
    sigmoid,
    softmax,
    softplus,
    tanh,
)
from ..functional import flatten as _flatten
from ..ops.attention import scaled_dot_product_attention  # noqa: F401
from ..ops.conv import conv1d, conv2d, conv_transpose1d, conv_transpose2d  # noqa: F401
from ..ops.dropout import (  # noqa: F401
    alpha_dropout,
    dropout,
    dropout1d,
    dropout2d,
    dropout3d,
    feature_alpha_dropout,
)
from ..ops.embedding import embedding  # noqa: F401
from ..ops.loss import (  # noqa: F401
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    huber_loss,
    kl_div,
    l1_loss,
    mse_loss,
    nll_loss,
    smooth_l1_loss,
)
from ..ops.multihead_attention import multi_head_attention_forward  # noqa: F401
from ..ops.norm import batch_norm, group_norm, instance_norm, layer_norm  # noqa: F401
from ..ops.pool import (  # noqa: F401
    adaptive_avg_pool1d,
    adaptive_avg_pool2d,
    adaptive_max_pool1d,
    adaptive_max_pool2d,
    avg_pool1d,
    avg_pool2d,
    max_pool1d,
    max_pool2d,
    max_unpool2d,
    sum_pool1d,
    sum_pool2d,
)

flatten = _flatten


def one_hot(tensor, num_classes: int = -1):
    """Integer class indices -> int64 one-hot vectors along a new last dim."""
    from ..backend import array_module, int64
    from ..tensor import Tensor

    idx = tensor.array
    if idx.dtype.kind not in "iu":
        raise RuntimeError(f"one_hot: expected an integer tensor of class indices, got {tensor.dtype}")
    if num_classes < 0:
        num_classes = int(idx.max()) + 1 if idx.size else 0
    if idx.size and (idx.min() < 0 or idx.max() >= num_classes):
        raise RuntimeError(f"one_hot: class values must be in [0, {num_classes}), got [{idx.min()}, {idx.max()}]")
    xp = array_module(idx)
    return Tensor._make((idx[..., None] == xp.arange(num_classes)).astype(int64), None)
