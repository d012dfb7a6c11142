"""Differentiable primitives, one module per family (elementwise, reduce, shape, linalg, ...)."""
