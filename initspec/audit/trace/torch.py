"""The torch recorder: what a model's own code writes into every parameter, with nothing allocated.

The model is built under ``torch._subclasses.fake_tensor.FakeTensorMode`` (tensors have shapes and
report ``cpu``, so the code takes its real path -- transformers 5.x skips ``_init_weights`` on the
``meta`` device) with a recording ``TorchDispatchMode`` on top.  The public face is the one of
``torch.utils.flop_counter.FlopCounterMode``::

    with Recorder() as rec:
        model = factory()
    recording = rec.recording(model)

Every operation is mapped to the storage it writes or creates (views and index writes included:
a write through ``weight[0]`` is a write to a part of ``weight``'s storage).  Each storage keeps its
writes in order -- the law each left (``_torch_ops``), the site and the scheme names read from the
stack (``_torch_stack``), the storages its values came from (``copy_``, ``clone``, any operation's
inputs) -- and a parameter's law is the one of the last write that covered it whole.

One operation is run in another, law-identical form: torch >= 2.12 draws ``trunc_normal_`` by
rejection (pytorch PR #174997: a loop on ``mask.any()``, which a shape-only tensor cannot answer), so
during the trace ``torch.nn.init._no_grad_trunc_normal_`` is torch <= 2.11's inverse-CDF sampler (uniform, erfinv,
scale, shift, clamp), whose law the algebra derives: N(mean, std²) cut at [a, b], the law both
samplers draw.  The draws check the sampler itself.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from dataclasses import dataclass, field
from typing import Any

from initspec.audit.trace import NotThisFramework, Recording, Site, Traced, Write
from initspec.audit.trace import _torch_ops as O
from initspec.audit.trace import laws as L
from initspec.audit.trace._torch_stack import LAYER_DEFAULT, Stack

FRAMEWORK = "torch"

_STRUCTURED = ("orthogonal", "identity", "dirac", "sparse")


def trace(target: Any, seed: int, layout: str | None = None, **options: Any) -> Recording:
    """Trace one build of ``target`` (an AuditTarget) under ``torch.manual_seed(seed)``.

    When a parameter's law came from a draw of a generator other than the global one, or of a
    global one the model re-seeded, the build is traced once more under ``seed + 1``: the
    parameters whose generators' seeds did not move get ``seed_follows = False``."""
    first, recording = _once(target, seed, layout)
    suspects = [p for p, seeds in first.seeds.items() if any(not glob or s != seed for glob, s in seeds)]
    for path, t in recording.traced.items():
        if t.law.random and first.seeds.get(path):
            t.seed_follows = True
    if suspects:
        again, _ = _once(target, seed + 1, layout)
        for path in suspects:
            recording.traced[path].seed_follows = again.seeds.get(path) != first.seeds[path]
    return recording


def _once(target: Any, seed: int, layout: str | None) -> tuple[Recorder, Recording]:
    import torch

    from initspec.audit.targets import build_model
    from initspec.audit.walkers import torch as walker

    rec = Recorder()

    def build() -> Any:
        with rec:
            torch.manual_seed(seed)
            with torch.no_grad():
                return target.factory()

    model = build_model(target.text, build)
    if not walker.recognizes(model):
        raise NotThisFramework(f"{type(model).__module__}.{type(model).__name__}")
    return rec, rec.recording(model, layout)


@dataclass
class _Raw:
    """One write to one storage, before it is read per parameter (extents in bytes)."""

    start: int
    end: int
    dense: bool
    value: O.Value
    site: Site | None
    names: tuple[str, ...]
    kind: str                        # make | set | map | select
    copy_of: int | None = None       # the storage key its values were copied from
    view: tuple | None = None        # (offset, shape, stride, itemsize) of the written view
    label: str = ""


@dataclass
class _Store:
    storage: Any                     # keeps the (shape-only) storage alive: its key is never reused
    nbytes: int
    writes: list[_Raw] = field(default_factory=list)
    sources: set[int] = field(default_factory=set)
    real: Any = None                 # the values, for a small storage computed with no random draw


#: elements up to which a storage computed with no random draw also gets its real values, so the code
#: may read them (``torch.linspace(0, rate, n).tolist()`` for drop-path rates): an exact computation
REAL_LIMIT = 1 << 16


def _key(t: Any) -> int:
    return t.untyped_storage()._cdata


def _extent(t: Any) -> tuple[int, int, bool]:
    """The bytes of its storage a tensor (or view) spans, and whether it covers every byte between."""
    size = t.element_size()
    start = t.storage_offset() * size
    if t.numel() == 0:
        return start, start, True
    span = 1 + sum((n - 1) * abs(s) for n, s in zip(t.shape, t.stride(), strict=True))
    return start, start + span * size, span == t.numel()


def _covers(w: _Raw, start: int, end: int) -> bool:
    return w.dense and w.kind != "select" and w.start <= start and end <= w.end


def _overlaps(w: _Raw, start: int, end: int) -> bool:
    return (w.start < end and start < w.end) or (w.start == w.end == start == end)


def _tensors(x: Any) -> list[Any]:
    import torch

    if isinstance(x, torch.Tensor):
        return [x]
    if isinstance(x, (list, tuple)):
        return [t for v in x for t in _tensors(v)]
    return []


class Recorder:
    """Record the initializing writes of the code run inside it (under a FakeTensorMode it enters,
    unless ``fake=False``: then the tensors are real and only the recording is added)."""

    def __init__(self, fake: bool = True) -> None:
        self.fake = fake
        self.stores: dict[int, _Store] = {}
        self.failures: list[str] = []
        self.trunc_normal_calls = 0
        self.seeds: dict[str, tuple[tuple[bool, int], ...]] = {}  # per parameter: the draws behind its law
        self.registered: set[int] = set()  # every storage a module ever held as a parameter or buffer
        self._info: dict[Any, tuple] = {}
        self._modes: list[Any] = []
        self._hooks: list[Any] = []

    # --- the context ---------------------------------------------------------------------

    def __enter__(self) -> Recorder:
        import torch
        from torch._subclasses.fake_tensor import FakeTensorMode

        self._stack = Stack()
        self._default_gen = torch.default_generator
        self._saved_trunc = torch.nn.init._no_grad_trunc_normal_
        torch.nn.init._no_grad_trunc_normal_ = self._trunc_normal
        module = torch.nn.modules.module
        self._hooks = [module.register_module_parameter_registration_hook(self._registered),
                       module.register_module_buffer_registration_hook(self._registered)]
        if self.fake:
            self._modes.append(FakeTensorMode())
        self._modes.append(_mode_class()(self))
        self._warnings = warnings.catch_warnings()
        self._warnings.__enter__()
        # torch's own deepcopy of a parameter asks a FakeTensor for its data pointer (torch/_tensor.py)
        warnings.filterwarnings("ignore", message="Accessing the data pointer of FakeTensor")
        for m in self._modes:
            m.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        import torch

        while self._modes:
            self._modes.pop().__exit__(*exc)
        while self._hooks:
            self._hooks.pop().remove()
        self._warnings.__exit__(*exc)
        torch.nn.init._no_grad_trunc_normal_ = self._saved_trunc

    def _registered(self, module: Any, name: str, tensor: Any) -> None:
        """A module took a tensor as a parameter or buffer: its writes reached the model, even if a later
        assignment (a tied head, a re-made parameter) replaces it."""
        if tensor is not None:
            self.registered.add(_key(tensor))

    def _trunc_normal(self, tensor: Any, mean: float, std: float, a: float, b: float, generator: Any = None) -> Any:
        """torch <= 2.11's ``_no_grad_trunc_normal_``, the inverse-CDF form (the same code as timm 1.0.31's
        ``timm/layers/weight_init.py`` ``_trunc_normal_``, lines 19-51, "cut & paste from PyTorch")."""
        import torch

        self.trunc_normal_calls += 1

        def norm_cdf(x: float) -> float:
            return (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0

        with torch.no_grad():
            lo, hi = norm_cdf((a - mean) / std), norm_cdf((b - mean) / std)
            tensor.uniform_(2 * lo - 1, 2 * hi - 1, generator=generator)
            tensor.erfinv_()
            tensor.mul_(std * math.sqrt(2.0))
            tensor.add_(mean)
            tensor.clamp_(min=a, max=b)
            return tensor

    # --- one operation ---------------------------------------------------------------------

    def _classify(self, func: Any) -> tuple:
        schema = func._schema
        name = func.overloadpacket.__name__
        args = tuple((a.name, a.default_value if a.has_default_value() else None) for a in schema.arguments)
        written = [a.name for a in schema.arguments if a.alias_info is not None and a.alias_info.is_write]
        if name.startswith("_local_scalar") or func.namespace == "prim" or name in O.METADATA:
            kind = "skip"
        elif written:
            kind = "inplace" if written[0] == args[0][0] else "out"
        elif func.is_view and name not in ("lift_fresh",):  # lift_fresh brings a real tensor in: a new storage
            kind = "skip"
        else:
            kind = "func"
        info = (kind, name, args, written[0] if written else None)
        self._info[func] = info
        return info

    def on(self, func: Any, args: tuple, kwargs: dict[str, Any], out: Any) -> None:
        info = self._info.get(func) or self._classify(func)
        kind, name, names, target_name = info
        if kind == "skip":
            return
        a = {n: (args[i] if i < len(args) else kwargs.get(n, d)) for i, (n, d) in enumerate(names)}
        try:
            if kind == "inplace":
                self._write(name, a[target_name], a, func)
            elif kind == "out":
                self._set(a[target_name], self._compute(name, a, out), name, "set")
            else:
                self._make(name, a, out, func, args, kwargs)
        except Exception as e:  # noqa: BLE001 - a recorder gap never breaks the build; it makes the law opaque
            self.failures.append(f"{name}: {type(e).__name__}: {e}")
            why = O.Value(L.opaque(f"the recorder could not follow {name}"), True, (name,))
            for t in _tensors(a.get(target_name) if kind != "func" else out):
                self._set(t, why, name, "set")

    def _store(self, t: Any) -> _Store:
        k = _key(t)
        st = self.stores.get(k)
        if st is None:  # made before the trace began (a real tensor lifted in, a module built outside)
            storage = t.untyped_storage()
            st = self.stores[k] = _Store(storage, storage.nbytes())
            st.writes.append(_Raw(0, st.nbytes, True, O.Value(L.opaque("made outside the trace"), False), None, (),
                                  "make"))
        return st

    def value_of(self, t: Any) -> O.Value:
        st = self._store(t)
        start, end, _ = _extent(t)
        for w in reversed(st.writes):
            if _covers(w, start, end) or (w.kind == "make" and w.start <= start and end <= w.end):
                return w.value
            if _overlaps(w, start, end):
                parts = [w.value for w in st.writes if _overlaps(w, start, end)]
                return O.mixed("written in parts", parts)
        return O.Value(L.UNWRITTEN, False)

    def _seeded(self, v: O.Value, gen: Any) -> O.Value:
        g = gen if gen is not None else self._default_gen
        return dataclasses.replace(v, seeds=((g is self._default_gen, int(g.initial_seed())),))

    def _make(self, name: str, a: dict[str, Any], out: Any, func: Any = None, args: tuple = (),
              kwargs: dict | None = None) -> None:
        outs = _tensors(out)
        if not outs:
            return
        inputs = [t for v in a.values() for t in _tensors(v)]
        in_keys = {_key(t) for t in inputs}
        reals = None
        for i, o in enumerate(outs):
            k = _key(o)
            if k in in_keys:
                continue  # an alias of an input: no new storage
            value = self._compute(name, a, o)
            copy_of = None
            if name in ("clone", "_to_copy", "copy", "lift_fresh_copy") and inputs:
                copy_of = self._copy_root(inputs[0])
            storage = o.untyped_storage()
            st = self.stores[k] = _Store(storage, storage.nbytes(), sources=in_keys)
            site, decl = self._stack.read(1) if value.law.kind != "unwritten" else (None, ())
            st.writes.append(_Raw(0, st.nbytes, True, value, site, decl, "make", copy_of, label=name))
            if func is not None and not value.random and value.law.kind in ("constant", "deterministic") \
                    and o.numel() <= REAL_LIMIT:
                if reals is None:
                    reals = self._run_real(name, func, args, kwargs or {}, inputs)
                if reals is not None and i < len(reals):
                    st.real = _layout_like(o, reals[i])

    def _run_real(self, name: str, func: Any, args: tuple, kwargs: dict, inputs: list[Any],
                  raw: bool = False) -> Any:
        """The op run on the real values of its inputs (all small and computed with no random draw)."""
        import torch
        from torch.utils._python_dispatch import _disable_current_modes
        from torch.utils._pytree import tree_map

        if name in ("lift_fresh", "lift_fresh_copy") and inputs and not _is_fake(inputs[0]):
            with _disable_current_modes():
                return [inputs[0].detach().clone()]
        missing = []

        def real(x: Any) -> Any:
            if isinstance(x, torch.Tensor):
                r = self.real_of(x)
                if r is None:
                    missing.append(x)
                return r
            return x

        r_args, r_kwargs = tree_map(real, args), tree_map(real, kwargs)
        if missing:
            return None
        try:
            with _disable_current_modes():
                out = func(*r_args, **r_kwargs)
        except Exception:  # noqa: BLE001 - values the trace cannot compute stay unknown (the build may then stop)
            return None
        return out if raw else _tensors(out)

    def computed(self, func: Any, args: tuple, kwargs: dict) -> Any:
        """An op whose output a shape-only tensor cannot give (``unique``: its shape depends on the
        values), run on real inputs where the trace has them all; its outputs then become shape-only
        tensors again.  None when an input's values are unknown."""
        from torch.utils._pytree import tree_map

        inputs = [t for v in (*args, *kwargs.values()) for t in _tensors(v)]
        real = self._run_real(func.overloadpacket.__name__, func, args, kwargs, inputs, raw=True)
        if real is None:
            return None
        import torch

        fake = self._modes[0]
        return tree_map(lambda r: fake.from_tensor(r) if isinstance(r, torch.Tensor) else r, real)

    def real_of(self, t: Any) -> Any:
        """The real values of a fake tensor, where its storage has them (else None)."""
        st = self.stores.get(_key(t))
        if st is None or st.real is None or st.real.dtype != t.dtype:
            return None
        from torch.utils._python_dispatch import _disable_current_modes

        with _disable_current_modes():
            return st.real.as_strided(tuple(t.shape), tuple(t.stride()), t.storage_offset())

    def _compute(self, name: str, a: dict[str, Any], out: Any) -> O.Value:
        made = O.made(name, a)
        if made is not None:
            return self._seeded(made, a.get("generator")) if made.random else made
        inputs = [t for v in a.values() for t in _tensors(v)]
        if name in ("lift_fresh", "lift_fresh_copy") and inputs and not _is_fake(inputs[0]):
            from torch.utils._python_dispatch import _disable_current_modes

            with _disable_current_modes():
                return O.literal(inputs[0])
        if name in O.SAME and inputs:
            return self.value_of(inputs[0])
        if name in O.AFFINE and inputs:
            return O.affine_of(name, a, self.value_of(a.get("self", inputs[0])), self.value_of)
        if name in O.REARRANGE and inputs:
            tensors = [t for v in (a.get("self"), a.get("tensors"), a.get("input")) for t in _tensors(v)] or inputs[:1]
            return O.rearranged(name, a, [self.value_of(t) for t in tensors])
        return O.mixed(name, [self.value_of(t) for t in inputs])

    def _copy_root(self, src: Any) -> int:
        """Where copied values come from: the storage they were first copied out of."""
        st = self._store(src)
        start, end, _ = _extent(src)
        for w in reversed(st.writes):
            if w.start <= start and end <= w.end and w.dense:
                return w.copy_of if w.copy_of is not None else _key(src)
        return _key(src)

    def _write(self, name: str, t: Any, a: dict[str, Any], func: Any) -> None:
        others = [x for k, v in a.items() if k != "self" for x in _tensors(v)]
        kind, copy_of = "set", None
        if name in O.DRAWS or name in O.OTHER_DRAWS:
            value = self._seeded(O.draw(name, a), a.get("generator"))
        elif name == "zero_":
            value = O.Value(L.constant(0.0), False, ("zero_",))
        elif name == "fill_":
            s = O.scalar(a.get("value"), self.value_of)
            value = O.Value(L.constant(s), False, (f"fill_({s:.6g})",)) if s is not None else \
                O.mixed("fill_", [self.value_of(x) for x in others])
        elif name == "copy_":
            src = a["src"]
            value = self.value_of(src)
            if src.numel() != t.numel() and value.random:
                value = O.Value(L.opaque("copy_ broadcasts random values"), True, (*value.ops, "copy_"), value.seeds)
            else:
                value = dataclasses.replace(value, ops=(*value.ops, "copy_")[-12:])
                copy_of = self._copy_root(src)
        elif name in O.SELECTIVE:
            kind = "select"
            fill = a.get("value", a.get("values", a.get("src", a.get("source"))))
            s = O.scalar(fill, self.value_of)
            if a.get("accumulate"):
                value = O.mixed(name, [self.value_of(t), *(self.value_of(x) for x in others)])
            elif s is not None:
                value = O.Value(L.constant(s), False, (name,))
            elif hasattr(fill, "shape"):
                value = dataclasses.replace(self.value_of(fill), ops=(name,))
            else:
                value = O.mixed(name, [self.value_of(x) for x in others])
        elif name in O.MAPS:
            kind = "map"
            value = O.affine_of(name, a, self.value_of(t), self.value_of)
        else:
            kind = "map"
            value = O.mixed(name, [self.value_of(t), *(self.value_of(x) for x in others)])
        self._set(t, value, name, kind, copy_of, sources={_key(x) for x in others})

    def _set(self, t: Any, value: O.Value, name: str, kind: str, copy_of: int | None = None,
             sources: set[int] | None = None) -> None:
        st = self._store(t)
        st.real = None  # the values changed: the trace does not follow them
        if sources:
            st.sources |= sources - {_key(t)}
        start, end, dense = _extent(t)
        site, decl = self._stack.read(1)
        whole = start == 0 and end == st.nbytes and dense
        view = None if whole else (t.storage_offset(), tuple(t.shape), tuple(t.stride()), t.element_size())
        last = st.writes[-1] if st.writes else None
        if kind == "map" and last is not None and last.kind in ("set", "map", "make") and last.site == site \
                and (last.start, last.end, last.dense) == (start, end, dense):
            # one call's chain (trunc_normal_: uniform_, erfinv_, mul_, add_, clamp_) is one write
            st.writes[-1] = dataclasses.replace(last, value=value, names=last.names or decl)
            return
        st.writes.append(_Raw(start, end, dense, value, site, decl, kind, copy_of, view, name))

    # --- the result ------------------------------------------------------------------------

    def recording(self, model: Any, layout: str | None = None) -> Recording:
        """What the trace knows of every parameter of ``model`` (built inside this recorder)."""
        from initspec.audit.group import fans_of
        from initspec.audit.walkers import torch as walker

        tensors = {}
        for mname, module in model.named_modules(remove_duplicate=False):
            for role, p in module.named_parameters(prefix="", recurse=False):
                tensors[f"{mname}.{role}" if mname else role] = p
        params = []
        for p in walker.walk(model):
            t = tensors[p.path]
            params.append(dataclasses.replace(p, values=_unavailable, storage=(_key(t), t.storage_offset())))
        by_key: dict[int, str] = {}
        for p in params:
            by_key.setdefault(p.storage[0], p.path)
        traced = {}
        for i, p in enumerate(params):
            _, fi, fo = fans_of(p, layout or "torch")
            traced[p.path] = self._reduce(p.path, tensors[p.path], p.default, fi, fo, by_key)
            params[i] = dataclasses.replace(p, uninitialized=traced[p.path].law.kind == "unwritten")
        roots = set(by_key) | self.registered | {_key(b) for _, b in model.named_buffers(remove_duplicate=False)}
        lost = self._lost(self._ancestors(roots), by_key)
        notes = []
        if self.trunc_normal_calls:
            notes.append(f"trunc_normal_ traced through its inverse-CDF form ({self.trunc_normal_calls} call(s)): "
                         "torch >= 2.12 samples it by rejection, a loop on the values a shape-only build has not")
        notes += [f"recorder gap: {f}" for f in dict.fromkeys(self.failures)]
        return Recording(FRAMEWORK, params, traced, lost, notes)

    def _reduce(self, path: str, t: Any, default: str | None, fan_in: float, fan_out: float,
                by_key: dict[int, str]) -> Traced:
        st = self.stores.get(_key(t))
        if st is None:
            return Traced(path, L.opaque("a parameter the trace never saw made"))
        start, end, _ = _extent(t)
        writes: list[Write] = []
        law, copy_of, seeds = L.UNWRITTEN, None, ()
        for w in st.writes:
            if not _overlaps(w, start, end):
                continue
            whole = _covers(w, start, end) or (w.kind == "make" and w.start <= start and end <= w.end)
            if whole:
                law, seeds = w.value.law, w.value.seeds
                if w.kind != "map":  # a map of copied values (a scaled copy) still is the copy
                    copy_of = w.copy_of
            if w.value.law.kind == "unwritten":
                continue
            declared, named = _declared(w.names, w.value.law, default, fan_in, fan_out)
            region = None if whole else _region(w, start, t)
            writes.append(Write(w.value.law, w.site, w.value.ops, declared, region, named=named,
                                composes=whole and w.kind == "map"))
        if law.kind == "unwritten":
            law, seeds, parts = _law_of_parts(st.writes, start, end, law, seeds)
            if parts:  # written part by part: one write of the law, at the line of the last part
                w = parts[0]
                declared, named = _declared(w.names, law, default, fan_in, fan_out)
                writes = [Write(law, w.site, w.value.ops, declared, None, named=named)]
            else:
                writes = [w for w in writes if w.region is not None]
        source = by_key.get(copy_of) if copy_of is not None else None
        self.seeds[path] = seeds
        return Traced(path, law, writes, copy_of=source if source != path else None)

    def _ancestors(self, roots: set[int]) -> set[int]:
        seen, todo = set(), list(roots)
        while todo:
            k = todo.pop()
            if k in seen:
                continue
            seen.add(k)
            st = self.stores.get(k)
            if st is not None:
                todo += list(st.sources)
                todo += [w.copy_of for w in st.writes if w.copy_of is not None]
        return seen

    def _lost(self, reached: set[int], by_key: dict[int, str]) -> list[Write]:
        """Initializing writes (a named initializer, or a draw or fill in an init method) to storage
        that never reaches a parameter or buffer."""
        lost = []
        for k, st in self.stores.items():
            if k in reached:
                continue
            ancestors = self._ancestors(st.sources)
            made_from = [path for key, path in by_key.items() if key in ancestors]  # in the model's order
            target = f"a tensor computed from {', '.join(made_from[:3])}" if made_from else "a temporary tensor"
            for w in st.writes:
                if w.kind == "make" or w.value.law.kind == "unwritten":
                    continue
                init_fn = w.site is not None and ("init" in w.site.function or "reset_param" in w.site.function)
                if w.names or (init_fn and w.label in (*O.DRAWS, "fill_", "zero_")):
                    names = tuple(n for n in w.names if n != LAYER_DEFAULT)
                    lost.append(Write(w.value.law, w.site, w.value.ops, names[0] if names else None, named=names,
                                      target=target))
        return lost


def _law_of_parts(raws: list[_Raw], start: int, end: int, law: L.Law,
                  seeds: tuple) -> tuple[L.Law, tuple, list[_Raw]]:
    """A tensor no single write covers, written part by part (timm's CondConv initializes each
    expert through ``weight[i].view(shape)``): where the last dense writes of its parts cover it,
    their law if they all write the same one, else opaque, and those writes (the last first);
    uncovered, ``law`` (unwritten) as it was and no writes."""
    covered: list[tuple[int, int]] = []  # byte ranges a later write already set
    visible = []
    for w in reversed(raws):
        if not (w.dense and w.kind != "select" and _overlaps(w, start, end)):
            continue
        lo, hi = max(w.start, start), min(w.end, end)
        if _reach(covered, lo) >= hi:
            continue  # shadowed: later writes set every byte of it
        covered.append((lo, hi))
        visible.append(w)
    if not visible or _reach(covered, start) < end or any(w.value.law.kind == "unwritten" for w in visible):
        return law, seeds, []
    first = visible[0].value.law
    every = tuple(dict.fromkeys(s for w in visible for s in w.value.seeds))
    if all(L.same_law(w.value.law, first) for w in visible):
        return first, every, visible
    return L.opaque(f"{len(visible)} parts written with different laws"), every, visible


def _reach(ranges: list[tuple[int, int]], start: int) -> int:
    """How far from ``start`` the union of the byte ranges runs without a gap."""
    reach = start
    for a, b in sorted(ranges):
        if a > reach:
            break
        reach = max(reach, b)
    return reach


@functools.lru_cache(maxsize=4096)
def _declared(names: tuple[str, ...], law: L.Law, default: str | None, fan_in: float,
              fan_out: float) -> tuple[str | None, tuple[str, ...]]:
    """The outermost name the code used whose law on these fans is the traced law, and all names."""
    from initspec.spec.schemes import resolve

    resolved = tuple(dict.fromkeys(n for n in ((default if n == LAYER_DEFAULT else n) for n in names) if n))
    for expr in resolved:
        try:
            ref = L.from_scheme(expr, fan_in, fan_out)
            kind = resolve(expr).kind
        except Exception:  # noqa: BLE001 - a name the spec cannot read is listed, never chosen
            continue
        if L.same_law(ref, law) or (kind in _STRUCTURED and not law.exact):
            return expr, resolved
    return None, resolved


def _region(w: _Raw, start: int, t: Any) -> str:
    """The part of the parameter a write covered, in its own indices where they are plain."""
    if w.kind == "select":
        return f"elements chosen by {w.label}"
    size = t.element_size()
    shape = tuple(t.shape)
    lo = max(w.start, start) - start
    first, n = lo // size, (min(w.end, start + t.numel() * size) - max(w.start, start)) // size
    if w.dense and len(shape) >= 1:
        row = math.prod(shape[1:]) if len(shape) > 1 else 1
        if len(shape) > 1 and first % row == 0 and n % row == 0:
            i, j = first // row, first // row + n // row - 1
            return f"row {i}" if i == j else f"rows {i}..{j}"
        if n == 1:
            idx = []
            for d in reversed(shape):
                idx.append(first % d)
                first //= d
            return f"element ({', '.join(map(str, reversed(idx)))})"
        return f"{n} of {t.numel()} elements"
    if w.view is not None:
        return f"a strided view {list(w.view[1])}"
    return "a part"


def _layout_like(fake: Any, real: Any) -> Any:
    """``real``'s values laid out in a flat tensor the size of ``fake``'s storage, where ``fake`` has them."""
    import torch
    from torch.utils._python_dispatch import _disable_current_modes

    with _disable_current_modes():
        flat = torch.empty(fake.untyped_storage().nbytes() // fake.element_size(), dtype=fake.dtype)
        flat.as_strided(tuple(fake.shape), tuple(fake.stride()), fake.storage_offset()).copy_(real)
    return flat


def _unavailable() -> Any:
    raise RuntimeError("a traced parameter has no values: the trace allocates nothing")


def _is_fake(t: Any) -> bool:
    from torch._subclasses.fake_tensor import is_fake

    return bool(is_fake(t))


_MODE: list[Any] = []
_SCALAR: list[Any] = []


def _mode_class() -> Any:
    """The TorchDispatchMode subclass (made once torch is imported)."""
    if _MODE:
        return _MODE[0]
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    _SCALAR.append(torch.ops.aten._local_scalar_dense.default)

    class _RecordingMode(TorchDispatchMode):
        def __init__(self, recorder: Recorder) -> None:
            super().__init__()
            self.recorder = recorder

        def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
            kwargs = kwargs or {}
            if func is _SCALAR[0]:  # the code reads a value: the trace has it if no random draw made it
                real = self.recorder.real_of(args[0])
                if real is not None:
                    from torch.utils._python_dispatch import _disable_current_modes

                    with _disable_current_modes():
                        return real.item()
            try:
                out = func(*args, **kwargs)
            except Exception as e:  # a shape or value a shape-only tensor cannot give: computed if the values are known
                if type(e).__name__ not in ("DataDependentOutputException", "DynamicOutputShapeException") \
                        or not self.recorder.fake:
                    raise
                out = self.recorder.computed(func, args, kwargs)
                if out is None:
                    raise
            self.recorder.on(func, args, kwargs, out)
            return out

    _MODE.append(_RecordingMode)
    return _RecordingMode
