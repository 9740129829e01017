"""The audit's framework-free parts: grouping, spec files and their arithmetic, lockfile lines,
findings, and every bad input as one line and exit 2.  Imports no framework."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from initspec.audit.findings import SEVERE, cloned, constant_among_random
from initspec.audit.group import group_names, role_of
from initspec.audit.spec import load_spec, parse_spec
from initspec.errors import InputError
from initspec.spec.expr import evaluate_call


@pytest.mark.parametrize("path, role", [
    ("h.11.attn.c_proj.weight", "h.*.attn.c_proj.weight"),
    ("dense_1.kernel", "dense_*.kernel"),
    ("Dense_0.kernel", "Dense_*.kernel"),
    ("conv2d_3.bias", "conv2d_*.bias"),
    ("encoder.block.0.layer.1.DenseReluDense.wi.weight", "encoder.block.*.layer.*.DenseReluDense.wi.weight"),
    ("wte.weight", "wte.weight"),
    ("fc2.weight", "fc2.weight"),          # a digit inside a name is no layer index
    ("layer_norm.weight", "layer_norm.weight"),
])
def test_role_replaces_layer_indices_and_auto_numbers(path, role):
    assert role_of(path) == role


def test_group_names_disambiguate_shared_roles():
    a = ("h.*.w", (4, 8), "float32", "Linear", "torch", 8, 4, None, False)
    b = ("h.*.w", (4, 8), "float32", "Linear", "torch", 8, 4, None, True)   # same role, a constant member
    c = ("h.*.w", (2, 8), "float32", "Linear", "torch", 8, 2, None, False)
    names = group_names([a, b], {a: ["h.0.w", "h.1.w"], b: ["h.2.w"]})
    assert names == {a: "h.*.w", b: "h.2.w"}
    names = group_names([a, c], {a: ["h.0.w", "h.1.w"], c: ["h.2.w", "h.3.w"]})
    assert names == {a: "h.*.w[4x8]", c: "h.*.w[2x8]"}


def test_arithmetic_is_reduced_over_vars():
    assert evaluate_call("normal(std=0.02 / sqrt(2 * n_layer))", {"n_layer": 8.0}) == "normal(std=0.005)"
    assert evaluate_call("normal(mean=-(1 + 1) ** 2, std=3)", {}) == "normal(mean=-4.0, std=3.0)"
    assert evaluate_call("variance_scaling(scale=2, mode=fan_in, distribution=truncated_normal)", {}) == \
        "variance_scaling(scale=2.0, mode=fan_in, distribution=truncated_normal)"


@pytest.mark.parametrize("expr, message", [
    ("normal(std=os.sep)", "'os.sep' is not allowed"),             # an attribute
    ("normal(std=exp(1))", "'exp(1)' is not allowed"),             # a call other than sqrt
    ("normal(std=__import__('os'))", "is not allowed"),
    ("normal(std=[1][0])", "is not allowed"),                      # a subscript
    ("normal(std=1 if 1 else 2)", "is not allowed"),
    ("normal(std=2 * nlayer)", "unknown var 'nlayer'"),
    ("normal(std=1 / 0)", "division by zero"),
    ("normal(std=sqrt(-1))", "sqrt of a negative"),
    ("normal(std=", "not of the form"),
])
def test_forbidden_or_bad_arithmetic_is_an_input_error(expr, message):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        evaluate_call(expr, {"n_layer": 4.0})


def test_spec_rules_are_ordered_first_match_wins():
    spec = parse_spec({"vars": {"n": 4}, "params": {"*.c_proj.weight": "normal(std=0.02 / sqrt(2 * n))",
                                                  "*.bias": "zeros", "*": "normal(std=0.02)"},
                       "tied": {"head": ["lm_head.weight", "*.wte.weight"]}})
    assert spec.match("h.0.attn.c_proj.weight").glob == "*.c_proj.weight"
    assert spec.match("h.0.attn.c_proj.bias").glob == "*.bias"
    assert spec.match("wte.weight").glob == "*"
    assert spec.rules[0].scheme.params["std"] == pytest.approx(0.02 / 8 ** 0.5)
    assert spec.tied_with("lm_head.weight", "transformer.wte.weight")
    assert not spec.tied_with("lm_head.weight", "h.0.attn.c_proj.weight")


@pytest.mark.parametrize("text, message", [
    ("[params\n", "not valid TOML"),
    ("[vars]\nn = 'four'\n[params]\n'*' = 'zeros'\n", "is not a finite number"),
    ("[params]\n'*' = 'normal(std=2 * q)'\n", "unknown var 'q'"),
    ("[params]\n'*' = 'nosuchscheme'\n", "unknown scheme"),
    ("[params]\n'*' = 3\n", "must be a string"),
    ("[vars]\nn = 1\n", "a \\[params\\] table"),
    ("[parms]\n'*' = 'zeros'\n", "unknown table"),
    ("[params]\n'*' = 'zeros'\n[tied]\nx = ['a']\n", "at least two"),
])
def test_bad_spec_files(tmp_path, text, message):
    path = tmp_path / "s.toml"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        load_spec(path)


def test_findings_severity():
    assert set(SEVERE) == {"non_finite", "uninitialized", "seed_ignored", "cloned", "init_lost", "trace_mismatch",
                           "shards_cloned", "replicas_differ", "shard_fans", "sharded_law_differs"}
    assert cloned(["a", "b"]).severe and not constant_among_random(["a"], "g").severe


def _one_line_exit_2(run_cli, *args):
    code, out, err = run_cli("audit", *args)
    assert code == 2, (out, err)
    assert err.count("\n") == 1 and err.startswith("initspec: error: ") and "Traceback" not in err
    return err


@pytest.mark.parametrize("args, message", [
    (["nosuchmodule_xyz:Model"], "module 'nosuchmodule_xyz' not found"),
    (["collections:NoSuchThing"], "has no attribute"),
    (["collections:OrderedDict"], "not a torch, Keras, Flax or JAX model"),
    (["justaword"], "expected MODULE:ATTR"),
    (["collections:OrderedDict(", ], "not of the form"),
    (["collections:OrderedDict(x.y)"], "is not a literal"),
    (["collections:OrderedDict", "--seeds", "0"], "--seeds must be at least 1"),
    (["collections:OrderedDict", "--layout", "weird"], "unknown layout"),
    (["collections:OrderedDict", "--input-shape", "1,x"], "bad shape"),
    (["collections:OrderedDict", "--convention", "numpy"], "knows only jax"),
    (["collections:OrderedDict", "--alpha", "nan"], "--alpha must be a finite number in (0, 1), got nan"),
    (["collections:OrderedDict", "--spec", "/nonexistent/spec.toml"], "no such file"),
])
def test_bad_input_is_one_line_and_exit_2(run_cli, args, message):
    assert message in _one_line_exit_2(run_cli, *args)


def test_bad_spec_through_the_cli(run_cli, tmp_path):
    path = tmp_path / "s.toml"
    path.write_text("[params]\n'*' = 'normal(std=os.path)'\n")
    assert "is not allowed" in _one_line_exit_2(run_cli, "collections:OrderedDict", "--spec", str(path))


def test_missing_model_libraries_are_one_line(run_cli, monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)  # import fails as if not installed
    monkeypatch.setitem(sys.modules, "timm", None)
    assert "transformers is not installed" in _one_line_exit_2(run_cli, "hf:gpt2(n_layer=2)")
    assert "timm is not importable" in _one_line_exit_2(run_cli, "timm:resnet18")


def test_a_raising_factory_is_exit_1_with_the_error(run_cli):
    # json.loads() without its argument raises TypeError inside the "model's" constructor
    code, out, err = run_cli("audit", "json:loads()")
    assert code == 1 and "Traceback" not in out + err
    assert "building json:loads() raised TypeError" in out


def test_audit_imports_no_framework(python, tmp_path):
    import subprocess

    code = ("import sys, initspec.audit.run, initspec.audit.table, initspec.cli.audit\n"
            "bad = [m for m in ('torch', 'tensorflow', 'jax', 'flax', 'keras', 'transformers') if m in sys.modules]\n"
            "assert not bad, bad\n")
    subprocess.run([python, "-c", code], check=True)


def test_the_first_of_auto_numbered_siblings_joins_them():
    from initspec.audit.group import roles_of

    roles = roles_of(["dense.kernel", "dense_1.kernel", "dense_2.kernel", "head.kernel", "conv2d.bias"])
    assert roles == {"dense.kernel": "dense_*.kernel", "dense_1.kernel": "dense_*.kernel",
                     "dense_2.kernel": "dense_*.kernel", "head.kernel": "head.kernel", "conv2d.bias": "conv2d.bias"}


def test_convention_jax_honours_literal_args():
    """Under --convention jax, ATTR(args) is a factory call whose result is f(key); a bare ATTR is f."""
    from initspec.audit.targets import parse_audit_target

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    t = parse_audit_target("pytree_factories:pick(1)", "jax")
    assert t.framework == "jax" and t.factory(("key0", "key1")) == "key1"
    t = parse_audit_target("pytree_factories:neg", "jax")
    assert t.factory(3) == -3
    with pytest.raises(InputError, match="must return f\\(key\\)"):
        parse_audit_target("pytree_factories:add(1, 2)", "jax")


def test_an_index_inside_a_keras_application_name_is_a_layer_index():
    """MobileNetV2 names its repeated blocks block_1_expand ... block_16_expand: they pool (when
    shape and fans agree); a digit glued to a word (conv2_block1, bn_Conv1) is part of the name."""
    assert role_of("block_3_expand.kernel") == "block_*_expand.kernel"
    assert role_of("block_16_depthwise_BN.gamma") == "block_*_depthwise_BN.gamma"
    assert role_of("conv2_block1_1_conv.kernel") == "conv2_block1_1_conv.kernel"
    assert role_of("bn_Conv1.gamma") == "bn_Conv1.gamma"
