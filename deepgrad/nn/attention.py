"""Multi-head attention (torch.nn.MultiheadAttention): the same parameters, names, shapes, defaults and
``state_dict`` keys, so weights move between torch and deepgrad both ways.

>>> mha = MultiheadAttention(embed_dim=16, num_heads=4, batch_first=True)
>>> x = deepgrad.randn(2, 10, 16)                   # (N, L, E)
>>> out, weights = mha(x, x, x)                     # out (2, 10, 16), weights averaged over heads (2, 10, 10)
>>> sorted(mha.state_dict())
['in_proj_bias', 'in_proj_weight', 'out_proj.bias', 'out_proj.weight']
"""

from __future__ import annotations

from ..creation import empty
from ..ops.multihead_attention import multi_head_attention
from ..tensor import Tensor
from . import init
from .linear import Linear
from .module import Module, Parameter


class NonDynamicallyQuantizableLinear(Linear):
    """The output projection of :class:`MultiheadAttention`: a plain Linear under torch's class name (torch uses
    the name to keep its quantisation passes off this layer; here it only keeps ``repr`` identical)."""


class MultiheadAttention(Module):
    """Attention over ``num_heads`` subspaces of ``embed_dim``, as torch.nn.MultiheadAttention.

    Parameters: ``in_proj_weight`` (3E, E) and ``in_proj_bias`` (3E), or ``q_proj_weight`` (E, E),
    ``k_proj_weight`` (E, kdim), ``v_proj_weight`` (E, vdim) when ``kdim``/``vdim`` differ from E;
    ``out_proj`` (E -> E); ``bias_k`` / ``bias_v`` (1, 1, E) with ``add_bias_kv``. Initialised as torch:
    Xavier-uniform input projections, zero biases, Xavier-normal ``bias_k``/``bias_v``.

    ``forward(query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
    average_attn_weights=True, is_causal=False) -> (attn_output, attn_weights or None)``. Inputs are
    (L, N, E), or (N, L, E) with ``batch_first``, or unbatched (L, E). A bool True in ``key_padding_mask``
    (N, S) or ``attn_mask`` (L, S) / (N * num_heads, L, S) blocks that key; float masks are added to the scores.
    ``is_causal`` is a hint that ``attn_mask`` is the causal mask (which must still be given, as in torch).

    >>> mha = MultiheadAttention(8, 2)
    >>> out, w = mha(deepgrad.randn(5, 3, 8), deepgrad.randn(7, 3, 8), deepgrad.randn(7, 3, 8))
    >>> out.shape, w.shape
    ((5, 3, 8), (3, 5, 7))
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False, kdim: int | None = None,
                 vdim: int | None = None, batch_first: bool = False, device=None, dtype=None):
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"embed_dim and num_heads must be greater than 0, got embed_dim={embed_dim} and "
                             f"num_heads={num_heads} instead")
        super().__init__()
        self.embed_dim = embed_dim
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads, self.dropout, self.batch_first = num_heads, dropout, batch_first
        self.head_dim = embed_dim // num_heads
        if self.head_dim * num_heads != embed_dim:
            raise AssertionError(f"embed_dim must be divisible by num_heads (got embed_dim={embed_dim}, "
                                 f"num_heads={num_heads})")
        kw = {"device": device, "dtype": dtype}
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(empty(3 * embed_dim, embed_dim, **kw))
            for name in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                self.register_parameter(name, None)
        else:
            self.q_proj_weight = Parameter(empty(embed_dim, embed_dim, **kw))
            self.k_proj_weight = Parameter(empty(embed_dim, self.kdim, **kw))
            self.v_proj_weight = Parameter(empty(embed_dim, self.vdim, **kw))
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = Parameter(empty(3 * embed_dim, **kw))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = NonDynamicallyQuantizableLinear(embed_dim, embed_dim, bias=bias, **kw)
        if add_bias_kv:
            self.bias_k = Parameter(empty(1, 1, embed_dim, **kw))
            self.bias_v = Parameter(empty(1, 1, embed_dim, **kw))
        else:
            self.bias_k = self.bias_v = None
        self.add_zero_attn = add_zero_attn
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            for w in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                init.xavier_uniform_(w)
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)
        for b in (self.bias_k, self.bias_v):
            if b is not None:
                init.xavier_normal_(b)

    def forward(self, query: Tensor, key: Tensor, value: Tensor, key_padding_mask: Tensor | None = None,
                need_weights: bool = True, attn_mask: Tensor | None = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple:
        return multi_head_attention(
            query, key, value, self.num_heads, self.in_proj_weight, self.in_proj_bias, self.bias_k, self.bias_v,
            self.add_zero_attn, self.dropout, self.out_proj.weight, self.out_proj.bias, training=self.training,
            key_padding_mask=key_padding_mask, need_weights=need_weights, attn_mask=attn_mask,
            q_proj_weight=self.q_proj_weight, k_proj_weight=self.k_proj_weight, v_proj_weight=self.v_proj_weight,
            average_attn_weights=average_attn_weights, is_causal=is_causal, batch_first=self.batch_first,
            embed_dim_to_check=self.embed_dim)
