"""Variable-length batches for recurrent layers (torch.nn.utils.rnn's names and semantics).

A :class:`PackedSequence` stores the steps of a batch of sequences time-major with the padding
removed: ``data`` (sum of lengths, *), and ``batch_sizes[t]`` = how many sequences are still
running at step t (sequences sorted by decreasing length). RNN, LSTM and GRU accept it and
never compute a padded step, so each sequence's final state is its state at its own last step.

>>> x = deepgrad.randn(7, 3, 5)                                   # (T, B, features), padded
>>> packed = pack_padded_sequence(x, [7, 4, 2], enforce_sorted=False)
>>> out, h_n = nn.GRU(5, 8)(packed)
>>> padded, lengths = pad_packed_sequence(out)                    # zeros after each length
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from ..autograd import Function
from ..backend import array_module
from ..creation import as_tensor
from ..functional import pad, stack
from ..tensor import Tensor


def invert_permutation(permutation: Tensor | None) -> Tensor | None:
    """The permutation that undoes ``permutation`` (None stays None)."""
    if permutation is None:
        return None
    perm = np.asarray(permutation.tolist() if isinstance(permutation, Tensor) else permutation, dtype=np.int64)
    out = np.empty_like(perm)
    out[perm] = np.arange(perm.size)
    return as_tensor(out)


class PackedSequence(namedtuple("PackedSequence", ["data", "batch_sizes", "sorted_indices", "unsorted_indices"])):
    """Packed steps of a batch of variable-length sequences; build it with
    :func:`pack_padded_sequence` or :func:`pack_sequence`, not by hand."""

    __slots__ = ()

    def __new__(cls, data: Tensor, batch_sizes: Tensor | None = None, sorted_indices: Tensor | None = None,
                unsorted_indices: Tensor | None = None):
        if unsorted_indices is None:
            unsorted_indices = invert_permutation(sorted_indices)
        if batch_sizes is not None and not isinstance(batch_sizes, Tensor):
            batch_sizes = as_tensor(np.asarray(batch_sizes, dtype=np.int64))
        return super().__new__(cls, data, batch_sizes, sorted_indices, unsorted_indices)

    def to(self, *args, **kwargs) -> PackedSequence:
        """Move/cast ``data`` (batch sizes and index permutations stay integer on the CPU)."""
        return type(self)(self.data.to(*args, **kwargs), self.batch_sizes, self.sorted_indices, self.unsorted_indices)

    def cpu(self) -> PackedSequence:
        return self.to("cpu")

    def cuda(self, device: int | None = None) -> PackedSequence:
        return type(self)(self.data.cuda(device), self.batch_sizes, self.sorted_indices, self.unsorted_indices)

    def float(self) -> PackedSequence:
        return self.to(np.float32)

    def double(self) -> PackedSequence:
        return self.to(np.float64)

    @property
    def is_cuda(self) -> bool:
        return self.data.is_cuda

    def is_pinned(self) -> bool:
        return False


# ----------------------------------------------------------------------------- row moves
class _PackRows(Function):
    """Padded (T, B, *) -> packed (N, *) rows; the backward puts the grads back, zeros elsewhere."""

    saved = ()

    def forward(self, x, index):
        self.shape, self.index = x.shape, index
        return x.reshape((-1,) + x.shape[2:])[index]

    def backward(self, g):
        out = array_module(g).zeros((self.shape[0] * self.shape[1],) + self.shape[2:], g.dtype)
        out[self.index] = g
        return out.reshape(self.shape)


class _PadRows(Function):
    """Packed (N, *) -> padded (T, B, *) filled with ``value``; the backward gathers the rows."""

    saved = ()

    def forward(self, data, index, shape, value):
        self.index = index
        out = array_module(data).full((shape[0] * shape[1],) + data.shape[1:], value, data.dtype)
        out[index] = data
        return out.reshape(tuple(shape) + data.shape[1:])

    def backward(self, g):
        return g.reshape((-1,) + g.shape[2:])[self.index]


def _lengths_array(lengths) -> np.ndarray:
    if isinstance(lengths, Tensor):
        lengths = lengths.tolist()
    return np.asarray(lengths, dtype=np.int64).reshape(-1)


def _row_index(sorted_lengths: np.ndarray, batch: int) -> np.ndarray:
    """Flat (t * batch + b) rows of the steps that exist, in packed (time-major) order."""
    steps = int(sorted_lengths[0]) if sorted_lengths.size else 0
    mask = np.arange(steps)[:, None] < sorted_lengths[None, :]
    return np.flatnonzero(mask), mask.sum(axis=1)


def pack_padded_sequence(input: Tensor, lengths, batch_first: bool = False,
                         enforce_sorted: bool = True) -> PackedSequence:
    """Pack a padded batch (T, B, *) [or (B, T, *) with ``batch_first``] given each length.

    With ``enforce_sorted`` (default) the lengths must decrease; otherwise the batch is sorted
    here and the permutation is stored so outputs come back in the original order.
    """
    lens = _lengths_array(lengths)
    batch_dim = 0 if batch_first else 1
    if input.ndim < 2 or lens.size != input.shape[batch_dim]:
        raise ValueError(
            f"pack_padded_sequence: got {lens.size} lengths for an input of shape {tuple(input.shape)} "
            f"(batch dim {batch_dim})"
        )
    if lens.size and lens.min() <= 0:
        raise RuntimeError(
            "pack_padded_sequence: length of all samples has to be greater than 0, but found an element "
            f"in 'lengths' that is <= 0: {lens.tolist()}"
        )
    if lens.size and lens.max() > input.shape[1 - batch_dim]:
        raise RuntimeError(
            f"pack_padded_sequence: a length of {int(lens.max())} exceeds the {input.shape[1 - batch_dim]} "
            f"steps of the input of shape {tuple(input.shape)}"
        )
    if enforce_sorted:
        if np.any(lens[:-1] < lens[1:]):
            raise RuntimeError(
                f"pack_padded_sequence: `lengths` array must be sorted in decreasing order when `enforce_sorted` "
                f"is True, got {lens.tolist()}. You can pass `enforce_sorted=False` to pack_padded_sequence "
                f"and/or pack_sequence to sidestep this requirement."
            )
        sorted_indices = None
    else:
        order = np.argsort(-lens, kind="stable")
        lens = lens[order]
        sorted_indices = as_tensor(order)
        idx = order if array_module(input.array) is np else _to_device(order, input)
        input = input[idx] if batch_first else input[:, idx]
    if batch_first:
        input = input.transpose(0, 1)
    index, batch_sizes = _row_index(lens, input.shape[1])
    data = _PackRows.apply(input, index=_to_device(index, input))
    return PackedSequence(data, as_tensor(batch_sizes.astype(np.int64)), sorted_indices, None)


def _to_device(index: np.ndarray, like: Tensor):
    xp = array_module(like.array)
    return index if xp is np else xp.asarray(index)


def pad_packed_sequence(sequence: PackedSequence, batch_first: bool = False, padding_value: float = 0.0,
                        total_length: int | None = None) -> tuple[Tensor, Tensor]:
    """Inverse of :func:`pack_padded_sequence`: ``(padded, lengths)`` in the original batch order."""
    data, batch_sizes, _, unsorted_indices = sequence
    sizes = _lengths_array(batch_sizes)
    steps, batch = sizes.size, int(sizes[0])
    if total_length is not None:
        if total_length < steps:
            raise ValueError(
                f"pad_packed_sequence: expected total_length to be at least the length of the longest sequence "
                f"in input, but got total_length={total_length} and max sequence length being {steps}"
            )
        steps = total_length
    lengths = (sizes[None, :] > np.arange(batch)[:, None]).sum(axis=1)  # sorted, decreasing
    index, _ = _row_index(lengths, batch)
    padded = _PadRows.apply(data, index=_to_device(index, data), shape=(steps, batch), value=padding_value)
    if batch_first:
        padded = padded.transpose(0, 1)
    if unsorted_indices is not None:
        order = _lengths_array(unsorted_indices)
        padded = padded[_to_device(order, data)] if batch_first else padded[:, _to_device(order, data)]
        lengths = lengths[order]
    return padded, as_tensor(lengths.astype(np.int64))


def pad_sequence(sequences, batch_first: bool = False, padding_value: float = 0.0,
                 padding_side: str = "right") -> Tensor:
    """Stack tensors of shape (L_i, *) into (max L, B, *) [(B, max L, *) with ``batch_first``],
    padding with ``padding_value`` on the ``padding_side`` ('right' or 'left')."""
    sequences = list(sequences)
    if not sequences:
        raise RuntimeError("pad_sequence: received an empty list of sequences")
    if padding_side not in ("right", "left"):
        raise ValueError(f"pad_sequence: padding_side must be 'left' or 'right', got {padding_side!r}")
    trailing = sequences[0].shape[1:]
    for s in sequences:
        if s.ndim < 1 or s.shape[1:] != trailing:
            raise RuntimeError(
                f"pad_sequence: all sequences must share trailing dims, got {tuple(sequences[0].shape)} "
                f"and {tuple(s.shape)}"
            )
    longest = max(s.shape[0] for s in sequences)
    padded = []
    for s in sequences:
        extra = longest - s.shape[0]
        if extra:
            side = (0, extra) if padding_side == "right" else (extra, 0)
            s = pad(s, (0, 0) * (s.ndim - 1) + side, value=padding_value)
        padded.append(s)
    return stack(padded, dim=0 if batch_first else 1)


def pack_sequence(sequences, enforce_sorted: bool = True) -> PackedSequence:
    """Pack a list of (L_i, *) tensors (lengths decreasing unless ``enforce_sorted=False``)."""
    sequences = list(sequences)
    return pack_padded_sequence(pad_sequence(sequences), [s.shape[0] for s in sequences],
                                enforce_sorted=enforce_sorted)


def unpad_sequence(padded_sequences: Tensor, lengths, batch_first: bool = False) -> list[Tensor]:
    """Split a padded batch back into a list of (L_i, *) tensors."""
    lens = _lengths_array(lengths)
    if not batch_first:
        padded_sequences = padded_sequences.transpose(0, 1)
    return [padded_sequences[i, :int(n)] for i, n in enumerate(lens)]


def unpack_sequence(packed_sequences: PackedSequence) -> list[Tensor]:
    """The list of (L_i, *) tensors held by a PackedSequence, in the original order."""
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)
