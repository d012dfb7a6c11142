"""ParameterList and ParameterDict: a list / dict of Parameters that a Module registers (a plain list would
hide them from ``parameters()``, the optimizer and the state_dict). Keys as torch's: "0", "1", ... or the
dict's keys.

>>> pl = ParameterList([Parameter(deepgrad.zeros(2)), Parameter(deepgrad.ones(3))])
>>> list(pl.state_dict())
['0', '1']
"""

from __future__ import annotations

from ..tensor import Tensor
from .module import Module, Parameter


def _as_parameter(value) -> Parameter:
    return value if isinstance(value, Parameter) else Parameter(value if isinstance(value, Tensor) else value)


class ParameterList(Module):
    """A list of Parameters registered under their positions; Tensors are wrapped as Parameters."""

    def __init__(self, values=None):
        super().__init__()
        for v in values or []:
            self.append(v)

    def append(self, value) -> ParameterList:
        self.register_parameter(str(len(self)), _as_parameter(value))
        return self

    def extend(self, values) -> ParameterList:
        for v in values:
            self.append(v)
        return self

    def __len__(self) -> int:
        return len(self._parameters)

    def __iter__(self):
        return iter(self._parameters.values())

    def __getitem__(self, idx: int) -> Parameter:
        values = list(self._parameters.values())
        if isinstance(idx, slice):
            return ParameterList(values[idx])
        if not -len(values) <= idx < len(values):
            raise IndexError(f"ParameterList: index {idx} is out of range for length {len(values)}")
        return values[idx]

    def __setitem__(self, idx: int, value) -> None:
        if not -len(self) <= idx < len(self):
            raise IndexError(f"ParameterList: index {idx} is out of range for length {len(self)}")
        self.register_parameter(str(idx % len(self)), _as_parameter(value))

    def extra_repr(self) -> str:
        return "\n".join(f"({i}): Parameter containing: [{p.dtype} of size {'x'.join(map(str, p.shape))}]"
                         for i, p in enumerate(self))


class ParameterDict(Module):
    """A dict of Parameters registered under their keys (in insertion order)."""

    def __init__(self, parameters=None):
        super().__init__()
        if parameters is not None:
            self.update(parameters)

    def update(self, parameters) -> None:
        items = parameters.items() if hasattr(parameters, "items") else parameters
        for key, value in items:
            self[key] = value

    def __getitem__(self, key: str) -> Parameter:
        return self._parameters[key]

    def __setitem__(self, key: str, value) -> None:
        self.register_parameter(key, _as_parameter(value))

    def __delitem__(self, key: str) -> None:
        delattr(self, key)

    def __contains__(self, key: str) -> bool:
        return key in self._parameters

    def __len__(self) -> int:
        return len(self._parameters)

    def __iter__(self):
        return iter(self._parameters)

    def keys(self):
        return self._parameters.keys()

    def values(self):
        return self._parameters.values()

    def items(self):
        return self._parameters.items()

    def extra_repr(self) -> str:
        return "\n".join(f"({k}): Parameter containing: [{p.dtype} of size {'x'.join(map(str, p.shape))}]"
                         for k, p in self.items())
