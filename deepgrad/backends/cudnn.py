"""``deepgrad.backends.cudnn``: torch's cuDNN flags, accepted and remembered. deepgrad does not use cuDNN
(its GPU path is CuPy), and its ops are deterministic, so ``benchmark``, ``deterministic`` and ``enabled``
change nothing.

>>> import deepgrad as dg
>>> dg.backends.cudnn.benchmark = True
"""

benchmark = False
deterministic = False
enabled = True
allow_tf32 = True


def is_available() -> bool:
    """False: deepgrad does not call cuDNN."""
    return False


def version() -> None:
    """None: no cuDNN is linked."""
    return None
