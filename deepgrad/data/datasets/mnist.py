"""MNIST and Fashion-MNIST from IDX files already on disk (deepgrad never downloads anything).

Put torchvision's files (plain or ``.gz``) in ``root`` or in ``root/MNIST/raw`` (``root/FashionMNIST/raw``):
``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``.
"""

from __future__ import annotations

import gzip
import os
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..dataset import Dataset, TensorDataset

# IDX type codes -> big-endian NumPy dtypes (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT").
_IDX_TYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
              0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_IDX_CODES = {dt.newbyteorder("="): code for code, dt in _IDX_TYPES.items()}


def _open(path: Path, mode: str):
    return gzip.open(path, mode) if path.suffix == ".gz" else open(path, mode)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (``.gz`` is decompressed) into a native-endian NumPy array."""
    path = Path(path)
    with _open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise ValueError(f"read_idx: {path} is not an IDX file (bad magic number {raw[:4].hex() or 'empty'})")
    dtype, ndim = _IDX_TYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"read_idx: {path} is truncated: header promises {ndim} dimensions")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(f"read_idx: {path} has {len(raw)} bytes but its header (shape {shape}, {dtype.name}) "
                         f"implies {expected}: the file is truncated or corrupt")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write ``array`` as an IDX file (gzipped when ``path`` ends in ``.gz``)."""
    array = np.asarray(array)
    code = _IDX_CODES.get(array.dtype.newbyteorder("="))
    if code is None:
        raise TypeError(f"write_idx: IDX stores uint8, int8, int16, int32, float32 or float64, got {array.dtype}")
    if array.ndim > 255:
        raise ValueError("write_idx: too many dimensions for IDX")
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with _open(Path(path), "wb") as f:
        f.write(header + array.astype(_IDX_TYPES[code], copy=False).tobytes())


class MNIST(Dataset):
    """MNIST digits: ``ds[i]`` is ``(image, label)``, the image a ``(28, 28)`` uint8 array (as torchvision's PIL image).

    Add ``transform=transforms.ToArray()`` for ``(1, 28, 28)`` float32 in [0, 1], or use
    :meth:`as_tensor_dataset` for a fast in-memory TensorDataset. ``download=True`` is refused:
    deepgrad never downloads.
    """

    files = {True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
    classes = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five", "6 - six", "7 - seven",
               "8 - eight", "9 - nine"]

    def __init__(self, root: str | os.PathLike, train: bool = True, transform: Callable | None = None,
                 target_transform: Callable | None = None, download: bool = False):
        name = type(self).__name__
        if download:
            raise RuntimeError(f"{name}: deepgrad never downloads data. Fetch the IDX files yourself and put them in "
                               f"{Path(root) / name / 'raw'} (or directly in {root}).")
        self.root, self.train = Path(root), train
        self.transform, self.target_transform = transform, target_transform
        images_file, labels_file = self.files[bool(train)]
        self.data = read_idx(self._find(images_file))
        self.targets = read_idx(self._find(labels_file)).astype(np.int64)
        if self.data.ndim != 3:
            raise ValueError(f"{name}: images file must hold a (N, H, W) array, got shape {self.data.shape}")
        if self.targets.ndim != 1 or len(self.targets) != len(self.data):
            raise ValueError(f"{name}: {len(self.data)} images but labels of shape {self.targets.shape} "
                             f"in {self.root}; "
                             f"the images and labels files do not belong together")
        if len(self.targets) and (self.targets.min() < 0 or self.targets.max() >= len(self.classes)):
            raise ValueError(f"{name}: labels must lie in [0, {len(self.classes) - 1}], got "
                             f"[{self.targets.min()}, {self.targets.max()}]")

    def _find(self, filename: str) -> Path:
        raw = self.root / type(self).__name__ / "raw"
        candidates = [d / (filename + ext) for d in (self.root, raw) for ext in ("", ".gz")]
        for c in candidates:
            if c.is_file():
                return c
        raise FileNotFoundError(
            f"{type(self).__name__}: {filename} (or {filename}.gz) not found. Looked for: "
            f"{', '.join(str(c) for c in candidates)}. Put the {'training' if self.train else 'test'} IDX files "
            f"in {self.root} or {raw}; deepgrad never downloads data.")

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int):
        img, target = self.data[index], int(self.targets[index])
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target

    def as_tensor_dataset(self, normalize: bool = False) -> TensorDataset:
        """All images as one ``(N, 1, H, W)`` float32 TensorDataset in [0, 1] (standardised when ``normalize``)."""
        x = (self.data.astype(np.float32) / np.float32(255.0))[:, None]
        if normalize:
            x = (x - x.mean()) / x.std()
        return TensorDataset(x, self.targets)


class FashionMNIST(MNIST):
    """Fashion-MNIST (Zalando clothing images) in MNIST's IDX layout, under ``root`` or ``root/FashionMNIST/raw``."""

    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot"]
