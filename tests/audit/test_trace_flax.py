"""The traced audit for JAX and Flax (env flax): each output of an initialization's jaxpr traced back
to its random source and reduced to an exact law, with the line that set it -- nothing allocated.

No statistics here: a trace is exact (the law algebra's ``same_law``) or says ``opaque``.  The
recorder's rules are checked against JAX's own initializers (every entry of adapters/jax.toml:
the law each documents), then on models with one bug each and a correct twin -- nnx, linen and
a pytree -- and on a model too large for memory.
"""

from __future__ import annotations

import json
import math
import resource
import sys
import tomllib
from pathlib import Path

import pytest

pytest.importorskip("flax")

import jax
import jax.numpy as jnp
from flax import nnx

from initspec.audit.spec import parse_spec
from initspec.audit.targets import AuditTarget, BuildError
from initspec.audit.trace import NotThisFramework
from initspec.audit.trace import laws as L
from initspec.audit.trace.flax import trace as trace_flax
from initspec.audit.trace.jax import trace as trace_jax
from initspec.audit.trace.jax import trace_initializer
from initspec.errors import InputError
from initspec.frameworks.manifest import load_manifest, manifest_path
from initspec.frameworks.target import parse_target
from initspec.spec.schemes import resolve

sys.path.insert(0, str(Path(__file__).parent))
from flax_models import D, LinenNet, Model, pytree_params
from trace_checks import cloned, seed_ignored, verdicts

HERE = Path(__file__).read_text().splitlines()
MODELS = (Path(__file__).parent / "flax_models.py").read_text().splitlines()


def line_of(tag: str, lines: list[str] = MODELS) -> int:
    """The line of flax_models.py (or ``lines``) that carries ``# site: tag``: where provenance must point."""
    return next(i for i, text in enumerate(lines, 1) if text.rstrip().endswith(f"# site: {tag}"))


# --- the recorder's rules on JAX's own initializers ----------------------------------------

ENTRIES = load_manifest(manifest_path("jax")).entries


def _initializer(entry):
    t = parse_target(entry.call)
    obj = t.load()
    return obj(*t.args, **t.kwargs) if t.has_call else obj


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.id for e in ENTRIES])
def test_each_jax_initializer_traces_to_its_documented_law(entry):
    """The traced law is from_scheme of the scheme adapters/jax.toml says the initializer documents
    (two shapes each: different fans), and the scheme the code named gives that law too."""
    init = _initializer(entry)
    for case in entry.cases[:2]:
        fans = case.fans(entry.layout)
        t = trace_initializer(init, case.shape, fans_=fans)
        expected = L.from_scheme(entry.claims, *fans)
        if expected.kind == "opaque":  # orthogonal: a QR, no elementwise law -- the trace says which, and the name
            assert t.law.kind == "opaque" and "qr" in t.law.why
            assert resolve(t.last.declared).params == resolve(entry.claims).params
            assert t.last.named == (t.last.declared,)
            continue
        assert L.same_law(t.law, expected), (case.shape, str(t.law), str(expected))
        declared = t.last.declared
        if expected.kind == "constant":
            assert declared is None  # zeros / ones / constant: the law is the name
        else:
            assert declared is not None and L.same_law(L.from_scheme(declared, *fans), expected)
        assert t.seed_follows is (None if expected.kind == "constant" else True)


def test_declared_names_are_jaxs_presets_in_the_spec_vocabulary():
    init = jax.nn.initializers
    assert trace_initializer(init.lecun_normal(), (64, 32)).last.declared == "lecun_truncated_normal"
    assert trace_initializer(init.he_uniform(), (64, 32)).last.declared == "he_uniform"
    assert trace_initializer(init.glorot_normal(), (64, 32)).last.declared == "glorot_truncated_normal"
    t = trace_initializer(init.variance_scaling(2.0, "fan_in", "normal"), (64, 32))
    assert t.last.declared == "variance_scaling(scale=2.0, mode=fan_in, distribution=normal)"
    # a name is shown only where it is the traced law: he_normal's axes read as a tf kernel on fans it did not use
    t = trace_initializer(init.he_normal(in_axis=1, out_axis=0), (64, 32))
    assert t.last.declared is None and t.law.kind == "truncated_normal"


def test_bfloat16_rounds_the_scale_to_the_dtype():
    """JAX computes he_uniform's limit in the parameter's dtype: sqrt(6/64) = 0.306186 rounds to
    0.306641 in bfloat16.  The trace says so exactly, and keeps the name the code used."""
    t = trace_initializer(jax.nn.initializers.he_uniform(), (64, 32), "bfloat16")
    assert t.law == L.uniform(-0.306640625, 0.306640625)
    assert t.last.declared == "he_uniform"
    assert not L.same_law(t.law, L.from_scheme("he_uniform", 64, 32))


def test_jax_random_samplers_and_arithmetic():
    def f(key):
        k = jax.random.split(key, 5)
        return {"u": jax.random.uniform(k[0], (5,), minval=-2.0, maxval=3.0),
                "n": jax.random.normal(k[1], (4, 4)) * 0.5 + 1.0,
                "t": jax.random.truncated_normal(k[2], -1.0, 2.0, (8,)) * 3.0,
                "c": jnp.clip(jax.random.normal(k[3], (8,)), -1.0, 1.0),  # censored: no law of the vocabulary
                "sin": jnp.sin(jnp.arange(16.0)),
                "sq": jax.random.normal(k[4], (3,)) ** 2}

    t = trace_jax(AuditTarget("f", f, "module", "jax")).traced
    assert t["u"].law == L.uniform(-2.0, 3.0)
    assert L.same_law(t["n"].law, L.normal(1.0, 0.5))
    assert L.same_law(t["t"].law, L.truncated_normal(0.0, 3.0, -3.0, 6.0))
    assert t["c"].law.kind == "opaque" and "censored" in t["c"].law.why
    assert t["sin"].law.kind == "deterministic" and "sin" in t["sin"].law.why
    assert t["sq"].law.kind == "opaque" and "integer_pow" in t["sq"].law.why


def test_a_bfloat16_normal_is_not_a_normal():
    """jax.random.normal in bfloat16 draws U(nextafter(-1, 0), 1) on a 7-bit grid and erfinv of it
    (jax/_src/random/core.py, _uniform and _normal_real): the uniform's computed range passes 1,
    and the draws take 128 values in [-2.89, 2.52] -- a cut, asymmetric lattice.  The trace says
    opaque (it is no law of the vocabulary); 2^20 real draws show the lattice."""
    def f(key):
        return {"w": jax.random.normal(key, (8, 8), jnp.bfloat16)}

    law = trace_jax(AuditTarget("f", f, "module", "jax")).traced["w"].law
    assert law.kind == "opaque" and "beyond [-1, 1]" in law.why
    x = jax.numpy.asarray(jax.random.normal(jax.random.key(0), (1 << 20,), jnp.bfloat16), jnp.float32)
    assert len(set(x.tolist())) <= 128 and -2.9 < float(x.min()) and float(x.max()) < 2.53


def test_control_flow_on_a_key_is_opaque_naming_it():
    def f(key):
        def body(k, _):
            k, sub = jax.random.split(k)
            return k, jax.random.normal(sub, (4,))
        return {"w": jax.lax.scan(body, key, None, length=3)[1]}

    law = trace_jax(AuditTarget("f", f, "module", "jax")).traced["w"].law
    assert law.kind == "opaque" and "scan" in law.why


# --- a JAX pytree: bug and twin -----------------------------------------------------------

PYTREE_SPEC = parse_spec({"params": {"w": "lecun_normal", "b": "zeros"}})


def pytree(bug: bool):
    return AuditTarget(f"pytree({bug})", pytree_params(bug), "module", "jax")


@pytest.mark.parametrize("bug", [True, False])
def test_pytree_std_as_variance_and_its_twin(bug):
    rec = trace_jax(pytree(bug))
    assert rec.framework == "jax"
    assert verdicts(rec, parse_spec({"params": {"w": "lecun_normal", "b": "zeros"}})) == \
        {"w": "fail" if bug else "pass", "b": "pass"}
    w = rec.traced["w"]
    assert L.same_law(w.law, L.normal(0.0, 1 / 64 if bug else 1 / 8))
    assert w.last.site.line == line_of("pytree w (bug: the variance as std)")
    assert w.last.site.function == "pytree_params.<locals>.params" and w.last.site.file.endswith("flax_models.py")
    assert seed_ignored(rec) == {"fixed"}  # jax.random.key(0) inside f: the run's key never reaches it
    assert cloned(rec) == {"reused", "again"}  # one key, one sampler, one shape: the same values
    pad = rec.traced["pad"]  # a padding row: the law of the rest, and the row written after it
    assert L.same_law(pad.law, L.normal(0.0, 0.02))
    assert [(w.region, w.law) for w in pad.regions] == [("indices [0], update shape (4,)", L.constant(0.0))]
    assert not rec.lost


def test_an_update_never_assigned_back_is_lost():
    """JAX arrays are immutable: ``w.at[0].set(0)`` makes a new array, and one not assigned back never
    reaches the model.  The trace lists it as a write that reached no parameter, with its line."""
    def params(key):
        w = jax.random.normal(key, (10, 4)) * 0.02
        w.at[0].set(0.0)  # site: dropped update
        return {"w": w}

    rec = trace_jax(AuditTarget("params", params, "module", "jax"))
    (lost,) = rec.lost
    assert lost.law == L.constant(0.0) and lost.region == "indices [0], update shape (4,)"
    assert lost.target == "a copy updated at indices [0], update shape (4,) that was never assigned back"
    assert lost.site.line == line_of("dropped update", HERE)
    assert not rec.traced["w"].regions and L.same_law(rec.traced["w"].law, L.normal(0.0, 0.02))


# --- Flax nnx: bug and twin ----------------------------------------------------------------

def nnx_target(bug: str = "", **kwargs):
    def factory(**extra):
        return Model(bug, **kwargs, **extra)

    factory.callee = Model
    return AuditTarget(f"Model({bug!r})", factory, "module", "flax")


NNX_SPEC_TOML = f"""
[vars]
d = {D}
[params]
"blocks.*.fc.kernel" = "he_normal"
"blocks.*.proj.kernel" = "zeros"
"*.bias" = "zeros"
"head.kernel" = "normal(std=1 / sqrt(d))"
"""
NNX_SPEC = parse_spec(tomllib.loads(NNX_SPEC_TOML))


@pytest.mark.parametrize("bug", ["gain", "zero", "variance", ""])
def test_nnx_bug_and_twin(bug):
    """Each bug fails exactly its own rule; the twin passes every rule."""
    rec = trace_flax(nnx_target(bug), 0)
    rule = {"gain": "blocks.*.fc.kernel", "zero": "blocks.*.proj.kernel", "variance": "head.kernel"}.get(bug)
    expected = {r.glob: "fail" if r.glob == rule else "pass" for r in NNX_SPEC.rules}
    assert verdicts(rec, NNX_SPEC) == expected


def test_nnx_laws_lines_and_declared_names():
    rec = trace_flax(nnx_target("gain,zero"), 0)
    fc, proj, head = (rec.traced[p] for p in ("blocks.1.fc.kernel", "blocks.1.proj.kernel", "head.kernel"))
    assert L.same_law(fc.law, L.normal(0.0, 1 / 8))  # lecun_normal's variance 1/64: the gain 2 missing
    assert fc.last.declared == "variance_scaling(scale=1.0, mode=fan_in, distribution=normal)"  # as the code said
    assert fc.last.site.line == line_of("nnx fc (bug: the gain forgotten)")
    assert proj.last.declared == "lecun_truncated_normal" and proj.last.site.line == line_of(
        "nnx proj (bug: zero-init never ran)")
    assert head.last.declared == "normal(std=0.125)" and head.last.site.line == line_of("nnx head")
    assert rec.traced["blocks.0.fc.bias"].law == L.constant(0.0)
    assert {p.path for p in rec.params} == set(rec.traced)
    assert rec.traced["blocks.2.fc.kernel"].seed_follows is True and not cloned(rec)


class Cloned(nnx.Module):
    def __init__(self, private: bool = False, *, rngs: nnx.Rngs):
        first = nnx.Linear(8, 8, rngs=nnx.Rngs(1234) if private else rngs)
        self.layers = nnx.List([first, nnx.clone(first), nnx.Linear(8, 8, rngs=rngs)])


def test_nnx_clone_and_a_private_seed():
    def factory(**extra):
        return Cloned(**extra)

    factory.callee = Cloned
    rec = trace_flax(AuditTarget("Cloned", factory, "module", "flax"), 0)
    assert cloned(rec) == {"layers.0.kernel", "layers.1.kernel"} and not seed_ignored(rec)

    def private(**extra):
        return Cloned(True, **extra)

    private.callee = Cloned
    rec = trace_flax(AuditTarget("Cloned(True)", private, "module", "flax"), 0)
    assert seed_ignored(rec) == {"layers.0.kernel", "layers.1.kernel"}  # nnx.Rngs(1234): not the run's key


# --- Flax linen: bug and twin --------------------------------------------------------------


@pytest.mark.parametrize("bug", [True, False])
def test_linen_gain_forgotten_and_its_twin(bug):
    rec = trace_flax(AuditTarget("LinenNet", lambda: LinenNet(bug)), 0, input_shape=(1, 16))
    spec = parse_spec({"params": {"Dense_0.kernel": "he_truncated_normal", "Dense_1.kernel": "zeros",
                                  "*.bias": "zeros"}})
    assert verdicts(rec, spec) == {"Dense_0.kernel": "fail" if bug else "pass", "Dense_1.kernel": "pass",
                                   "*.bias": "pass"}
    t = rec.traced["Dense_0.kernel"]
    assert t.last.declared == ("lecun_truncated_normal" if bug else "he_truncated_normal")
    assert t.last.site.line == line_of("linen dense") and t.last.site.function == "LinenNet.__call__"


def test_linen_needs_an_input_shape_and_a_broken_model_is_a_build_error():
    with pytest.raises(InputError, match="--input-shape"):
        trace_flax(AuditTarget("LinenNet", LinenNet), 0)

    def broken(key):
        raise RuntimeError("no")

    with pytest.raises(BuildError, match="RuntimeError: no"):
        trace_jax(AuditTarget("broken", broken, "module", "jax"))
    # not a --convention jax target, or not a Flax model: the audit offers it to the next recorder
    with pytest.raises(NotThisFramework):
        trace_jax(AuditTarget("broken", broken))
    with pytest.raises(NotThisFramework):
        trace_flax(AuditTarget("a dict", lambda: {"w": 1.0}), 0)


# --- scale: a model that does not fit in memory --------------------------------------------


class Huge(nnx.Module):
    def __init__(self, *, rngs: nnx.Rngs):
        self.layers = nnx.List([nnx.Linear(50_000, 50_000, rngs=rngs) for _ in range(12)])


def test_a_model_too_large_for_memory_is_traced_without_allocating():
    """12 Linear(50000, 50000) layers: 30e9 float32 parameters, 120 GB -- more than this machine
    has.  make_jaxpr allocates nothing and the interpreter computes no array of that size: the
    process's peak memory grows by far less than one layer (10 GB).  (Its speed: docs/guides/trace-jax-keras.md.)"""
    def factory(**extra):
        return Huge(**extra)

    factory.callee = Huge
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    rec = trace_flax(AuditTarget("Huge", factory, "module", "flax"), 0)
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    total = sum(math.prod(p.shape) * 4 for p in rec.params)
    assert total > 100e9 and grown < 1 << 20  # < 1 GiB
    lecun = L.from_scheme("lecun_truncated_normal", 50_000, 50_000)
    assert all(L.same_law(rec.traced[f"layers.{i}.kernel"].law, lecun) for i in range(12))
    assert rec.traced["layers.11.bias"].law == L.constant(0.0)


# --- the command line: initspec audit TARGET --trace -----------------------------------------


def audit_json(run_cli, tmp_path, *args):
    out = tmp_path / "audit.json"
    code, text, err = run_cli("audit", *args, "--json", str(out))
    assert "Traceback" not in text + err
    doc = json.loads(out.read_text())
    return code, text, doc, {r["group"]: r for r in doc["results"]}


@pytest.mark.parametrize("bug", ["gain", ""])
def test_cli_trace_nnx_bug_and_twin(run_cli, tmp_path, bug):
    spec = tmp_path / "spec.toml"
    spec.write_text(NNX_SPEC_TOML)
    code, text, doc, groups = audit_json(run_cli, tmp_path, f"flax_models:Model(bug={bug!r})", "--trace",
                                         "--spec", str(spec))
    assert doc["sources"] == ["trace"] and code == (1 if bug else 0), text
    fc = groups["blocks.*.fc.kernel"]
    assert fc["verdict"] == ("fail" if bug else "pass")
    assert {g["verdict"] for n, g in groups.items() if n != "blocks.*.fc.kernel"} == {"pass"}
    assert fc["traced"]["site"]["line"] == line_of("nnx fc (bug: the gain forgotten)")
    if bug:
        assert fc["diagnosis"][0]["id"] == "wrong_scale" and "the variance off by 1/2" in text


@pytest.mark.parametrize("bug", [True, False])
def test_cli_trace_linen_bug_and_twin(run_cli, tmp_path, bug):
    spec = tmp_path / "spec.toml"
    spec.write_text('[params]\n"Dense_0.kernel" = "he_truncated_normal"\n"Dense_1.kernel" = "zeros"\n'
                    '"*.bias" = "zeros"\n')
    code, text, doc, groups = audit_json(run_cli, tmp_path, f"flax_models:LinenNet(bug={bug})", "--trace",
                                         "--input-shape", "1,16", "--spec", str(spec))
    assert code == (1 if bug else 0) and doc["sources"] == ["trace"], text
    assert groups["Dense_0.kernel"]["verdict"] == ("fail" if bug else "pass")
    assert groups["Dense_0.kernel"]["traced"]["site"]["line"] == line_of("linen dense")


@pytest.mark.parametrize("bug", [True, False])
def test_cli_trace_pytree_bug_and_twin(run_cli, tmp_path, bug):
    spec = tmp_path / "spec.toml"
    spec.write_text('[params]\n"w" = "lecun_normal"\n"b" = "zeros"\n')
    code, text, doc, groups = audit_json(run_cli, tmp_path, f"flax_models:pytree_params({bug})", "--trace",
                                         "--convention", "jax", "--spec", str(spec))
    assert groups["w"]["verdict"] == ("fail" if bug else "pass") and groups["b"]["verdict"] == "pass"
    findings = {f["id"]: f["params"] for f in doc["findings"]}
    assert findings["seed_ignored"] == ["fixed"] and sorted(findings["cloned"]) == ["again", "reused"]
    assert code == 1, text  # the fixed key and the reused key are severe whatever the spec says


def test_cli_default_pytree_findings_from_both_sources(run_cli, tmp_path):
    """A fixed key and a reused key, traced and drawn: the two findings, each once, and no trace_mismatch --
    the same draw under every seed is one draw, not one per seed (the law's tests would claim a power they lack)."""
    code, text, doc, groups = audit_json(run_cli, tmp_path, "flax_models:pytree_params(False)",
                                         "--convention", "jax", "--max-seeds", "2")
    assert doc["sources"] == ["trace", "draws"] and code == 1, text
    assert groups["fixed"]["traced"]["seed_follows"] is False
    assert sorted(f["id"] for f in doc["findings"]) == ["cloned", "seed_ignored"], text
    assert "its key does not descend from the run's" in text


def test_cli_default_uses_the_trace_and_the_draws(run_cli, tmp_path):
    """The correct nnx model, traced and drawn: both sources, every group passes, and the draws agree
    with the traced laws (no trace_mismatch)."""
    spec = tmp_path / "spec.toml"
    spec.write_text(NNX_SPEC_TOML)
    code, text, doc, groups = audit_json(run_cli, tmp_path, "flax_models:Model()", "--spec", str(spec),
                                         "--max-seeds", "2")
    assert doc["sources"] == ["trace", "draws"] and code == 0, text
    assert {g["verdict"] for g in groups.values() if g.get("declared")} == {"pass"} and not doc["findings"]
