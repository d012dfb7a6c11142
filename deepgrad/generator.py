"""``deepgrad.Generator``: torch.Generator's interface over a NumPy ``Generator`` (PCG64).

A Generator is an independent random stream: hand it to ``random_split``, a ``DataLoader``, a sampler or
``deepgrad.randn(..., generator=g)`` and those draws stop depending on the global seed, so a split stays
the same when the model code around it changes. It *is* a ``numpy.random.Generator`` (a subclass), so
everything in deepgrad that takes a NumPy generator takes it too.

The numbers differ from torch's (torch uses a Mersenne Twister / Philox; deepgrad PCG64): same seed,
same numbers within deepgrad, not across the two libraries. ``get_state()`` returns the stream's state as
a uint8 tensor (48 bytes) that ``set_state`` takes back, and that saves in a checkpoint like any tensor.

>>> g = Generator().manual_seed(42)
>>> a = deepgrad.randn(3, generator=g)
>>> _ = g.manual_seed(42)
>>> bool((deepgrad.randn(3, generator=g) == a).all())
True
"""

from __future__ import annotations

import numpy as np

from .backend import Device
from .tensor import Tensor

DEFAULT_SEED = 67280421310721  # torch.Generator()'s initial seed: a fresh generator is deterministic
_MASK64 = (1 << 64) - 1
_STATE_BYTES = 48  # PCG64: 128-bit state, 128-bit increment, has_uint32 and the buffered uint32 (8 bytes each)


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise RuntimeError(f"manual_seed expected a long, but got {type(seed).__name__}")
    seed = int(seed)
    if not -(1 << 63) <= seed <= _MASK64:
        raise ValueError(f"Overflow when unpacking long long: seed {seed} is outside [-2**63, 2**64 - 1]")
    return seed & _MASK64  # negative seeds wrap, as torch's


class Generator(np.random.Generator):
    """A seedable random stream (``torch.Generator``): ``manual_seed``, ``seed``, ``initial_seed``,
    ``get_state`` / ``set_state``, ``clone_state`` and ``device``."""

    def __init__(self, device="cpu"):
        super().__init__(np.random.PCG64(DEFAULT_SEED))
        self._initial_seed = DEFAULT_SEED
        self._device = Device(device)

    @property
    def device(self) -> Device:
        """The device the stream is for (draws are made on the host and moved, as deepgrad's CPU ops)."""
        return self._device

    def manual_seed(self, seed: int) -> Generator:
        """Restart the stream from ``seed``; returns the generator (so ``Generator().manual_seed(0)`` chains)."""
        seed = _check_seed(seed)
        self.bit_generator.state = np.random.PCG64(seed).state
        self._initial_seed = seed
        return self

    def seed(self) -> int:
        """Seed from the operating system's entropy and return the seed used."""
        seed = int(np.random.SeedSequence().entropy) & _MASK64
        self.manual_seed(seed)
        return seed

    def initial_seed(self) -> int:
        """The seed the stream was last started from."""
        return self._initial_seed

    def get_state(self) -> Tensor:
        """The stream's exact position as a uint8 tensor of 48 bytes (a snapshot: later draws do not change it)."""
        s = self.bit_generator.state
        words = [s["state"]["state"], s["state"]["inc"]]
        raw = b"".join(w.to_bytes(16, "little") for w in words)
        raw += int(s["has_uint32"]).to_bytes(8, "little") + int(s["uinteger"]).to_bytes(8, "little")
        return Tensor(np.frombuffer(raw, dtype=np.uint8).copy())

    def set_state(self, new_state) -> Generator:
        """Return to a position taken by :meth:`get_state` (a uint8 tensor or array of 48 bytes)."""
        if isinstance(new_state, Tensor):
            new_state = new_state.numpy()
        raw = np.asarray(new_state)
        if raw.dtype != np.uint8 or raw.shape != (_STATE_BYTES,):
            raise RuntimeError(f"Generator.set_state: expected a uint8 tensor of {_STATE_BYTES} bytes from "
                               f"get_state(), got dtype {raw.dtype} and shape {tuple(raw.shape)}")
        b = raw.tobytes()
        self.bit_generator.state = {
            "bit_generator": "PCG64",
            "state": {"state": int.from_bytes(b[0:16], "little"), "inc": int.from_bytes(b[16:32], "little")},
            "has_uint32": int.from_bytes(b[32:40], "little"),
            "uinteger": int.from_bytes(b[40:48], "little"),
        }
        return self

    def clone_state(self) -> Generator:
        """A new generator at the same position (and with the same initial seed) as this one."""
        clone = Generator(self._device)
        clone.bit_generator.state = self.bit_generator.state
        clone._initial_seed = self._initial_seed
        return clone

    def __reduce__(self):  # copy / deepcopy / pickle keep the class, seed and position
        return (_rebuild, (str(self._device), self._initial_seed, self.bit_generator.state))

    def __repr__(self) -> str:
        return f"<deepgrad.Generator device={self._device} initial_seed={self._initial_seed}>"

    __str__ = __repr__


def _rebuild(device: str, initial_seed: int, state: dict) -> Generator:
    g = Generator(device)
    g.bit_generator.state = state
    g._initial_seed = initial_seed
    return g
