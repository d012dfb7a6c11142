"""``deepgrad.backends.cuda``: torch's CUDA matmul flags, accepted; deepgrad's float32 products are always
full float32 (no TF32)."""


class _MatmulFlags:
    allow_tf32 = False
    allow_fp16_reduced_precision_reduction = True
    allow_bf16_reduced_precision_reduction = True


matmul = _MatmulFlags()


def is_built() -> bool:
    """True when CuPy (deepgrad's GPU path) can be imported."""
    from .. import backend

    return backend.cuda_is_available()
