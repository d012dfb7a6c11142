"""Gradient clipping lives in :mod:`deepgrad.nn.utils.clip_grad` (torch.nn.utils' home for it); this module keeps
the ``deepgrad.optim.clip_grad`` import path working."""

from ..nn.utils.clip_grad import clip_grad_norm_, clip_grad_value_, clip_grads_with_norm_, get_total_norm

__all__ = ["clip_grad_norm_", "clip_grad_value_", "clip_grads_with_norm_", "get_total_norm"]
