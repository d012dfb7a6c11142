"""Registered workloads; importing this package registers them all.

Modules here import neither deepgrad nor torch: builders receive the library module.
"""

from . import cnn, engine, gan, inference, recurrent, transformer  # noqa: F401
