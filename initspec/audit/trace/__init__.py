"""The traced evidence: what a model's own code applies to every parameter, recorded without
allocating the parameters, reduced to exact laws by one algebra (:mod:`.laws`).

One recorder per framework turns what ran into :class:`Traced` records; the audit pools them into
the same groups the draws fill, so the two sources of evidence meet in one table.

A recorder is a module ``initspec.audit.trace.<framework>`` defining ``FRAMEWORK`` and
``trace(target, seed, **options) -> Recording``: build the target without allocating its
parameters (torch: ``FakeTensorMode`` under a recording ``TorchDispatchMode``; JAX/Flax: the
jaxpr of the initialization under ``jax.eval_shape``; Keras: the initializer each variable was
created with), list its parameters with the framework's walker and say what each one received.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from initspec.audit.trace.laws import Law
from initspec.audit.walkers import Param


@dataclass(frozen=True)
class Site:
    """Where a write was made: the first frame outside the framework and initspec."""

    file: str
    line: int
    function: str

    def __str__(self) -> str:
        return f"{os.path.basename(self.file)}:{self.line} in {self.function}"

    def to_dict(self) -> dict[str, object]:
        return {"file": self.file, "line": self.line, "function": self.function}


@dataclass(frozen=True)
class Write:
    """One initializing write: the law it left, where it was made, the operations, and the scheme
    the code named when it called a named initializer (``kaiming_normal(mode=fan_out, ...)``)."""

    law: Law
    site: Site | None
    ops: tuple[str, ...] = ()
    declared: str | None = None
    region: str | None = None       # None: the whole tensor; else e.g. "row 0"


@dataclass
class Traced:
    """What the trace knows of one parameter: its final law and the writes that made it.

    ``writes`` is in order; the last whole-tensor write sets ``law`` and earlier ones are shadowed;
    writes to a part of the tensor after it (``region`` set) are the tensor's row structure.
    """

    path: str
    law: Law
    writes: list[Write] = field(default_factory=list)
    copy_of: str | None = None      # another parameter this one's values were copied from
    seed_follows: bool | None = None  # False: drawn from a generator the run's seed does not reach

    @property
    def last(self) -> Write | None:
        """The write that set the law (the last whole-tensor write)."""
        return next((w for w in reversed(self.writes) if w.region is None), None)

    @property
    def shadowed(self) -> list[Write]:
        last = self.last
        if last is None:
            return []
        i = max(i for i, w in enumerate(self.writes) if w is last)
        return [w for w in self.writes[:i] if w.region is None]

    @property
    def regions(self) -> list[Write]:
        last = self.last
        start = 0 if last is None else max(i for i, w in enumerate(self.writes) if w is last) + 1
        return [w for w in self.writes[start:] if w.region is not None]


@dataclass
class Recording:
    """One traced build: the parameters as the walker lists them (``values`` unavailable: nothing
    was allocated), what the trace knows of each, and the initializing writes that reached no
    parameter at all (``init_lost``: a write to a computed tensor, such as a weight-normed
    convolution's ``weight``)."""

    framework: str
    params: list[Param]
    traced: dict[str, Traced]
    lost: list[Write] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
