"""The torch trace: the recorder's laws, sites and declared names (exact: no statistics), every bug
model of the audit suite caught by ``--trace`` alone with the verdict the draws give, the trace's own
findings, and the draws held to the traced law (``trace_mismatch``).

Power of the drawn runs: the bugs are gross (a std 2.8x or 8x off, constants where a law was
declared, identical tensors), tens of standard errors from the null with 2 seeds; the twins are
seeded, so each verdict is fixed, and Holm keeps the model-wide false-alarm rate at alpha = 1e-4.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from initspec.audit.trace import laws as L  # noqa: E402
from initspec.audit.trace.torch import Recorder  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the bug models are targets: torch_models:NAME(...)

from test_audit_torch import FINDING_BUGS, SPEC, SPEC_BUGS  # noqa: E402


def traced(factory, **kw):
    """Build under the recorder (seed 0) and return {path: Traced} plus the Recording."""
    torch.manual_seed(0)
    with Recorder() as rec, torch.no_grad():
        model = factory(**kw)
    out = rec.recording(model)
    return out.traced, out


# --- the recorder ------------------------------------------------------------------------------


def test_kaiming_on_a_conv_keeps_the_declared_name_and_the_line():
    def build():
        conv = nn.Conv2d(3, 64, 3)
        nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")  # THE LINE
        return conv

    t, _ = traced(build)
    w = t["weight"]
    assert w.law == L.normal(0.0, math.sqrt(2.0) / math.sqrt(64 * 9))
    assert w.last.declared == "kaiming_normal(mode=fan_out, nonlinearity=relu)"
    src = Path(__file__).read_text().splitlines()
    assert w.last.site.function == "build" and "THE LINE" in src[w.last.site.line - 1]
    # the layer's own default was written first (torch_linear_default), then shadowed
    assert [s.declared for s in w.shadowed] == ["torch_linear_default"]
    assert t["bias"].last.declared == "torch_bias_default"


@pytest.mark.parametrize("init, kwargs, law, declared", [
    ("xavier_uniform_", {"gain": 2.0}, L.uniform(-2 * math.sqrt(6 / 96), 2 * math.sqrt(6 / 96)),
     "glorot_uniform(gain=2.0)"),
    ("xavier_normal_", {}, L.normal(0, math.sqrt(2 / 96)), "glorot_normal"),
    ("trunc_normal_", {"std": 0.5, "a": -0.4, "b": 0.8}, L.truncated_normal(0, 0.5, -0.4, 0.8),
     "trunc_normal(std=0.5, a=-0.4, b=0.8)"),
    ("trunc_normal_", {"std": 0.02}, L.normal(0, 0.02), "trunc_normal(std=0.02, a=-2.0, b=2.0)"),
    ("constant_", {"val": 0.5}, L.constant(0.5), "constant(value=0.5)"),
    ("uniform_", {"a": -0.1, "b": 0.3}, L.uniform(-0.1, 0.3), "uniform(low=-0.1, high=0.3)"),
])
def test_torch_init_functions_reduce_to_their_laws(init, kwargs, law, declared):
    """64x32 Linear weight: fan_in 32, fan_out 64 (fan sum 96)."""
    def build():
        lin = nn.Linear(32, 64)
        getattr(nn.init, init)(lin.weight, **kwargs)
        return lin

    t, _ = traced(build)
    assert L.same_law(t["weight"].law, law), t["weight"].law
    assert t["weight"].last.declared == declared


def test_timm_style_trunc_normal_sequence_is_the_cut_normal():
    """uniform_ -> erfinv_ -> mul_ -> add_ -> clamp_ in place (timm's and torch <= 2.12's sampler): written on
    five lines here, five writes each composing on the one before; inside one init function, one write."""
    from scipy import special

    def build():
        w = nn.Parameter(torch.empty(50, 40))
        lo, hi = special.ndtr((-0.1 - 0.05) / 0.2), special.ndtr((0.3 - 0.05) / 0.2)
        w.data.uniform_(2 * lo - 1, 2 * hi - 1)
        w.data.erfinv_()
        w.data.mul_(0.2 * math.sqrt(2.0))
        w.data.add_(0.05)
        w.data.clamp_(min=-0.1, max=0.3)
        m = nn.Module()
        m.w = w
        return m

    t, _ = traced(build)
    assert t["w"].law.kind == "truncated_normal" and len(t["w"].chain) == 5 and not t["w"].shadowed
    assert L.same_law(t["w"].law, L.truncated_normal(0.05, 0.2, -0.1, 0.3))
    assert t["w"].last.ops == ("uniform_(-0.546745, 0.7887)", "erfinv_", "mul_(0.282843)", "add_(0.05)",
                               "clamp_(-0.1, 0.3)")


def test_a_scale_after_a_draw_composes_and_the_last_line_sets_it():
    def build():
        lin = nn.Linear(16, 16)
        nn.init.normal_(lin.weight, std=0.02)
        lin.weight.data.mul_(0.5)  # a later, separate scale
        return lin

    t, _ = traced(build)
    w = t["weight"]
    assert w.law == L.normal(0.0, 0.01)
    assert [x.law for x in w.chain] == [L.normal(0.0, 0.02), L.normal(0.0, 0.01)] and w.chain[1].composes
    assert [s.declared for s in w.shadowed] == ["torch_linear_default"]  # the draw it scales is not shadowed


def test_index_writes_are_rows_and_none_index_covers_the_table():
    def build(none: bool):
        emb = nn.Embedding(10, 4, padding_idx=None if none else 3)
        with torch.no_grad():
            emb.weight[emb.padding_idx] = 0  # padding_idx None indexes the whole table
        return emb

    t, _ = traced(build, none=False)
    w = t["weight"]
    # nn.Embedding zeroes its padding row itself (reset_parameters), then the explicit write does again
    assert w.law == L.normal(0.0, 1.0) and [(r.region, r.law) for r in w.regions] == [("row 3", L.constant(0.0))] * 2
    t, _ = traced(build, none=True)
    assert t["weight"].law == L.constant(0.0) and not t["weight"].regions


def test_a_tensor_written_part_by_part_has_the_parts_law():
    """timm's CondConv initializes each expert through ``weight[i].view(shape)`` (cond_conv2d.py,
    get_condconv_initializer): no write covers the whole parameter, yet every byte is written.
    Found by the timm scan, where it was a false ``uninitialized``."""
    def build(parts: str):
        w = nn.Parameter(torch.empty(4, 6 * 3 * 3))
        nn.init.zeros_(w[0].view(6, 3, 3))  # overwritten below: shadowed
        for i in range(4 if parts != "missing" else 3):
            std = 0.5 if parts == "differ" and i == 3 else 0.1
            nn.init.normal_(w[i].view(6, 3, 3), 0.0, std)  # THE PART LINE
        m = nn.Module()
        m.weight = w
        return m

    t, _ = traced(build, parts="same")
    w = t["weight"]
    assert w.law == L.normal(0.0, 0.1) and not w.regions
    src = Path(__file__).read_text().splitlines()
    assert "THE PART LINE" in src[w.last.site.line - 1]
    t, _ = traced(build, parts="differ")
    assert t["weight"].law.kind == "opaque" and "4 parts written with different laws" in t["weight"].law.why
    t, rec = traced(build, parts="missing")  # a row never written: the tensor is not initialized
    assert t["weight"].law.kind == "unwritten" and rec.params[0].uninitialized


def test_values_made_elsewhere_and_copied_in_carry_their_law():
    class M(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Parameter(torch.randn(8, 32) * 0.25)          # made out of place
            self.b = nn.Parameter(torch.empty(8, 32))
            with torch.no_grad():
                self.b.copy_(torch.rand(8, 32) * 2 - 1)                   # a temporary copied in
            pos = torch.arange(16.0)[:, None] * torch.exp(torch.arange(0, 8, 2.0) * -0.5)
            self.table = nn.Parameter(torch.sin(pos), requires_grad=False)  # no random draw anywhere
            self.e = nn.Parameter(torch.empty(64).exponential_())       # a law the vocabulary has no name for

    t, _ = traced(M)
    assert t["a"].law == L.normal(0.0, 0.25)
    assert L.same_law(t["b"].law, L.uniform(-1.0, 1.0))
    assert t["table"].law.kind == "deterministic" and "sin" in t["table"].law.why
    assert t["e"].law.kind == "opaque" and "exponential_" in t["e"].law.why


def test_the_code_may_read_values_computed_without_a_draw():
    """``linspace(...).tolist()`` (drop-path rates) needs values: the trace computes them, exactly."""
    class M(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            rates = torch.linspace(0, 0.3, 4).tolist()
            self.lin = nn.Linear(4, 4)
            nn.init.constant_(self.lin.bias, rates[-1])

    t, _ = traced(M)
    assert L.same_law(t["lin.bias"].law, L.constant(float(torch.tensor(0.3))))


def test_deep_copies_and_lost_writes():
    class WeightNormed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.utils.parametrizations.weight_norm(nn.Conv1d(8, 8, 3), name="weight", dim=2)
            nn.init.normal_(self.conv.weight, std=0.5)  # lands in a tensor computed from the parametrization

    t, rec = traced(WeightNormed)
    original1 = t["conv.parametrizations.weight.original1"]
    assert L.same_law(original1.law, L.uniform(-1 / math.sqrt(24), 1 / math.sqrt(24)))  # the conv default stays
    assert [w.law for w in rec.lost] == [L.normal(0.0, 0.5)]
    assert "computed from conv.parametrizations.weight.original" in rec.lost[0].target
    t, _ = traced(__import__("torch_models").Cloned, bug=True)
    assert [t[f"blocks.{i}.weight"].copy_of for i in range(4)] == [None, "blocks.0.weight", "blocks.0.weight",
                                                                    "blocks.0.weight"]


# --- the suite's bug models through --trace alone, and the same verdict as the draws -------------


def _run(run_cli, tmp_path, *args):
    out_json = tmp_path / "a.json"
    code, out, err = run_cli("audit", *args, "--json", str(out_json))
    assert "Traceback" not in out + err
    return code, out, json.loads(out_json.read_text())


def _verdict(doc):
    """What must agree between sources: failing groups with their first diagnosis, severe findings."""
    fails = sorted((r["group"], r["diagnosis"][0]["id"]) for r in doc["results"] if r["verdict"] == "fail")
    severe = sorted((f["id"], tuple(f["params"])) for f in doc["findings"] if f["severe"])
    return fails, severe


@pytest.fixture
def spec(tmp_path):
    path = tmp_path / "gpt.toml"
    path.write_text(SPEC)
    return str(path)


@pytest.mark.parametrize("bug, name, diagnosis", [*SPEC_BUGS, ("", None, None)],
                         ids=[b[0] for b in SPEC_BUGS] + ["twin"])
def test_spec_bugs_caught_by_the_trace_alone_as_by_the_draws(run_cli, tmp_path, spec, bug, name, diagnosis):
    target = f"torch_models:tiny_gpt(bug={bug!r})"
    code, out, doc = _run(run_cli, tmp_path, target, "--spec", spec, "--trace")
    assert doc["sources"] == ["trace"]
    if name is None:
        assert code == 0 and doc["summary"]["failed"] == 0, out
    else:
        assert code == 1 and (name, diagnosis) in _verdict(doc)[0], out
        assert f"probably {diagnosis}" in out and "(exact: no statistics)" in json.dumps(doc)
    code_d, out_d, doc_d = _run(run_cli, tmp_path, target, "--spec", spec, "--draws", "--seeds", "2")
    assert code_d == code and _verdict(doc_d) == _verdict(doc), (out, out_d)


@pytest.mark.parametrize("target, finding, params", [
    *FINDING_BUGS, ("torch_models:Cloned(bug=False)", None, None), ("torch_models:tiny_gpt()", None, None)],
    ids=[b[1] for b in FINDING_BUGS] + ["twin-cloned", "twin-gpt"])
def test_model_level_bugs_caught_by_the_trace_alone(run_cli, tmp_path, target, finding, params):
    code, out, doc = _run(run_cli, tmp_path, target, "--trace")
    if finding is None:
        assert code == 0 and not [f for f in doc["findings"] if f["severe"]], out
    else:
        assert code == 1, out
        f = next(f for f in doc["findings"] if f["id"] == finding)
        assert f["params"] == params and f["severe"]
        assert ".py:" in f["message"] or finding == "uninitialized"  # the line that set the value
    code_d, out_d, doc_d = _run(run_cli, tmp_path, target, "--draws", "--seeds", "2")
    assert code_d == code and _verdict(doc_d)[1] == _verdict(doc)[1], (out, out_d)


def test_groups_split_where_traced_laws_differ(run_cli, tmp_path):
    code, out, doc = _run(run_cli, tmp_path, "torch_models:tiny_gpt()", "--trace")
    assert code == 0, out
    groups = {r["group"]: r for r in doc["results"]}
    assert groups["h.*.c_proj.weight"]["members"] == ["h.0.c_proj.weight", "h.1.c_proj.weight", "h.2.c_proj.weight"]
    assert groups["h.3.c_proj.weight"]["traced"]["law"] == "zeros"
    site = groups["h.3.c_proj.weight"]["traced"]["site"]
    assert Path(site["file"]).name == "torch_models.py" and site["function"] == "__init__"
    c_proj = groups["h.*.c_proj.weight"]["traced"]
    assert c_proj["law"] == f"normal(std={0.02 / math.sqrt(8)!r})"
    # nn.Linear(256, 64)'s own default, then the model's normal(0.02), both overwritten by the scaled draw
    assert [(w["declared"], w["kind"]) for w in c_proj["shadowed"]] == [("torch_linear_default", "uniform"),
                                                                        (None, "normal")]
    assert [f["id"] for f in doc["findings"]] == ["constant_among_random"]


def test_the_draws_are_held_to_the_traced_law(run_cli, tmp_path):
    """A kernel that draws another law than its arguments ask (simulated: the real tensor is scaled after
    the draw, the trace reads normal(0.02)): the drawn values reject the traced law -> trace_mismatch.
    12 x 64 x 64 values a seed: a variance 4x the traced one is hundreds of standard errors out."""
    code, out, doc = _run(run_cli, tmp_path, "torch_models:sampler_bug()", "--seeds", "2")
    assert code == 1
    f = next(f for f in doc["findings"] if f["id"] == "trace_mismatch")
    assert f["params"] == [f"layers.{i}.weight" for i in range(12)] and "variance" in f["message"]
    code, out, doc = _run(run_cli, tmp_path, "torch_models:sampler_bug(bug=False)", "--seeds", "2")
    assert code == 0 and not doc["findings"], out


def test_max_memory_skips_the_draws_with_one_line(run_cli, tmp_path):
    code, out, doc = _run(run_cli, tmp_path, "torch_models:tiny_gpt()", "--max-memory", "64K")
    assert code == 0 and doc["sources"] == ["trace"]
    assert out.count("draws skipped") == 1 and "more than --max-memory 64 KiB" in out


@pytest.mark.parametrize("args, message", [
    (["--trace", "--draws"], "--trace and --draws exclude each other"),
    (["--max-memory", "lots"], "--max-memory 'lots': expected a size"),
])
def test_bad_trace_options_are_one_line(run_cli, args, message):
    code, _, err = run_cli("audit", "torch_models:tiny_gpt()", *args)
    assert code == 2 and message in err and err.count("\n") == 1


def test_a_framework_without_recorder_is_one_line_under_trace(run_cli, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "initspec.audit.trace.torch", None)  # as if torch had no recorder
    # in this process (--no-isolate): the child process would import the recorder again
    code, _, err = run_cli("audit", "torch_models:tiny_gpt()", "--trace", "--no-isolate")
    assert code == 2 and "no trace recorder for torch" in err and err.count("\n") == 1
    code, out, doc = _run(run_cli, tmp_path, "torch_models:tiny_gpt()", "--seeds", "2", "--no-isolate")  # draws only
    assert code == 0 and doc["sources"] == ["draws"] and "; seeds 0..1 (2), alpha" in out
