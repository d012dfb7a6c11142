"""``deepgrad.backends``: torch.backends' switches, accepted so torch programs run; on deepgrad they change
nothing (see each module). ``backend`` (singular) is deepgrad's own array-module layer."""

from . import cuda, cudnn, mps  # noqa: F401
