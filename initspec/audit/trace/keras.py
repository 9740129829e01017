"""The Keras recorder: the initializer each variable was created with, on any backend, without drawing.

The model is built inside ``keras.StatelessScope(initialize_variables=False)``: Keras's own way
to create variables without values -- each keeps its initializer (``variable._initializer``) and
shape, and no initializer runs (keras/src/backend/common/variables.py:183-188; the scope's exit
would initialize them, which ``initialize_variables=False`` turns off, stateless_scope.py).  The law
of each variable is the initializer's scheme (its class and ``get_config()``, mapped as the Keras
walker maps them: ``initspec.audit.walkers.keras.scheme_of``) on the variable's fans, through the
law algebra (``from_scheme``); an initializer class with no scheme (a custom one) is ``opaque``,
never a guess.  A value ``assign``-ed after creation (``set_weights``, ``kernel.assign(...)``) is
the variable's last write: a constant when every element is equal, else opaque.

Findings the configuration makes exact: an initializer with a fixed ``seed=``, or an unseeded one
made before the build (at a module's import: its seed was drawn before the run set its own),
ignores the run's seed (``seed_follows=False``), and two variables drawn by initializers of one class, config and
resolved integer seed on one shape are identical (``copy_of``) -- Keras 3 resolves ``seed=None``
to one integer per initializer instance (random_initializers.py:10-23), so one unseeded instance
shared by several layers draws the same values for each of them.

Provenance: the first frame outside Keras, the backends and initspec when the variable was
created (the model's ``Dense(...)(x)`` line); a variable created by initspec's own ``build`` (an
unbuilt Sequential) takes the line that constructed its layer.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from initspec.audit.trace import NotThisFramework, Recording, Site, Traced, Write
from initspec.audit.trace import laws as L
from initspec.audit.trace.jax import _unallocated
from initspec.audit.trace.sites import excluded_dirs
from initspec.errors import InputError

FRAMEWORK = "keras"
_PACKAGES = ("keras", "tf_keras", "tensorflow", "torch", "jax", "jaxlib", "optree", "namex")


def _site(exclude: tuple[str, ...], models: tuple[str, ...], stop: Any) -> Site | None:
    """The first frame outside ``exclude`` (or inside ``models``: Keras's own model definitions, as
    a library's modeling file is for torch) below the frame running ``stop`` (initspec's build)."""
    f = sys._getframe(2)
    while f is not None and f.f_code is not stop:
        name = f.f_code.co_filename
        if not name.startswith(exclude) or name.startswith(models):
            return Site(name, f.f_lineno, f.f_code.co_qualname)
        f = f.f_back
    return None


@contextmanager
def _recording(created: dict[int, Site | None], assigned: dict[int, Site | None], layers: dict[int, Site | None],
               fresh: dict[int, Any], stop: Any) -> Iterator[None]:
    """Record where each variable and layer was made, where a variable was assigned, and which random
    initializers and seed generators were made during the build (``fresh``: after the run's seed was set)."""
    from keras.src.backend.common import variables as kv
    from keras.src.initializers import random_initializers as ri
    from keras.src.layers import layer as kl
    from keras.src.random import seed_generator as sg

    exclude = (*excluded_dirs(*_PACKAGES), sysconfig.get_path("stdlib") + os.sep)
    # keras.applications' modules define models (MobileNetV2's layers): their lines are the provenance
    models = tuple(os.path.join(d, "src", "applications", "") for d in excluded_dirs("keras")[1:])
    init, assign, layer_init = kv.Variable.__init__, kv.Variable.assign, kl.Layer.__init__
    random_init, generator_init = ri.RandomInitializer.__init__, sg.SeedGenerator.__init__

    def new_random(self: Any, *args: Any, **kwargs: Any) -> None:
        fresh[id(self)] = self
        random_init(self, *args, **kwargs)

    def new_generator(self: Any, *args: Any, **kwargs: Any) -> None:
        fresh[id(self)] = self
        generator_init(self, *args, **kwargs)

    def var_init(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        created.setdefault(id(self), _site(exclude, models, stop))

    def var_assign(self: Any, value: Any) -> Any:
        assigned[id(self)] = _site(exclude, models, stop)
        return assign(self, value)

    def new_layer(self: Any, *args: Any, **kwargs: Any) -> None:
        layers.setdefault(id(self), _site(exclude, models, stop))
        layer_init(self, *args, **kwargs)

    kv.Variable.__init__, kv.Variable.assign, kl.Layer.__init__ = var_init, var_assign, new_layer
    ri.RandomInitializer.__init__, sg.SeedGenerator.__init__ = new_random, new_generator
    try:
        yield
    finally:
        kv.Variable.__init__, kv.Variable.assign, kl.Layer.__init__ = init, assign, layer_init
        ri.RandomInitializer.__init__, sg.SeedGenerator.__init__ = random_init, generator_init


def _seed_follows(init: Any, fresh: dict[int, Any]) -> bool | None:
    """Whether the initializer's draws follow ``keras.utils.set_random_seed`` (None: not random).

    ``seed=None`` is resolved to an integer from Python's ``random`` when the initializer is made
    (random_initializers.py:10-23, seed_generator.py:62-77): it follows the run's seed only when it
    was made after the run set it -- during the build (``fresh``), not at a module's import."""
    if not hasattr(init, "_init_seed"):
        return None
    given = init._init_seed
    if given is None:
        return id(init) in fresh
    if isinstance(given, int):
        return False
    return getattr(given, "_initial_seed", None) is None and id(given) in fresh  # a SeedGenerator


def _identity(init: Any, shape: tuple[int, ...], dtype: str) -> tuple | None:
    """What fixes an initializer's draw completely: class, config, integer seed, shape, dtype."""
    seed = getattr(init, "seed", None)
    if not isinstance(seed, int) or isinstance(seed, bool):
        return None  # a SeedGenerator advances: every call draws anew
    try:
        config = repr(sorted((k, repr(v)) for k, v in init.get_config().items() if k != "seed"))
    except Exception:  # noqa: BLE001 - no config: the instance itself
        config = str(id(init))
    return type(init), config, seed, shape, dtype


def _initializer_law(init: Any, shape: tuple[int, ...], fan_in: float, fan_out: float
                     ) -> tuple[L.Law, str | None, str]:
    from initspec.audit.walkers.keras import compute_fans, scheme_of

    name = type(init).__name__ if not callable(init) or hasattr(init, "get_config") else \
        getattr(init, "__qualname__", type(init).__name__)  # a plain function (LSTMCell's unit_forget_bias)
    try:
        config = init.get_config()
    except Exception:  # noqa: BLE001 - a custom initializer without a config
        config = {}
    axes = config.get("input_axes"), config.get("output_axes")
    if None not in axes:  # VarianceScaling told its axes (EinsumDense does): its fans, Keras's rule
        try:
            fan_in, fan_out = (float(f) for f in compute_fans(shape, list(axes[0]), list(axes[1])))
        except (TypeError, IndexError):
            return L.opaque(f"{name}: axes {axes} do not fit shape {shape}"), None, name
    op = f"{name}({', '.join(f'{k}={v!r}' for k, v in config.items() if k != 'seed')})"
    try:
        scheme = scheme_of(init)
    except Exception:  # noqa: BLE001 - a config scheme_of cannot read (an array Constant)
        scheme = None
    if scheme is None:
        return L.opaque(f"{name}: an initializer initspec has no law for"), None, op
    from initspec.audit.trace.jax import STRUCTURED
    from initspec.spec.schemes import resolve

    law = L.from_scheme(scheme, fan_in, fan_out)
    return law, (scheme if law.exact or resolve(scheme).kind in STRUCTURED else None), op


def _assigned_law(value: Any) -> L.Law:
    from keras import ops

    try:
        x = np.asarray(ops.convert_to_numpy(value)).reshape(-1)
    except Exception:  # noqa: BLE001 - a value that will not convert
        return L.opaque("assigned a value that could not be read")
    if x.size and np.all(x == x[0]):
        return L.constant(float(x[0]))
    return L.opaque("assigned a computed value after creation")


def trace(target: Any, seed: int = 0, input_shape: tuple[int, ...] | None = None, **options: Any) -> Recording:
    """The laws a Keras model's variables are created with (an AuditTarget or ``MODULE:ATTR`` text)."""
    import keras

    from initspec.audit.targets import build_model, parse_audit_target
    from initspec.audit.walkers import keras as walker

    tgt = parse_audit_target(target) if isinstance(target, str) else target
    created: dict[int, Site | None] = {}
    assigned: dict[int, Site | None] = {}
    layer_sites: dict[int, Site | None] = {}
    fresh: dict[int, Any] = {}
    box: dict[str, Any] = {}

    def build() -> None:
        with keras.StatelessScope(initialize_variables=False) as scope:
            model = tgt.factory()
            box["model"], box["scope"] = model, scope
            if not walker.recognizes(model):
                return
            if not model.built:
                if input_shape is None:
                    raise InputError(f"the Keras {type(model).__name__} is not built: give --input-shape "
                                     "(batch dimension included, e.g. 1,32)")
                model.build(tuple(input_shape))

    keras.backend.clear_session(free_memory=False)  # the walker's fresh names; nothing to free (none allocated)
    keras.utils.set_random_seed(seed)
    try:
        with _recording(created, assigned, layer_sites, fresh, build.__code__):
            build_model(tgt.text, build)
        if not walker.recognizes(box["model"]):  # another framework's model: the audit asks its recorder
            raise NotThisFramework(f"{type(box['model']).__module__}.{type(box['model']).__name__}")
        return _recording_of(box["model"], box["scope"], created, assigned, layer_sites, fresh)
    finally:
        box.clear()
        fresh.clear()
        keras.backend.clear_session(free_memory=False)  # drops the uninitialized variables Keras registered


def _recording_of(model: Any, scope: Any, created: dict[int, Site | None], assigned: dict[int, Site | None],
                  layer_sites: dict[int, Site | None], fresh: dict[int, Any]) -> Recording:
    from dataclasses import replace

    from initspec.audit.walkers import keras as walker

    variables: dict[int, Any] = {}
    owner: dict[int, Any] = {}
    for layer in model._flatten_layers(include_self=True, recursive=True):
        for v in list(layer._trainable_variables) + list(layer._non_trainable_variables):
            variables.setdefault(id(v), v)
            owner.setdefault(id(v), layer)
    params = [replace(p, values=_unallocated(p.path)) for p in walker.walk(model)]
    traced: dict[str, Traced] = {}
    first: dict[tuple, str] = {}
    for p in params:
        v = variables[p.storage[1]]
        site = created.get(id(v)) or layer_sites.get(id(owner[id(v)]))
        init = getattr(v, "_initializer", None)
        if init is None:  # created from a value (outside the scope): nothing to trace
            t = Traced(p.path, L.opaque("created from a value, not an initializer"))
            t.writes.append(Write(t.law, site))
            traced[p.path] = t
            continue
        law, declared, op = _initializer_law(init, p.shape, float(p.fan_in), float(p.fan_out))
        t = Traced(p.path, law, [Write(law, site, (op,), declared, named=(declared,) if declared else ())])
        if law.random:
            t.seed_follows = _seed_follows(init, fresh)
            ident = _identity(init, p.shape, p.dtype)
            if ident is not None:
                twin = first.setdefault(ident, p.path)
                if twin != p.path:
                    t.copy_of = twin
        if id(v) in assigned:
            value = scope.get_current_value(v)
            if value is not None:
                t.law = _assigned_law(value)
                t.writes.append(Write(t.law, assigned[id(v)], ("assign",)))
                t.copy_of = None
                t.seed_follows = None
        traced[p.path] = t
    import keras

    notes = [f"traced in keras.StatelessScope on the {keras.backend.backend()} backend: the initializer of "
             "each variable, none run"]
    return Recording(FRAMEWORK, params, traced, notes=notes)
