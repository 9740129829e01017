"""The audit on torch models: every initialization bug of issue 10 caught, every correct twin passing,
the --write-spec round trip, tied and cloned parameters, layouts from owners, the JSON fields.

Power: the bugs are gross (a std 2.8× or 8× off, constants where a law was declared, identical
tensors), tens of standard errors from the null at any sample size used here; the twins are
seeded, so each verdict is fixed, and Holm keeps the model-wide false-alarm rate at alpha = 1e-4.
"""

from __future__ import annotations

import json
import shlex
import sys
import types
from pathlib import Path

import pytest

from initspec.spec.schemes import resolve

torch = pytest.importorskip("torch")

pytest_plugins = ["pytester"]

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the bug models are targets: torch_models:NAME(...)

SPEC = """\
[vars]
n_layer = 4
d = 64
[params]
"h.3.c_proj.weight" = "zeros"
"*.c_proj.weight" = "normal(std=0.02 / sqrt(2 * n_layer))"
"*.bias"          = "zeros"
"*ln_*.weight"    = "ones"
"head.weight"     = "normal(std=1 / sqrt(d))"
"*"               = "normal(std=0.02)"
"""


@pytest.fixture
def spec(tmp_path):
    path = tmp_path / "gpt.toml"
    path.write_text(SPEC)
    return str(path)


def audit_json(run_cli, tmp_path, *args):
    out_json = tmp_path / "audit.json"
    code, out, err = run_cli("audit", *args, "--json", str(out_json))
    assert "Traceback" not in out + err
    return code, out, json.loads(out_json.read_text())


def group(doc, name):
    return next(r for r in doc["results"] if r["group"] == name)


def test_the_correct_model_passes_its_spec(run_cli, tmp_path, spec):
    code, out, doc = audit_json(run_cli, tmp_path, "torch_models:tiny_gpt()", "--spec", spec, "--seeds", "3")
    assert code == 0, out
    assert doc["summary"]["failed"] == 0 and doc["summary"]["unchecked"] == 0 and not doc["findings"]
    c_proj = group(doc, "h.*.c_proj.weight")
    assert c_proj["members"] == ["h.0.c_proj.weight", "h.1.c_proj.weight", "h.2.c_proj.weight"]
    # 0.02 / sqrt(8), fitted from 3 x 3 x 16384 values: the std's relative SE is ~0.2%
    assert resolve(c_proj["identified"]).params["std"] == pytest.approx(0.02 / 8 ** 0.5, rel=0.01)
    # the code's normal_(0, 1/sqrt(d)), exactly as traced; the draws name the same law lecun_normal (fan_in = d)
    assert group(doc, "head.weight")["identified"] == "normal(std=0.125)"
    assert group(doc, "head.weight")["drawn"] == "lecun_normal"


# bug -> the group that must fail and the diagnosis that must name it
SPEC_BUGS = [
    ("scaled_name", "h.*.c_proj.weight", "wrong_scale"),     # the name == "c_proj.weight" test never matched
    ("ln_random", "h.*.ln_*.weight", "not_constant"),        # LayerNorm gamma from N(0, 0.02)
    ("head_var1", "head.weight", "wrong_scale"),             # LM head with variance 1
    ("padding_none", "wte.weight", "constant"),              # weight[None] = 0 zeroes the whole table
    ("zero_forgotten", "h.3.c_proj.weight", "not_constant"),  # the zero module keeps the layer default
]


@pytest.mark.parametrize("bug, name, diagnosis", SPEC_BUGS, ids=[b[0] for b in SPEC_BUGS])
def test_each_spec_bug_fails_with_its_diagnosis(run_cli, tmp_path, spec, bug, name, diagnosis):
    code, out, doc = audit_json(run_cli, tmp_path, f"torch_models:tiny_gpt(bug={bug!r})", "--spec", spec,
                                "--seeds", "2")
    assert code == 1, out
    r = group(doc, name)
    assert r["verdict"] == "fail"
    assert r["diagnosis"][0]["id"] == diagnosis, r["diagnosis"]
    assert f"probably {diagnosis}" in out


def test_scaled_residual_bug_reports_the_factor(run_cli, tmp_path, spec):
    code, out, doc = audit_json(run_cli, tmp_path, "torch_models:tiny_gpt(bug='scaled_name')", "--spec", spec,
                                "--seeds", "2")
    assert code == 1, out
    r = group(doc, "h.*.c_proj.weight")
    # std 0.02 where 0.02/sqrt(8) was meant: var ratio 8 (12k values per member: SE of the ratio ~0.04)
    assert r["observed"]["var"] / r["expected"]["var"] == pytest.approx(8, rel=0.05)
    assert resolve(r["identified"]).params["std"] == pytest.approx(0.02, rel=0.01)
    assert "the variance off by 8" in r["diagnosis"][0]["message"]  # 2 * n_layer; 2% is > 4 SE here


# bug -> the severe finding that must fail the audit without any spec, and the parameters it names
FINDING_BUGS = [
    ("torch_models:Cloned(bug=True)", "cloned", ["blocks.0.weight", "blocks.1.weight", "blocks.2.weight",
                                                 "blocks.3.weight"]),
    ("torch_models:tiny_gpt(bug='private_generator')", "seed_ignored", ["head.weight"]),
    ("torch_models:tiny_gpt(bug='meta')", "uninitialized", ["head.weight"]),
    ("torch_models:tiny_gpt(bug='nan')", "non_finite", ["head.weight"]),
]


@pytest.mark.parametrize("target, finding, params", FINDING_BUGS, ids=[b[1] for b in FINDING_BUGS])
def test_each_model_level_bug_is_a_severe_finding(run_cli, tmp_path, target, finding, params):
    code, out, doc = audit_json(run_cli, tmp_path, target, "--seeds", "2")
    assert code == 1, out
    f = next(f for f in doc["findings"] if f["id"] == finding)
    assert f["params"] == params and f["severe"]


@pytest.mark.parametrize("target", ["torch_models:Cloned(bug=False)", "torch_models:tiny_gpt()"])
def test_twins_have_no_severe_finding(run_cli, tmp_path, target):
    code, out, doc = audit_json(run_cli, tmp_path, target, "--seeds", "2")
    assert code == 0, out
    assert not [f for f in doc["findings"] if f["severe"]]


def test_constants_are_never_a_finding_but_a_constant_sibling_is_a_note(run_cli, tmp_path):
    code, out, doc = audit_json(run_cli, tmp_path, "torch_models:tiny_gpt()", "--seeds", "2")
    assert code == 0, out  # a note does not fail the audit
    # zeros biases and ones gammas are equal across seeds and to each other: no seed_ignored, no cloned
    assert [f["id"] for f in doc["findings"]] == ["constant_among_random"]
    assert doc["findings"][0]["params"] == ["h.3.c_proj.weight"]
    assert group(doc, "h.*.ln_*.weight")["identified"] == "ones"


@pytest.mark.parametrize("source, head", [("--draws", "lecun_normal"), (None, "normal(std=0.125)")])
def test_write_spec_round_trip(run_cli, tmp_path, source, head):
    """A lockfile from the draws holds fitted numbers and is checked by the draws; one from the trace
    (the default) holds the code's exact laws and is checked exactly."""
    lock = tmp_path / "lock.toml"
    how = [source] if source else []
    code, out, _ = run_cli("audit", "torch_models:tiny_gpt()", "--write-spec", str(lock), "--seeds", "3", *how)
    assert code == 0, out
    text = lock.read_text()
    assert '"h.3.c_proj.weight" = "zeros"' in text and f'"head.weight" = "{head}"' in text
    code, out, _ = run_cli("audit", "torch_models:tiny_gpt()", "--spec", str(lock), "--seeds", "3", *how)
    assert code == 0, out
    # one layer's init changed: the day the scaled init stops applying
    code, out, doc = audit_json(run_cli, tmp_path, "torch_models:tiny_gpt(bug='scaled_name')", "--spec",
                                str(lock), "--seeds", "3", *how)
    assert code == 1
    assert [r["group"] for r in doc["results"] if r["verdict"] == "fail"] == ["h.*.c_proj.weight"]
    assert "FAIL   h.*.c_proj.weight ×3" in out


def test_strict_fails_unchecked_groups(run_cli, tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('[params]\n"*.bias" = "zeros"\n')
    code, out, _ = run_cli("audit", "torch_models:tiny_gpt()", "--spec", str(path), "--seeds", "2")
    assert code == 0 and "UNCHK" in out
    code, out, _ = run_cli("audit", "torch_models:tiny_gpt()", "--spec", str(path), "--seeds", "2", "--strict")
    assert code == 1 and "--strict" in out


def test_a_glob_that_matches_nothing_is_exit_2(run_cli, tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('[params]\n"*.nothing_here" = "zeros"\n"*" = "normal(std=0.02)"\n')
    code, _, err = run_cli("audit", "torch_models:tiny_gpt()", "--spec", str(path))
    assert code == 2 and "'*.nothing_here' matches no parameter" in err and err.count("\n") == 1


@pytest.mark.parametrize("target, message", [
    ("torch_models:raises()", "building torch_models:raises() raised RuntimeError: constructor exploded"),
    ("torch_models:tiny_gpt(bug='x', nope=1)", "unexpected keyword argument 'nope'"),
])
def test_a_raising_constructor_is_exit_1_with_the_error(run_cli, target, message):
    code, out, err = run_cli("audit", target)
    assert code == 1 and message in out and "Traceback" not in out + err


def test_a_non_model_is_exit_2(run_cli):
    code, _, err = run_cli("audit", "torch_models:not_a_model()")
    assert code == 2 and "returned builtins.int, not a torch" in err


def test_json_has_the_issue_field_names(run_cli, tmp_path, spec):
    _, _, doc = audit_json(run_cli, tmp_path, "torch_models:tiny_gpt(bug='head_var1')", "--spec", spec,
                           "--seeds", "2")
    for r in doc["results"]:
        assert {"param", "group", "members", "shape", "dtype", "layout", "fan_in", "fan_out", "identified",
                "declared", "verdict", "tests", "diagnosis", "observed", "expected"} <= set(r)
        assert r["verdict"] in ("pass", "fail", "error", "unchecked")
    assert {"summary", "findings", "results"} <= set(doc)


def test_layouts_come_from_the_owner():
    from initspec.audit.walkers import torch as walker

    class Conv1D(torch.nn.Module):  # transformers' GPT-2 layer: weight stored (in, out)
        def __init__(self) -> None:
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(16, 48))

    m = torch.nn.ModuleDict({"lin": torch.nn.Linear(16, 48), "conv": torch.nn.Conv2d(3, 8, 5),
                             "gpt": Conv1D(), "convt": torch.nn.ConvTranspose2d(4, 6, 3)})
    ps = {p.path: p for p in walker.walk(m)}
    assert (ps["lin.weight"].layout, ps["lin.weight"].fan_in, ps["lin.weight"].fan_out) == ("torch", 16, 48)
    assert (ps["lin.bias"].fan_in, ps["lin.bias"].default) == (16, "torch_bias_default")
    assert (ps["conv.weight"].fan_in, ps["conv.weight"].fan_out) == (75, 200)  # 3*5*5, 8*5*5
    assert (ps["gpt.weight"].layout, ps["gpt.weight"].fan_in, ps["gpt.weight"].fan_out) == ("tf", 16, 48)
    # torch's own rule (and its default init) reads dim 1 of a transposed conv weight as fan_in
    assert (ps["convt.weight"].fan_in, ps["convt.weight"].fan_out) == (6 * 9, 4 * 9)


def test_tied_parameters_are_listed_once_and_reported(run_cli, tmp_path):
    code, out, doc = audit_json(run_cli, tmp_path, "torch_models:tied()", "--seeds", "2")
    assert code == 0, out
    assert doc["tied"] == [["emb.weight", "head.weight"]]
    assert [r["group"] for r in doc["results"]] == ["emb.weight"]


def test_the_torch_walker_refuses_keras_layers(monkeypatch):
    """Keras 3 layers on the torch backend are nn.Modules too: the Keras walker owns them."""
    from initspec.audit.walkers import torch as walker

    class Layer(torch.nn.Module):
        pass

    monkeypatch.setitem(sys.modules, "keras", types.SimpleNamespace(Layer=Layer))
    assert not walker.recognizes(Layer())
    assert walker.recognizes(torch.nn.Linear(2, 2))


def test_python_api_and_assert_model_conforms():
    import initspec

    spec = {"vars": {"n_layer": 4, "d": 64}, "params": {
        "h.3.c_proj.weight": "zeros", "*.c_proj.weight": "normal(std=0.02 / sqrt(2 * n_layer))",
        "*.bias": "zeros", "*ln_*.weight": "ones", "head.weight": "normal(std=1 / sqrt(d))", "*": "normal(std=0.02)"}}
    report = initspec.audit("torch_models:tiny_gpt()", spec=spec, seeds=2)
    assert report.ok and report.exit_code == 0 and report.summary["passed"] == 11
    initspec.assert_model_conforms("torch_models:tiny_gpt()", spec=spec, seeds=2)
    with pytest.raises(AssertionError) as exc:
        initspec.assert_model_conforms("torch_models:tiny_gpt(bug='ln_random')", spec=spec, seeds=2)
    message = str(exc.value)
    assert "FAIL   h.*.ln_*.weight ×4" in message and "probably not_constant" in message
    line = message.rsplit("reproduce: ", 1)[1]
    assert shlex.split(line)[:7] == ["initspec", "audit", "torch_models:tiny_gpt(bug='ln_random')", "--seed", "0",
                                     "--seeds", "2"]
    assert "(the spec was a dict: write it to a TOML file for --spec)" in line


def test_plugin_fixture_audits_models(pytester):
    pytester.makeconftest(f"import sys; sys.path.insert(0, {str(HERE)!r})")
    pytester.makepyfile(test_model="""
        def test_gpt(initspec):
            initspec.assert_model_conforms("torch_models:Cloned(bug=False)", seeds=2)

        def test_cloned(initspec):
            initspec.assert_model_conforms("torch_models:Cloned(bug=True)", seeds=2)
    """)
    result = pytester.runpytest_subprocess()  # the plugin loads through its pytest11 entry point
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*FINDING cloned: 4 random parameters*", "*reproduce: PYTHONPATH=* initspec audit*"])


def test_junit_and_markdown_through_the_report_writers(run_cli, tmp_path, spec):
    import xml.etree.ElementTree as ET

    junit, md = tmp_path / "a.xml", tmp_path / "a.md"
    code, out, _ = run_cli("audit", "torch_models:tiny_gpt(bug='private_generator')", "--spec", spec, "--seeds", "2",
                           "--junit", str(junit), "--markdown", str(md))
    assert code == 1, out
    cases = ET.parse(junit).getroot().iter("testcase")
    failed = [c.get("name") for c in cases if c.find("failure") is not None]
    assert any("finding:seed_ignored" in name for name in failed), failed
    assert "seed_ignored" in md.read_text()


def test_names_that_change_per_build_are_a_failed_audit(run_cli):
    code, out, err = run_cli("audit", "torch_models:renamed()", "--seeds", "2")
    assert code == 1 and "other parameter names than the first" in out and "Traceback" not in out + err


def test_layout_override_for_unknown_owners(run_cli, tmp_path):
    _, _, doc = audit_json(run_cli, tmp_path, "torch_models:custom()", "--seeds", "2")
    r = doc["results"][0]
    assert (r["layout"], r["fan_in"], r["fan_out"]) == ("torch", 96, 32)  # the framework's default reading
    _, _, doc = audit_json(run_cli, tmp_path, "torch_models:custom()", "--seeds", "2", "--layout", "tf")
    r = doc["results"][0]
    assert (r["layout"], r["fan_in"], r["fan_out"]) == ("tf", 32, 96)
    assert r["drawn"] == "lecun_normal"  # std 1/sqrt(32) = 1/sqrt(fan_in) once the layout is right


def test_orthogonal_groups_identified_and_checked(run_cli, tmp_path):
    spec = tmp_path / "orth.toml"
    spec.write_text('[params]\n"*.weight" = "orthogonal"\n"*.bias" = "zeros"\n')
    code, out, doc = audit_json(run_cli, tmp_path, "torch_models:orthogonal()", "--seeds", "2", "--spec", str(spec))
    assert code == 0, out
    assert group(doc, "*.weight")["identified"] == "orthogonal(gain=1.0)"
    code, out, doc = audit_json(run_cli, tmp_path, "torch_models:orthogonal(gain=2.0)", "--seeds", "2", "--spec",
                                str(spec))
    assert code == 1 and group(doc, "*.weight")["diagnosis"][0]["id"] == "not_orthogonal"
    assert "traced orthogonal(gain=2.0) (declared" in out  # the trace reads the gain the code passed
    code, out, doc = audit_json(run_cli, tmp_path, "torch_models:orthogonal(gain=2.0)", "--seeds", "2", "--spec",
                                str(spec), "--draws")
    assert code == 1 and group(doc, "*.weight")["diagnosis"][0]["id"] == "not_orthogonal"
    assert "identified orthogonal(gain=2.0)" in out
