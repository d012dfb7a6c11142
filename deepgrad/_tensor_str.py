"""How a Tensor prints: torch's look (4 decimals unless every value is integral, scientific notation for
wide ranges, ``dtype=``/``grad_fn=``/``requires_grad=`` suffixes), and ``set_printoptions``.

>>> import deepgrad as dg
>>> dg.tensor([1.0, 2.5])
tensor([1.0000, 2.5000])
"""

from __future__ import annotations

import numpy as np

from . import backend

_options = {"precision": 4, "threshold": 1000, "edgeitems": 3, "linewidth": 80, "sci_mode": None}


def set_printoptions(precision: int | None = None, threshold: int | None = None, edgeitems: int | None = None,
                     linewidth: int | None = None, profile: str | None = None, sci_mode: bool | None = None) -> None:
    """torch.set_printoptions: digits after the point, how many elements before summarising with ``...``,
    how many at each edge, the line width, a ``profile`` ("default", "short", "full") and
    ``sci_mode`` (True / False forces scientific / fixed notation; None decides by the values)."""
    profiles = {"default": (4, 1000, 3, 80), "short": (2, 1000, 2, 80), "full": (4, 2**63 - 1, 3, 80)}
    if profile is not None:
        if profile not in profiles:
            raise ValueError(f"set_printoptions: unknown profile {profile!r}; use one of {sorted(profiles)}")
        _options.update(zip(("precision", "threshold", "edgeitems", "linewidth"), profiles[profile]))
    for key, value in (("precision", precision), ("threshold", threshold), ("edgeitems", edgeitems),
                       ("linewidth", linewidth)):
        if value is not None:
            _options[key] = int(value)
    _options["sci_mode"] = sci_mode


def format_tensor(t) -> str:
    """``repr`` of a Tensor, as torch prints it."""
    data = t._host()
    p = _options["precision"]
    formatter = None
    if data.dtype.kind == "f":
        finite = data[np.isfinite(data)]
        integral = bool(np.all(finite == np.round(finite)))
        nonzero = np.abs(finite[finite != 0]).astype(np.float64)
        big, small = (nonzero.max(), nonzero.min()) if nonzero.size else (0.0, 0.0)
        # torch switches to scientific notation for a wide or extreme range of magnitudes
        sci = _options["sci_mode"]
        if sci is None:
            sci = big > 1e8 or (not integral and (big / small > 1000 or small < 1e-4))
        if sci:
            width = max(len(f"{v:.{p}e}") for v in data.reshape(-1).tolist()) if data.size else 0
            formatter = {"float_kind": lambda v: f"{v:.{p}e}".rjust(width)}
    else:
        integral = True
    body = np.array2string(
        data, separator=", ", prefix="tensor(", precision=p, threshold=_options["threshold"],
        edgeitems=_options["edgeitems"], max_line_width=_options["linewidth"],
        floatmode="maxprec" if integral else "fixed", formatter=formatter,
    ).replace(", ..., ", ",  ..., ")  # torch's spacing around the summary ellipsis
    extras = []
    if t.device.type == "cuda":
        extras.append(f"device='{t.device}'")
    if data.size == 0 and data.ndim != 1:
        extras.append(f"size={tuple(data.shape)}")
    default_kinds = {"f": backend.get_default_dtype(), "i": backend.int64, "b": backend.bool_}
    if default_kinds.get(data.dtype.kind) != data.dtype:
        extras.append(f"dtype=deepgrad.{data.dtype}")
    if t.grad_fn is not None:
        extras.append(f"grad_fn={t.grad_fn!r}")
    elif t.requires_grad:
        extras.append("requires_grad=True")
    return "tensor(" + body + "".join(", " + e for e in extras) + ")"
