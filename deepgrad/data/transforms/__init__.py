"""Data augmentation on NumPy images ``(C, H, W)`` (and batches ``(N, C, H, W)``), seeded and reproducible.

``deepgrad.data.transforms.functional`` holds the deterministic operations; the classes here choose
random parameters. Use them on the fly with ``TransformDataset(dataset, transform)``.
"""

from . import functional
from .transforms import (
    CenterCrop,
    ColorJitter,
    Compose,
    GaussianNoise,
    Lambda,
    Normalize,
    Pad,
    RandomAffine,
    RandomApply,
    RandomCrop,
    RandomErasing,
    RandomHorizontalFlip,
    RandomResizedCrop,
    RandomRotation,
    RandomShift,
    RandomTransform,
    RandomVerticalFlip,
    Resize,
    ToArray,
    ToTensor,
    Transform,
)

__all__ = [
    "CenterCrop", "ColorJitter", "Compose", "GaussianNoise", "Lambda", "Normalize", "Pad", "RandomAffine",
    "RandomApply", "RandomCrop", "RandomErasing", "RandomHorizontalFlip", "RandomResizedCrop", "RandomRotation",
    "RandomShift", "RandomTransform", "RandomVerticalFlip", "Resize", "ToArray", "ToTensor", "Transform", "functional",
]
