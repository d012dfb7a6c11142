"""Transform objects (torchvision-shaped) over NumPy images ``(C, H, W)`` and batches ``(N, C, H, W)``.

Random transforms draw their parameters from their own ``generator`` when given one (a
``np.random.Generator`` or an int seed), else from ``deepgrad.data.current_generator()``: deepgrad's
global generator, or inside a DataLoader the current batch's stream, so pipelines repeat under
``deepgrad.manual_seed``. On a batch, one set of random parameters applies to the whole batch
(as torchvision v2). A deepgrad Tensor goes in and comes out as a Tensor; NumPy stays NumPy.

>>> import numpy as np
>>> aug = Compose([RandomCrop(8, padding=2), RandomHorizontalFlip(), Normalize([0.5], [0.25])])
>>> aug(np.zeros((1, 8, 8), np.float32)).shape
(1, 8, 8)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from ...creation import as_tensor
from ...tensor import Tensor
from .._random import GeneratorLike, as_generator, resolve
from . import functional as F


class Transform:
    """Base class: ``__call__`` takes a NumPy image (or a CPU Tensor) and returns the transformed one."""

    def __call__(self, img):
        if isinstance(img, Tensor):
            if not isinstance(img.array, np.ndarray):
                raise TypeError(f"{type(self).__name__}: transforms work on CPU data; got a tensor on {img.device}")
            return as_tensor(self.apply(img.array))
        return self.apply(np.asarray(img) if not isinstance(img, np.ndarray) else img)

    def apply(self, img: np.ndarray) -> np.ndarray:
        """Transform a NumPy image; subclasses override this."""
        return img

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_") and k != "generator")
        return f"{type(self).__name__}({fields})"


class RandomTransform(Transform):
    """A transform with random parameters: ``self.rng`` is its generator for this call."""

    def __init__(self, generator: GeneratorLike = None):
        self.generator = as_generator(generator, type(self).__name__)

    @property
    def rng(self) -> np.random.Generator:
        return resolve(self.generator)


def _check_p(p: float, op: str) -> float:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: probability p should be in [0, 1], got {p}")
    return float(p)


def _range(value, op: str, name: str, center: float | None = None, lo: float = -math.inf) -> tuple[float, float]:
    """A number ``v`` means (center - v, center + v) (or (-v, v)); a pair is taken as (min, max)."""
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"{op}: if {name} is a single number, it must be non-negative, got {value}")
        c = 0.0 if center is None else center
        out = (max(c - value, lo), c + value)
    else:
        out = tuple(float(v) for v in value)
        if len(out) != 2 or out[0] > out[1] or out[0] < lo:
            raise ValueError(f"{op}: {name} should be a number or a (min, max) pair with min >= {lo}, got {value}")
    return float(out[0]), float(out[1])


class Compose:
    """Chain transforms: ``Compose([RandomCrop(28, 4), Normalize(m, s)])(img)``."""

    def __init__(self, transforms: Sequence[Callable]):
        self.transforms = list(transforms)

    def __call__(self, img):
        for t in self.transforms:
            img = t(img)
        return img

    def __repr__(self) -> str:
        return "Compose(\n" + "".join(f"    {t!r}\n" for t in self.transforms) + ")"


class Lambda(Transform):
    """Wrap any function ``img -> img``."""

    def __init__(self, fn: Callable):
        if not callable(fn):
            raise TypeError(f"Lambda: argument should be callable, got {type(fn).__name__}")
        self.fn = fn

    def __call__(self, img):
        return self.fn(img)


class ToArray(Transform):
    """``(H, W, C)`` / ``(H, W)`` picture -> ``(C, H, W)`` float32; uint8 values scaled to [0, 1] (ToTensor's job)."""

    def apply(self, img):
        return F.to_array(img)


class ToTensor(ToArray):
    """Like :class:`ToArray` but returns a deepgrad Tensor (as torchvision's ToTensor)."""

    def __call__(self, img):
        data = img.array if isinstance(img, Tensor) else img
        return as_tensor(F.to_array(data))


class Normalize(Transform):
    """``(img - mean[c]) / std[c]`` per channel."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        self.mean, self.std = list(np.atleast_1d(mean)), list(np.atleast_1d(std))

    def apply(self, img):
        return F.normalize(img, self.mean, self.std)


class Resize(Transform):
    """Resize to (h, w), or the shorter edge to ``size`` (bilinear as torch's interpolate, align_corners=False)."""

    def __init__(self, size, interpolation: str = "bilinear"):
        self.size, self.interpolation = size, interpolation

    def apply(self, img):
        return F.resize(img, self.size, self.interpolation)


class CenterCrop(Transform):
    """The central ``size`` window."""

    def __init__(self, size):
        self.size = size

    def apply(self, img):
        return F.center_crop(img, self.size)


class Pad(Transform):
    """Pad by ``padding`` (int, (lr, tb) or (l, t, r, b)) with ``fill`` or an edge/reflect/symmetric mode."""

    def __init__(self, padding, fill=0, padding_mode: str = "constant"):
        self.padding, self.fill, self.padding_mode = padding, fill, padding_mode

    def apply(self, img):
        return F.pad(img, self.padding, self.fill, self.padding_mode)


class RandomApply(RandomTransform):
    """Apply the list of transforms with probability ``p``."""

    def __init__(self, transforms: Sequence[Callable], p: float = 0.5, generator: GeneratorLike = None):
        super().__init__(generator)
        self.transforms, self.p = list(transforms), _check_p(p, "RandomApply")

    def __call__(self, img):
        if self.rng.random() >= self.p:
            return img
        for t in self.transforms:
            img = t(img)
        return img


class RandomHorizontalFlip(RandomTransform):
    """Mirror left-right with probability ``p``."""

    def __init__(self, p: float = 0.5, generator: GeneratorLike = None):
        super().__init__(generator)
        self.p = _check_p(p, "RandomHorizontalFlip")

    def apply(self, img):
        return F.hflip(img) if self.rng.random() < self.p else img


class RandomShift(RandomTransform):
    """Translate by a random whole-pixel offset (dy, dx), each uniform in [-max_shift, max_shift]; the pixels
    that come in take ``fill`` (default: the input's minimum, the background of standardised images, where
    zeros would be bright). With ``per_sample`` the input is a batch ``(N, ..., H, W)`` and each image gets its
    own offset (one draw of all 2N offsets); otherwise the whole input moves by one offset.

    >>> batch = np.random.default_rng(0).random((4, 1, 8, 8), dtype=np.float32)   # 4 one-channel 8x8 images
    >>> RandomShift(2, per_sample=True, generator=0)(batch).shape == batch.shape
    True
    """

    def __init__(self, max_shift: int, fill: float | None = None, per_sample: bool = False,
                 generator: GeneratorLike = None):
        super().__init__(generator)
        if isinstance(max_shift, bool) or not isinstance(max_shift, (int, np.integer)) or max_shift < 0:
            raise ValueError(f"RandomShift: max_shift must be a non-negative integer, got {max_shift!r}")
        self.max_shift, self.fill, self.per_sample = int(max_shift), fill, per_sample

    def apply(self, img):
        F._check_image(img, "RandomShift", min_ndim=3 if self.per_sample else 2)
        s = self.max_shift
        fill = float(img.min()) if self.fill is None else self.fill
        if not self.per_sample:
            dy, dx = self.rng.integers(0, 2 * s + 1, size=2)
            return F.shift(img, s - dy, s - dx, fill)
        offsets = self.rng.integers(0, 2 * s + 1, size=(2, len(img)))  # where each image's window starts
        out = np.empty_like(img)
        for i in range(len(img)):
            out[i] = F.shift(img[i], s - offsets[0, i], s - offsets[1, i], fill)
        return out


class RandomVerticalFlip(RandomTransform):
    """Mirror top-bottom with probability ``p``."""

    def __init__(self, p: float = 0.5, generator: GeneratorLike = None):
        super().__init__(generator)
        self.p = _check_p(p, "RandomVerticalFlip")

    def apply(self, img):
        return F.vflip(img) if self.rng.random() < self.p else img


class RandomRotation(RandomTransform):
    """Rotate by an angle drawn from ``degrees`` (a number d means (-d, d)); uncovered corners get ``fill``."""

    def __init__(self, degrees, interpolation: str = "bilinear", center=None, fill=0, generator: GeneratorLike = None):
        super().__init__(generator)
        self.degrees = _range(degrees, "RandomRotation", "degrees")
        self.interpolation, self.center, self.fill = interpolation, center, fill

    def apply(self, img):
        angle = float(self.rng.uniform(*self.degrees))
        return F.rotate(img, angle, self.interpolation, self.center, self.fill)


class RandomAffine(RandomTransform):
    """Random rotation, translation (fractions of width/height), scale and shear (degrees).

    ``shear``: a number s means x-shear in (-s, s); 2 values an x range; 4 values x and y ranges.
    """

    def __init__(self, degrees, translate: Sequence[float] | None = None, scale: Sequence[float] | None = None,
                 shear=None, interpolation: str = "bilinear", fill=0, center=None, generator: GeneratorLike = None):
        super().__init__(generator)
        self.degrees = _range(degrees, "RandomAffine", "degrees")
        if translate is not None and (len(translate) != 2 or not all(0.0 <= t <= 1.0 for t in translate)):
            raise ValueError(f"RandomAffine: translate should be a (max_dx, max_dy) pair of fractions in [0, 1], "
                             f"got {translate}")
        if scale is not None and (len(scale) != 2 or scale[0] <= 0 or scale[0] > scale[1]):
            raise ValueError(f"RandomAffine: scale should be a (min, max) pair of positive numbers, got {scale}")
        if shear is None:
            self.shear = None
        elif isinstance(shear, (int, float)) or len(shear) == 2:
            self.shear = (_range(shear, "RandomAffine", "shear"), (0.0, 0.0))
        elif len(shear) == 4:
            self.shear = ((float(shear[0]), float(shear[1])), (float(shear[2]), float(shear[3])))
        else:
            raise ValueError(f"RandomAffine: shear should be a number or a sequence of 2 or 4 numbers, got {shear}")
        self.translate, self.scale = translate, scale
        self.interpolation, self.fill, self.center = interpolation, fill, center

    def get_params(self, height: int, width: int) -> tuple[float, tuple[int, int], float, tuple[float, float]]:
        """Draw (angle, (tx, ty), scale, (shear_x, shear_y)) as torchvision does (integer pixel translations)."""
        rng = self.rng
        angle = float(rng.uniform(*self.degrees))
        tx = ty = 0
        if self.translate is not None:
            max_dx, max_dy = self.translate[0] * width, self.translate[1] * height
            tx, ty = int(round(rng.uniform(-max_dx, max_dx))), int(round(rng.uniform(-max_dy, max_dy)))
        scale = 1.0 if self.scale is None else float(rng.uniform(*self.scale))
        shear = (0.0, 0.0)
        if self.shear is not None:
            shear = (float(rng.uniform(*self.shear[0])), float(rng.uniform(*self.shear[1])))
        return angle, (tx, ty), scale, shear

    def apply(self, img):
        angle, translate, scale, shear = self.get_params(*F._check_image(img, "RandomAffine").shape[-2:])
        return F.affine(img, angle, translate, scale, shear, self.interpolation, self.fill, self.center)


class RandomCrop(RandomTransform):
    """A random ``size`` window, after optional ``padding`` (and padding up to ``size`` if ``pad_if_needed``)."""

    def __init__(self, size, padding=None, pad_if_needed: bool = False, fill=0, padding_mode: str = "constant",
                 generator: GeneratorLike = None):
        super().__init__(generator)
        self.size = F._size2(size, "RandomCrop")
        self.padding, self.pad_if_needed, self.fill, self.padding_mode = padding, pad_if_needed, fill, padding_mode

    def apply(self, img):
        F._check_image(img, "RandomCrop")
        if self.padding is not None:
            img = F.pad(img, self.padding, self.fill, self.padding_mode)
        th, tw = self.size
        h, w = img.shape[-2:]
        if self.pad_if_needed and (h < th or w < tw):
            dw, dh = max(tw - w, 0), max(th - h, 0)
            img = F.pad(img, (dw, dh), self.fill, self.padding_mode)
            h, w = img.shape[-2:]
        if h < th or w < tw:
            raise ValueError(f"RandomCrop: required crop size {(th, tw)} is larger than the (padded) input image "
                             f"size {(h, w)}; pass padding= or pad_if_needed=True")
        top = int(self.rng.integers(0, h - th + 1))
        left = int(self.rng.integers(0, w - tw + 1))
        return F.crop(img, top, left, th, tw)


class RandomResizedCrop(RandomTransform):
    """A crop of random area fraction ``scale`` and aspect ``ratio``, resized to ``size`` (Inception-style)."""

    def __init__(self, size, scale: Sequence[float] = (0.08, 1.0), ratio: Sequence[float] = (3 / 4, 4 / 3),
                 interpolation: str = "bilinear", generator: GeneratorLike = None):
        super().__init__(generator)
        self.size = F._size2(size, "RandomResizedCrop")
        if scale[0] > scale[1] or ratio[0] > ratio[1] or scale[0] <= 0 or ratio[0] <= 0:
            raise ValueError(f"RandomResizedCrop: scale and ratio should be positive (min, max) pairs, got "
                             f"scale={scale}, ratio={ratio}")
        self.scale, self.ratio, self.interpolation = tuple(scale), tuple(ratio), interpolation

    def get_params(self, height: int, width: int) -> tuple[int, int, int, int]:
        """(top, left, h, w) of the crop: 10 tries at a random area/aspect, then a central crop (as torchvision)."""
        rng, area = self.rng, height * width
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target = area * rng.uniform(*self.scale)
            aspect = math.exp(rng.uniform(*log_ratio))
            w = int(round(math.sqrt(target * aspect)))
            h = int(round(math.sqrt(target / aspect)))
            if 0 < w <= width and 0 < h <= height:
                return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
        in_ratio = width / height
        if in_ratio < self.ratio[0]:
            w, h = width, int(round(width / self.ratio[0]))
        elif in_ratio > self.ratio[1]:
            h, w = height, int(round(height * self.ratio[1]))
        else:
            w, h = width, height
        return (height - h) // 2, (width - w) // 2, h, w

    def apply(self, img):
        top, left, h, w = self.get_params(*F._check_image(img, "RandomResizedCrop").shape[-2:])
        return F.resize(F.crop(img, top, left, h, w), self.size, self.interpolation)


class GaussianNoise(RandomTransform):
    """Add ``N(mean, std^2)`` noise to every pixel (clamped to [0, 1] when ``clip``)."""

    def __init__(self, mean: float = 0.0, std: float = 0.1, clip: bool = False, generator: GeneratorLike = None):
        super().__init__(generator)
        if std < 0:
            raise ValueError(f"GaussianNoise: std should be non-negative, got {std}")
        self.mean, self.std, self.clip = float(mean), float(std), clip

    def apply(self, img):
        if img.dtype.kind != "f":
            raise TypeError(f"GaussianNoise: expected a float image, got dtype {img.dtype}")
        out = img + self.rng.normal(self.mean, self.std, size=img.shape).astype(img.dtype)
        return np.clip(out, 0.0, 1.0) if self.clip else out


class RandomErasing(RandomTransform):
    """With probability ``p`` blank a random rectangle (area fraction ``scale``, aspect ``ratio``) with ``value``.

    ``value``: a number, one number per channel, or ``"random"`` for standard-normal noise.
    """

    def __init__(self, p: float = 0.5, scale: Sequence[float] = (0.02, 0.33), ratio: Sequence[float] = (0.3, 3.3),
                 value=0, generator: GeneratorLike = None):
        super().__init__(generator)
        self.p = _check_p(p, "RandomErasing")
        if scale[0] > scale[1] or ratio[0] > ratio[1] or not 0 <= scale[0] <= 1 or not 0 <= scale[1] <= 1:
            raise ValueError(f"RandomErasing: scale should be a (min, max) pair in [0, 1] and ratio a (min, max) "
                             f"pair, got scale={scale}, ratio={ratio}")
        if isinstance(value, str) and value != "random":
            raise ValueError(f"RandomErasing: value should be a number, a sequence or 'random', got {value!r}")
        self.scale, self.ratio, self.value = tuple(scale), tuple(ratio), value

    def apply(self, img):
        F._check_image(img, "RandomErasing", 3)
        rng = self.rng
        if rng.random() >= self.p:
            return img
        c, height, width = img.shape[-3:]
        area = height * width
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            erase_area = area * rng.uniform(*self.scale)
            aspect = math.exp(rng.uniform(*log_ratio))
            h = int(round(math.sqrt(erase_area * aspect)))
            w = int(round(math.sqrt(erase_area / aspect)))
            if not (0 < h < height and 0 < w < width):
                continue
            if isinstance(self.value, str):
                v = rng.standard_normal((c, h, w)).astype(img.dtype)
            else:
                v = np.asarray(self.value, dtype=img.dtype)
                if v.ndim == 1:
                    if v.shape[0] not in (1, c):
                        raise ValueError(f"RandomErasing: value has {v.shape[0]} entries but the image has {c} "
                                         f"channels")
                    v = v.reshape(-1, 1, 1)
            top, left = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
            return F.erase(img, top, left, h, w, v)
        return img


class ColorJitter(RandomTransform):
    """Random brightness, contrast, saturation and hue changes, applied in a random order (RGB float images).

    A number b means a factor in [max(0, 1 - b), 1 + b] (hue h: a shift in [-h, h], h <= 0.5).
    """

    def __init__(self, brightness=0, contrast=0, saturation=0, hue=0, generator: GeneratorLike = None):
        super().__init__(generator)
        self.brightness = _range(brightness, "ColorJitter", "brightness", center=1.0, lo=0.0)
        self.contrast = _range(contrast, "ColorJitter", "contrast", center=1.0, lo=0.0)
        self.saturation = _range(saturation, "ColorJitter", "saturation", center=1.0, lo=0.0)
        self.hue = _range(hue, "ColorJitter", "hue")
        if not -0.5 <= self.hue[0] <= self.hue[1] <= 0.5:
            raise ValueError(f"ColorJitter: hue values should be between (-0.5, 0.5), got {hue}")

    def apply(self, img):
        if img.dtype.kind != "f":
            raise TypeError(f"ColorJitter: expected a float image in [0, 1], got dtype {img.dtype}")
        if (self.saturation != (1.0, 1.0) or self.hue != (0.0, 0.0)) and (img.ndim < 3 or img.shape[-3] != 3):
            raise ValueError(f"ColorJitter: saturation and hue need a 3-channel image (..., 3, H, W), got shape "
                             f"{tuple(img.shape)}")
        rng = self.rng
        order = rng.permutation(4)
        b, c, s, h = (float(rng.uniform(*r)) for r in (self.brightness, self.contrast, self.saturation, self.hue))
        for i in order:
            if i == 0 and self.brightness != (1.0, 1.0):
                img = F.adjust_brightness(img, b)
            elif i == 1 and self.contrast != (1.0, 1.0):
                img = F.adjust_contrast(img, c)
            elif i == 2 and self.saturation != (1.0, 1.0):
                img = F.adjust_saturation(img, s)
            elif i == 3 and self.hue != (0.0, 0.0):
                img = F.adjust_hue(img, h)
        return img
