"""The workload registry: a workload is a name, a description and, per library, a builder.

A builder is ``build(lib, device) -> step``: ``lib`` is the imported library module
(``deepgrad`` or ``torch``), ``device`` is ``"cpu"`` or ``"cuda"``, and ``step()`` runs one
iteration and returns a tensor (the loss, or the output) that the runner uses once to check
that both libraries compute the same thing. Where deepgrad's API mirrors torch's, one builder
serves both; adding a workload is a decorated function::

    @workload("tiny_sum", "x * 2 summed, forward+backward")
    def build(lib, device):
        x = lib.ones(4, device=device, requires_grad=True)

        def step():
            loss = (x * 2).sum()
            loss.backward()
            x.grad = None
            return loss

        return step
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

LIBRARIES = ("deepgrad", "torch")

Builder = Callable[[object, str], Callable[[], object]]


@dataclass
class Workload:
    """One benchmarked computation, defined once for both libraries."""

    name: str
    description: str
    builders: dict[str, Builder] = field(default_factory=dict)
    devices: tuple[str, ...] = ("cpu", "cuda")
    # Steps whose values both libraries must reproduce; 1 where randomness that cannot be shared
    # (dropout masks) makes every later step differ.
    comparable_steps: int = 2
    # Samples one step processes, where a throughput (samples/s) is worth reporting: inference workloads.
    samples: int | None = None

    def build(self, library: str, lib, device: str) -> Callable[[], object]:
        """The step callable of ``library`` (already imported as ``lib``) on ``device``."""
        if library not in self.builders:
            raise KeyError(f"workload {self.name!r} has no builder for {library!r} (has {sorted(self.builders)})")
        return self.builders[library](lib, device)


_REGISTRY: dict[str, Workload] = {}


def workload(name: str, description: str, libraries: tuple[str, ...] = LIBRARIES,
             devices: tuple[str, ...] = ("cpu", "cuda"), comparable_steps: int = 2, samples: int | None = None):
    """Decorator registering ``build(lib, device) -> step`` as ``name`` for ``libraries``.

    Decorate a second function with the same ``name`` and ``libraries=("torch",)`` to give
    one library its own builder where the APIs differ. ``samples`` (the batch a step processes)
    adds a samples/s figure to the report.
    """
    for lib in libraries:
        if lib not in LIBRARIES:
            raise ValueError(f"workload {name!r}: unknown library {lib!r} (expected one of {LIBRARIES})")

    def register(build: Builder) -> Builder:
        entry = _REGISTRY.get(name)
        if entry is None:
            entry = _REGISTRY[name] = Workload(name, description, devices=tuple(devices),
                                               comparable_steps=comparable_steps, samples=samples)
        for lib in libraries:
            entry.builders[lib] = build
        return build

    return register


def _load() -> None:
    from . import workloads  # noqa: F401  (importing the package registers its workloads)


def get_workload(name: str) -> Workload:
    """The registered workload called ``name``."""
    _load()
    if name not in _REGISTRY:
        raise KeyError(f"unknown workload {name!r}; available: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def list_workloads(device: str | None = None) -> list[Workload]:
    """All registered workloads (those that run on ``device`` when given), in registration order."""
    _load()
    return [w for w in _REGISTRY.values() if device is None or device in w.devices]
