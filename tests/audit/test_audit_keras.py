"""End to end: ``initspec audit`` on small Keras models, each reproducing one initialization bug
of issue 10, and their correct twins (envs keras-tensorflow, keras-jax).

The model: 4 blocks of Dense(64) -> LayerNormalization -> Dense(64) "proj" (meant to start at
zero, a "zero module"), then a Dense(256) head meant to be N(0, 1/64).  Power: the audit builds
as many seeds as its smallest random group needs for the variance test (capped at 8); the
declared laws checked here are wrong by a factor of 64 in variance (head), or constant laws
that a single random value breaks, so every bug fails far beyond alpha = 1e-4, and every twin
is a correct draw whose family-wise false-alarm rate is that alpha.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

keras = pytest.importorskip("keras")

from initspec.audit.run import audit  # noqa: E402
from initspec.audit.spec import load_spec  # noqa: E402
from initspec.audit.targets import AuditTarget  # noqa: E402
from initspec.audit.trace.keras import trace  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from trace_checks import drawn_verdicts, group_verdicts, seed_ignored  # noqa: E402

D, VOCAB, N = 64, 256, 4

SPEC = """
[vars]
d = 64
[params]
"proj_*.kernel" = "zeros"
"ln_*.gamma"    = "ones"
"ln_*.beta"     = "zeros"
"*.bias"        = "zeros"
"fc_*.kernel"   = "glorot_uniform"
"head.kernel"   = "normal(std=1 / sqrt(d))"
"""


def tiny(bug: str = "") -> keras.Model:
    """The model, correct, or with bugs (comma-separated): gamma, proj, clone, seed, head."""
    bugs = set(bug.split(","))
    x = inp = keras.Input((D,))
    first = None
    for i in range(N):
        fc = keras.layers.Dense(D, name=f"fc_{i}", kernel_initializer=(
            keras.initializers.GlorotUniform(seed=100 + i) if "seed" in bugs else "glorot_uniform"))
        x = fc(x)
        if "clone" in bugs:  # every block a copy of the first: the copied values are the bug
            if first is None:
                first = fc
            else:
                fc.set_weights(first.get_weights())
        x = keras.layers.LayerNormalization(name=f"ln_{i}", gamma_initializer=(
            keras.initializers.RandomNormal(stddev=0.02) if "gamma" in bugs else "ones"))(x)
        x = keras.layers.Dense(D, name=f"proj_{i}", kernel_initializer="glorot_uniform" if "proj" in bugs
                               else "zeros")(x)
    head = keras.initializers.RandomNormal(stddev=1.0 if "head" in bugs else D ** -0.5)
    return keras.Model(inp, keras.layers.Dense(VOCAB, name="head", kernel_initializer=head)(x))


def run(bug: str = "", spec: bool = True, tmp_path=None, **kw):
    s = None
    if spec:
        p = tmp_path / "spec.toml"
        p.write_text(SPEC)
        s = load_spec(p)
    kw.setdefault("max_seeds", 3)  # the bugs are 64x off or constant-vs-random: 3 instances are plenty
    return audit(AuditTarget(f"tiny({bug!r})", lambda: tiny(bug)), spec=s, **kw)


def by_name(rep):
    return {g.name: g for g in rep.groups}


def test_correct_model_conforms_to_its_spec(tmp_path):
    rep = run(tmp_path=tmp_path)
    assert rep.framework == "keras"
    groups = by_name(rep)
    assert len(groups["fc_*.kernel"].members) == N  # pooled across the blocks
    assert {n: rep.verdict(g) for n, g in groups.items()} == {n: "pass" for n in groups}, \
        [(n, g.result.diagnosis) for n, g in groups.items() if g.result and g.result.verdict != "pass"]
    assert rep.findings == [] and rep.exit_code == 0
    assert groups["fc_*.kernel"].identified == "glorot_uniform (layer default)"
    assert "lecun_normal" in groups["head.kernel"].identified  # N(0, 1/64) on fan_in 64
    assert group_verdicts(rep, trace(AuditTarget("tiny", tiny))) == drawn_verdicts(rep)  # the trace agrees


def test_each_wrong_law_fails_its_own_group(tmp_path):
    """Three bugs in one model (one audit, to keep CI short): each fails its group, and only it."""
    rep = run("gamma,proj,head", tmp_path=tmp_path)
    groups = by_name(rep)
    failed = sorted(n for n, g in groups.items() if rep.verdict(g) == "fail")
    assert failed == ["head.kernel", "ln_*.gamma", "proj_*.kernel"] and rep.exit_code == 1
    for name in ("ln_*.gamma", "proj_*.kernel"):
        assert groups[name].result.diagnosis[0]["id"] == "not_constant"
    r = groups["head.kernel"].result  # std 1 where 1/8 was declared: 64 times the variance
    assert r.observed["var"] / r.expected["var"] == pytest.approx(64, rel=0.05)
    rec = trace(AuditTarget("tiny", lambda: tiny("gamma,proj,head")))
    assert group_verdicts(rep, rec) == drawn_verdicts(rep)


def test_cloned_blocks_are_a_severe_finding():
    rep = run("clone", spec=False, seeds=2)
    ids = {f.id: f for f in rep.findings}
    assert "cloned" in ids and rep.exit_code == 1
    assert set(ids["cloned"].params) == {f"fc_{i}.kernel" for i in range(N)}
    # the twin (independent blocks) is test_correct_model_conforms_to_its_spec: no finding
    # set_weights after creation: the trace does not claim a law for a copied value, and says where it was made
    rec = trace(AuditTarget("tiny", lambda: tiny("clone")))
    copied = {p for p, t in rec.traced.items() if t.law.kind == "opaque"}
    assert copied == {f"fc_{i}.kernel" for i in range(1, N)}
    assert all(rec.traced[p].last.ops == ("assign",) for p in copied)


def test_a_fixed_initializer_seed_is_seed_ignored(tmp_path):
    """The spec declares the kernels drawn (glorot_uniform): identical under every seed, seed_ignored.
    Without a spec the trace says so (each initializer's seed is fixed); only a drawn audit with no
    spec would make it the note fixed_seed (issue 22)."""
    rep = run("seed", tmp_path=tmp_path, seeds=2)
    ids = {f.id: f for f in rep.findings}
    assert "seed_ignored" in ids and rep.exit_code == 1
    assert set(ids["seed_ignored"].params) == {f"fc_{i}.kernel" for i in range(N)}
    # zeros / ones are the same under every seed by design: never a finding
    assert not any(p.startswith(("proj_", "ln_")) for f in rep.findings for p in f.params)
    assert seed_ignored(trace(AuditTarget("tiny", lambda: tiny("seed")))) == set(ids["seed_ignored"].params)
    # without a spec the trace still reads each initializer's fixed seed: seed_ignored, not the note
    rep = run("seed", spec=False, seeds=2)
    ids = {f.id: f for f in rep.findings}
    assert "fixed_seed" not in ids and rep.exit_code == 1
    assert set(ids["seed_ignored"].params) == {f"fc_{i}.kernel" for i in range(N)}


def test_mobilenet_style_depthwise_kernels_are_their_glorot_default():
    """Keras draws a DepthwiseConv2D kernel (3, 3, C, 1) with glorot_uniform on compute_fans's
    fans (fan_in 9C, fan_out 9): identified as that, not as "orthogonal" (one column is
    orthogonal up to its norm whatever its values)."""
    def model():
        x = keras.Input((16, 16, 32))
        return keras.Model(x, keras.layers.DepthwiseConv2D(3, name="dw")(x))

    rep = audit(AuditTarget("dw", model), seeds=4)
    g = by_name(rep)["dw.kernel"]
    assert (g.fan_in, g.fan_out) == (288, 9)
    assert g.identified == "glorot_uniform (layer default)", g.identified


def test_cli_on_a_keras_target(tmp_path, capsys):
    from initspec.cli import main

    # the audit's child process imports this module by its name on sys.path (an alias in this
    # process's sys.modules would not reach it)
    p = tmp_path / "spec.toml"
    p.write_text(SPEC)
    with pytest.raises(SystemExit) as e:
        main(["audit", f"{__name__}:tiny(bug='head')", "--spec", str(p), "--max-seeds", "2"])
    out = capsys.readouterr().out
    assert e.value.code == 1 and "head.kernel" in out
