"""``deepgrad.nn.utils.rnn``: torch's import path for the packed-sequence helpers, which live in
:mod:`deepgrad.nn.rnn_utils`.

>>> from deepgrad.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
"""

from ..rnn_utils import (  # noqa: F401
    PackedSequence,
    invert_permutation,
    pack_padded_sequence,
    pack_sequence,
    pad_packed_sequence,
    pad_sequence,
    unpack_sequence,
    unpad_sequence,
)

__all__ = [
    "PackedSequence", "invert_permutation", "pack_padded_sequence", "pack_sequence", "pad_packed_sequence",
    "pad_sequence", "unpack_sequence", "unpad_sequence",
]
