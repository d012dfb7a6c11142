"""Optimizers, learning-rate schedulers and gradient clipping, with torch.optim's semantics.

>>> model = deepgrad.nn.Linear(3, 1)
>>> opt = deepgrad.optim.Adam(model.parameters(), lr=1e-3)
>>> sched = deepgrad.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=100)
>>> loss = model(deepgrad.ones(4, 3)).pow(2).mean()
>>> opt.zero_grad(); loss.backward()
>>> total_norm = clip_grad_norm_(model.parameters(), 1.0)   # the norm before clipping
>>> opt.step(); sched.step()
>>> sched.get_last_lr()
[0.0009997532801828658]
"""

from . import lr_scheduler
from .adadelta import Adadelta
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .adamax import Adamax
from .clip_grad import clip_grad_norm_, clip_grad_value_, clip_grads_with_norm_, get_total_norm
from .lbfgs import LBFGS
from .nadam import NAdam, RAdam
from .optimizer import Optimizer, required
from .rmsprop import RMSprop
from .rprop import Rprop
from .sgd import SGD

__all__ = [
    "Optimizer", "required", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax", "NAdam", "RAdam",
    "Rprop", "LBFGS", "lr_scheduler",
    "clip_grad_norm_", "clip_grad_value_", "clip_grads_with_norm_", "get_total_norm",
]
