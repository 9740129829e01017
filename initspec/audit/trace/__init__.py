"""The traced evidence: what a model's own code applies to every parameter, recorded without
allocating the parameters, reduced to exact laws by one algebra (:mod:`.laws`).

One recorder per framework turns what ran into :class:`Traced` records; the audit pools them into
the same groups the draws fill, so the two sources of evidence meet in one table.

A recorder is a module ``initspec.audit.trace.<framework>`` defining ``FRAMEWORK`` and
``trace(target, seed, **options) -> Recording``: build the target without allocating its
parameters (torch: ``FakeTensorMode`` under a recording ``TorchDispatchMode``; JAX/Flax: the
jaxpr of the initialization under ``jax.eval_shape``; Keras: the initializer each variable was
created with), list its parameters with the framework's walker and say what each one received.
``target`` is an :class:`~initspec.audit.targets.AuditTarget`; ``options`` are the audit's
(``layout``: the ``--layout`` fallback for owners the walker does not know, ``input_shape``).
The model's own code runs under :func:`~initspec.audit.targets.build_model` (a raise is a
``BuildError``); a target that builds an object of another framework raises
:class:`NotThisFramework`, and the audit asks the next recorder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from initspec.audit.trace.laws import Law
from initspec.audit.walkers import Param


class NotThisFramework(Exception):
    """The target built something this recorder's framework does not own."""


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
    the code named when it called a named initializer (``kaiming_normal(mode=fan_out, ...)``).

    ``declared`` is set only when the named scheme gives exactly ``law`` on the parameter's fans;
    ``named`` keeps every scheme name the code used on the way (outermost first), matching or not.
    ``composes``: the write maps the values before it (a scale after a draw) instead of replacing them.
    ``target``: for a write that reached no parameter, what it landed in (``a tensor computed from ...``).
    """

    law: Law
    site: Site | None
    ops: tuple[str, ...] = ()
    declared: str | None = None
    region: str | None = None       # None: the whole tensor; else e.g. "row 0"
    named: tuple[str, ...] = ()
    composes: bool = False
    target: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {"law": self.law.scheme() or str(self.law), "kind": self.law.kind, "declared": self.declared,
                "named": list(self.named), "site": self.site.to_dict() if self.site else None,
                "ops": list(self.ops), **({"region": self.region} if self.region else {}),
                **({"composes": True} if self.composes else {}), **({"target": self.target} if self.target else {})}


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
    def chain(self) -> list[Write]:
        """The whole-tensor writes the law is made of: the last one and those it composes on."""
        whole = [w for w in self.writes if w.region is None]
        out: list[Write] = []
        for w in reversed(whole):
            out.insert(0, w)
            if not w.composes:
                break
        return out

    @property
    def shadowed(self) -> list[Write]:
        """Earlier whole-tensor writes whose values the law no longer depends on."""
        chain = self.chain
        if not chain:
            return []
        i = max(i for i, w in enumerate(self.writes) if w is chain[0])
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
