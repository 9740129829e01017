"""The traced audit for Keras (envs keras-tensorflow, keras-jax, keras-torch): the initializer each
variable was created with, read inside ``keras.StatelessScope`` where none runs, reduced to an exact
law on the variable's fans.

No statistics: a law is exact or ``opaque``.  One model with a bug per rule and its correct twin,
then the findings the configuration makes exact (an initializer instance shared by two layers
draws the same values; a fixed ``seed=`` ignores the run's seed), provenance, and what is opaque.
"""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from initspec.audit.spec import parse_spec  # noqa: E402
from initspec.audit.targets import AuditTarget, BuildError  # noqa: E402
from initspec.audit.trace import laws as L  # noqa: E402
from initspec.audit.trace.keras import trace  # noqa: E402
from initspec.errors import InputError  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from keras_models import D, model  # noqa: E402
from trace_checks import cloned, seed_ignored, verdicts  # noqa: E402

HERE = Path(__file__).read_text().splitlines()
MODELS = (Path(__file__).parent / "keras_models.py").read_text().splitlines()


def line_of(tag: str, lines: list[str] = MODELS) -> int:
    """The line of keras_models.py (or ``lines``) that carries ``# site: tag``: where provenance must point."""
    return next(i for i, text in enumerate(lines, 1) if text.rstrip().endswith(f"# site: {tag}"))


SPEC_TOML = f"""
[vars]
d = {D}
[params]
"fc_*.kernel" = "he_truncated_normal"
"proj_*.kernel" = "zeros"
"emb_*.kernel" = "normal(std=0.02)"
"*.bias" = "zeros"
"head.kernel" = "normal(std=1 / sqrt(d))"
"""
SPEC = parse_spec(tomllib.loads(SPEC_TOML))


def target(bug: str = "") -> AuditTarget:
    return AuditTarget(f"model({bug!r})", lambda: model(bug))


@pytest.mark.parametrize("bug", ["gain", "zero", "variance", ""])
def test_bug_and_twin(bug):
    """Each bug fails exactly its own rule; the twin passes all of them."""
    rec = trace(target(bug))
    assert rec.framework == "keras"
    rule = {"gain": "fc_*.kernel", "zero": "proj_*.kernel", "variance": "head.kernel"}.get(bug)
    assert verdicts(rec, SPEC) == {r.glob: "fail" if r.glob == rule else "pass" for r in SPEC.rules}
    assert not cloned(rec) and not seed_ignored(rec)


def test_laws_declared_names_and_lines():
    rec = trace(target("gain"))
    fc = rec.traced["fc_1.kernel"]
    assert fc.last.declared == "variance_scaling(scale=1, mode=fan_in, distribution=truncated_normal)"
    assert L.same_law(fc.law, L.from_scheme("lecun_truncated_normal", D, 4 * D))
    assert fc.last.ops[0].startswith("VarianceScaling(scale=1.0, mode='fan_in', distribution='truncated_normal'")
    assert fc.last.site.line == line_of("fc") and fc.last.site.function == "model"
    assert rec.traced["head.kernel"].last.site.line == line_of("head")
    assert rec.traced["proj_0.bias"].law == L.constant(0.0) and rec.traced["proj_0.bias"].seed_follows is None
    assert rec.traced["fc_0.kernel"].seed_follows is True


def test_a_shared_unseeded_initializer_draws_the_same_values_for_each_layer():
    """Keras 3 resolves seed=None to one integer per initializer instance: two layers given one
    instance get identical kernels (checked here with real draws too), and the trace says so."""
    rec = trace(target("shared"))
    assert cloned(rec) == {"emb_0.kernel", "emb_1.kernel"}
    assert rec.traced["emb_1.kernel"].copy_of == "emb_0.kernel"
    keras.utils.set_random_seed(0)
    m = model("shared")
    assert np.array_equal(*(keras.ops.convert_to_numpy(m.get_layer(f"emb_{i}").kernel) for i in range(2)))


def test_a_fixed_seed_ignores_the_runs_seed():
    rec = trace(target("seed"))
    assert seed_ignored(rec) == {"fc_0.kernel", "fc_1.kernel"}
    assert cloned(rec) == {"fc_0.kernel", "fc_1.kernel"}  # one class, config, seed and shape: one draw


AT_IMPORT = keras.initializers.RandomNormal(stddev=0.02)  # seed=None, resolved now: before any run's seed


def test_an_unseeded_initializer_made_at_import_ignores_the_runs_seed():
    """Its seed was drawn from Python's random when this module was imported, before the run set
    its own: every run draws the same values (checked with real draws under two seeds)."""
    def build():
        x = inp = keras.Input((8,))
        return keras.Model(inp, keras.layers.Dense(8, name="d", kernel_initializer=AT_IMPORT)(x))

    assert seed_ignored(trace(AuditTarget("build", build))) == {"d.kernel"}
    kernels = []
    for seed in (0, 1):
        keras.utils.set_random_seed(seed)
        kernels.append(keras.ops.convert_to_numpy(build().get_layer("d").kernel))
    assert np.array_equal(*kernels)


class Custom(keras.initializers.Initializer):
    def __call__(self, shape, dtype=None):
        return keras.random.normal(shape, stddev=0.1, dtype=dtype)


def test_unmapped_initializers_are_opaque_and_assignments_are_the_last_write():
    def build():
        m = keras.Sequential([keras.layers.Dense(8, kernel_initializer=Custom()),
                              keras.layers.Dense(8, kernel_initializer="orthogonal"),
                              keras.layers.Dense(8)])
        m.build((1, 8))
        m.layers[2].kernel.assign(keras.ops.zeros((8, 8)))  # site: assign
        return m

    rec = trace(AuditTarget("build", build))
    custom, orth, zeroed = (rec.traced[f"{n}.kernel"] for n in ("dense", "dense_1", "dense_2"))
    assert custom.law.kind == "opaque" and "Custom" in custom.law.why
    assert orth.law.kind == "opaque" and "orthogonal" in orth.law.why
    assert zeroed.law == L.constant(0.0) and zeroed.last.site.line == line_of("assign", HERE)
    assert [w.law.kind for w in zeroed.shadowed] == ["uniform"]  # the glorot_uniform it was created with


def test_an_unbuilt_sequential_needs_an_input_shape():
    def seq():
        return keras.Sequential([keras.layers.Dense(8), keras.layers.Dense(4)])  # site: seq

    with pytest.raises(InputError, match="--input-shape"):
        trace(AuditTarget("seq", seq))
    rec = trace(AuditTarget("seq", seq), input_shape=(1, 16))
    t = rec.traced["dense.kernel"]
    assert L.same_law(t.law, L.from_scheme("glorot_uniform", 16, 8))
    assert t.last.site.line == line_of("seq", HERE)  # built by initspec: the line that made the layer

    def broken():
        raise ValueError("nope")

    with pytest.raises(BuildError, match="ValueError: nope"):
        trace(AuditTarget("broken", broken))


@pytest.mark.parametrize("bug", ["variance", ""])
def test_cli_trace_bug_and_twin(run_cli, tmp_path, bug):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC_TOML)
    out = tmp_path / "audit.json"
    code, text, err = run_cli("audit", f"keras_models:model(bug={bug!r})", "--trace", "--spec", str(spec),
                              "--json", str(out))
    doc = json.loads(out.read_text())
    groups = {r["group"]: r for r in doc["results"]}
    assert doc["sources"] == ["trace"] and code == (1 if bug else 0), text + err
    assert groups["head.kernel"]["verdict"] == ("fail" if bug else "pass")
    assert groups["head.kernel"]["traced"]["site"]["line"] == line_of("head")
    if bug:
        # a std of 1/d where 1/sqrt(d) belongs: the variance off by 1/d
        assert groups["head.kernel"]["diagnosis"][0]["id"] == "wrong_scale" and "off by 1/64" in text
