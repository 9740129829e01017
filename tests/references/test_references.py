"""Reference specs: every shipped reference parses, every role's law reduces to a scheme, every
number matches the source line it cites (read by hand: the table below), and every role has a
docs row that links its source line (docs/findings/ports.md)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from initspec import references
from initspec.errors import InputError
from initspec.spec.expr import evaluate_call
from initspec.spec.schemes import resolve

DOCS = Path(__file__).resolve().parents[2] / "docs" / "findings" / "ports.md"
#: a value for every var a law may use (the laws' arithmetic is checked, not the model's size)
SIZES = {"n_layer": 12.0, "n_layers": 12.0, "d": 768.0, "d_model": 512.0, "d_kv": 64.0, "num_heads": 8.0,
         "dim": 4096.0, "dt_rank": 48.0, "layer": 3.0}

#: (reference, role) -> what the cited source line declares, read by hand
DECLARED = {
    ("gpt2", "token_embedding"): ("normal", {"std": 0.02}),
    ("gpt2", "position_embedding"): ("normal", {"std": 0.01}),
    ("gpt2", "attn_out"): ("normal", {"std": 0.02}),
    ("gpt2", "mlp_out"): ("normal", {"std": 0.02}),
    ("nanogpt", "attn_out"): ("normal", {"std": 0.02 / math.sqrt(24)}),
    ("nanogpt", "position_embedding"): ("normal", {"std": 0.02}),
    ("bert", "token_embedding"): ("truncated_normal", {"std": 0.02, "lower": -2.0, "upper": 2.0}),
    ("bert", "attn_in"): ("truncated_normal", {"std": 0.02, "lower": -2.0, "upper": 2.0}),
    ("t5", "token_embedding"): ("normal", {"std": 1.0}),
    ("t5", "attn_q"): ("normal", {"std": (512 * 64) ** -0.5}),
    ("t5", "attn_kv"): ("normal", {"std": 512 ** -0.5}),
    ("t5", "attn_out"): ("normal", {"std": (8 * 64) ** -0.5}),
    ("t5", "mlp_in"): ("variance_scaling", {"scale": 1.0, "mode": "fan_in", "distribution": "truncated_normal",
                                            "truncation_correction": "none"}),
    ("vit", "position_embedding"): ("normal", {"std": 0.02}),
    ("vit", "bias"): ("normal", {"std": 1e-6}),
    ("vit", "head"): ("constant", {"value": 0.0}),
    ("gpt_neox", "token_embedding"): ("normal", {"std": math.sqrt(2 / (5 * 768))}),
    ("gpt_neox", "attn_out"): ("normal", {"std": 2 / 12 / math.sqrt(768)}),
    ("olmo2", "attn_in"): ("truncated_normal", {"std": 0.02, "lower": -3.0, "upper": 3.0}),
    ("mamba", "token_embedding"): ("normal", {"std": 0.02}),
    ("mamba", "attn_out"): ("variance_scaling", {"scale": 1 / 36, "mode": "fan_in", "distribution": "uniform"}),
    ("mamba", "dt_proj"): ("uniform", {"low": -(48 ** -0.5), "high": 48 ** -0.5}),
    ("llama3_torchtitan", "token_embedding"): ("normal", {"std": 1.0}),
    ("llama3_torchtitan", "attn_in"): ("truncated_normal", {"std": 0.02, "lower": -2.0, "upper": 2.0}),
    ("llama3_torchtitan", "attn_out"): ("truncated_normal", {"std": 0.02 / math.sqrt(8)}),
    ("llama3_torchtitan", "head"): ("truncated_normal", {"std": 4096 ** -0.5, "lower": -3 * 4096 ** -0.5,
                                                         "upper": 3 * 4096 ** -0.5}),
}

REFS = references.names()
ROLES = [(name, role) for name in REFS for role in references.load(name).roles]


def test_the_issue_s_references_ship():
    assert {"bert", "gpt2", "nanogpt", "t5", "vit", "gpt_neox", "olmo2", "mamba", "llama3_torchtitan"} <= set(REFS)


@pytest.mark.parametrize("name,role", ROLES, ids=[f"{n}.{r}" for n, r in ROLES])
def test_every_law_reduces_to_a_scheme_and_cites_a_line(name, role):
    ref = references.load(name)
    r = ref.roles[role]
    scheme = resolve(evaluate_call(r.law.replace("layer", "3") if r.per_layer else r.law, SIZES, what=role))
    assert scheme.kind
    path, _, lines = r.source.partition("#")
    assert path and lines.startswith("L"), r.source
    assert len(ref.commit) == 40 and "/" in ref.repository


@pytest.mark.parametrize("key", sorted(DECLARED), ids=[f"{n}.{r}" for n, r in sorted(DECLARED)])
def test_the_numbers_are_the_source_s(key):
    name, role = key
    law = references.load(name).roles[role].law
    law = law.replace("layer", "3") if references.load(name).roles[role].per_layer else law
    scheme = resolve(evaluate_call(law, SIZES, what=role))
    kind, params = DECLARED[key]
    assert scheme.kind == kind
    for k, v in params.items():
        got = scheme.params[k]
        assert (got == v) if isinstance(v, str) else got == pytest.approx(v, rel=1e-12), (k, got, v)


@pytest.mark.parametrize("name", REFS)
def test_every_port_becomes_an_audit_spec(name):
    ref = references.load(name)
    for port in ref.ports:
        spec = references.to_spec(ref, port, SIZES)
        assert spec.rules and set(spec.role_of.values()) == set(ref.ports[port])
        assert all(rule.scheme.kind for rule in spec.rules)


@pytest.mark.parametrize("name,role", ROLES, ids=[f"{n}.{r}" for n, r in ROLES])
def test_every_role_has_a_docs_row_linking_its_source(name, role):
    url = references.load(name).source_url(role)
    assert url in DOCS.read_text(), f"docs/findings/ports.md has no link to {url}"


def test_a_per_layer_law_expands_per_layer():
    ref = references.load("llama3_torchtitan")
    spec = references.to_spec(ref, "hf", {"dim": 64.0, "n_layers": 2.0})
    wo = {r.glob: r.scheme.params["std"] for r in spec.rules if "o_proj" in r.glob}
    assert wo == {"model.layers.0.self_attn.o_proj.weight": pytest.approx(0.02 / math.sqrt(2)),
                  "model.layers.1.self_attn.o_proj.weight": pytest.approx(0.02 / math.sqrt(4))}


def test_a_missing_var_is_one_line_naming_it():
    with pytest.raises(InputError, match="give --var n_layer=N"):
        references.to_spec(references.load("nanogpt"), "nanogpt", {})


def test_the_port_is_read_off_the_target():
    ref = references.load("gpt2")
    assert references.port_for(ref, "hf:gpt2", None) == "hf"
    assert references.port_for(ref, "keras_hub.models:GPT2Backbone(num_layers=2)", None) == "keras_hub"
    with pytest.raises(InputError, match="say which port"):
        references.port_for(ref, "mymodels:GPT()", None)


def test_a_reference_is_data_never_executed(tmp_path):
    bad = {"reference": {"repository": "a/b", "commit": "0" * 40},
           "roles": {"x": {"law": "normal(std=__import__('os').getpid())", "source": "f.py#L1"}},
           "ports": {"p": {"x": "*"}}}
    ref = references.parse(bad, "bad.toml")
    with pytest.raises(InputError):
        references.to_spec(ref, "p", {})
