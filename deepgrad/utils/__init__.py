"""``deepgrad.utils``: torch's ``torch.utils`` import paths. ``deepgrad.utils.data`` is
:mod:`deepgrad.data` (the same objects), so ``from torch.utils.data import DataLoader`` ports by changing
the first word."""

from . import data  # noqa: F401
