"""Shared test setup: the repository root and this folder are importable (helper modules such as
``core_parity``), and ``devices`` lists where device-parametrized tests run: "cuda" is skipped
cleanly when CuPy sees no GPU."""

import os
import sys

import pytest

_HERE = os.path.dirname(os.path.abspath(__file__))
for _path in (os.path.dirname(_HERE), _HERE):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import deepgrad  # noqa: E402

devices = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not deepgrad.cuda_is_available(), reason="no CUDA device (CuPy)")),
]
