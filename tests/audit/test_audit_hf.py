"""The audit on transformers models built from their config classes (nothing downloaded).

The issue's own GPT-2 spec must hold for transformers' GPT-2: the scaled residual init
0.02/sqrt(2 n_layer) on every c_proj, zero biases, LayerNorm ones, 0.02 elsewhere, the LM head tied
to the token embedding.  Sizes: every random group has >= 65k values per instance; the scaled and
unscaled stds differ by a factor sqrt(8) — hundreds of standard errors.
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

GPT2 = "hf:gpt2(n_layer=4, n_embd=128, n_head=4, vocab_size=512, n_positions=64)"

ISSUE_SPEC = """\
[vars]
n_layer = 4
[params]
"*.c_proj.weight" = "normal(std=0.02 / sqrt(2 * n_layer))"
"*.bias"          = "zeros"
"*ln_*.weight"    = "ones"
"*"               = "normal(std=0.02)"
[tied]
head = ["transformer.wte.weight", "lm_head.weight"]
"""


def test_gpt2_holds_to_the_issue_spec(run_cli, tmp_path):
    spec = tmp_path / "gpt2.toml"
    spec.write_text(ISSUE_SPEC)
    out_json = tmp_path / "a.json"
    code, out, err = run_cli("audit", GPT2, "--spec", str(spec), "--strict", "--seeds", "2", "--json", str(out_json))
    assert code == 0, out + err
    doc = json.loads(out_json.read_text())
    assert "GPT2LMHeadModel from GPT2Config" in out
    assert doc["tied"] == [["transformer.wte.weight", "lm_head.weight"]]
    groups = {r["group"]: r for r in doc["results"]}
    assert groups["transformer.h.*.mlp.c_proj.weight"]["members"] == [
        f"transformer.h.{i}.mlp.c_proj.weight" for i in range(4)]
    # GPT-2's Conv1D stores (in, out): the fans come from the owner, not from torch's (out, in)
    c_fc = groups["transformer.h.*.mlp.c_fc.weight"]
    assert (c_fc["shape"], c_fc["layout"], c_fc["fan_in"], c_fc["fan_out"]) == ([128, 512], "tf", 128, 512)


def test_gpt2_with_the_unscaled_spec_fails_on_c_proj(run_cli, tmp_path):
    spec = tmp_path / "flat.toml"
    spec.write_text('[params]\n"*.bias" = "zeros"\n"*ln_*.weight" = "ones"\n"*" = "normal(std=0.02)"\n')
    out_json = tmp_path / "a.json"
    code, out, _ = run_cli("audit", GPT2, "--spec", str(spec), "--seeds", "2", "--json", str(out_json))
    assert code == 1
    failed = sorted(r["group"] for r in json.loads(out_json.read_text())["results"] if r["verdict"] == "fail")
    assert failed == ["transformer.h.*.attn.c_proj.weight", "transformer.h.*.mlp.c_proj.weight"]
    # 1/sqrt(8) = 0.354, exactly: the trace reads the std the code passed
    assert "probably wrong_scale: traced std is 0.3536× the declared (var ratio 0.125; the variance off by 1/8)" in out


def test_heads_per_model_type():
    from initspec.audit.targets import HF_HEADS, parse_audit_target

    assert HF_HEADS == {"gpt2": "GPT2LMHeadModel", "bert": "BertForMaskedLM", "llama": "LlamaForCausalLM",
                        "t5": "T5ForConditionalGeneration"}
    t = parse_audit_target("hf:bert(num_hidden_layers=1, hidden_size=32, num_attention_heads=2, "
                           "intermediate_size=64, vocab_size=100)")
    assert type(t.factory()).__name__ == "BertForMaskedLM"


def test_t5_query_std_is_one_over_sqrt_d_model_d_kv(run_cli, tmp_path):
    """T5 scales q by (d_model * d_kv)^-1/2 and k, v, o by d_model^-1/2 (lecun_normal on a square)."""
    out_json = tmp_path / "a.json"
    code, out, _ = run_cli("audit", "hf:t5(num_layers=1, num_decoder_layers=1, d_model=128, d_ff=256, num_heads=4, "
                           "d_kv=32, vocab_size=300)", "--seeds", "2", "--json", str(out_json))
    assert code == 0, out
    groups = {r["group"]: r for r in json.loads(out_json.read_text())["results"]}
    q = groups["encoder.block.*.layer.*.SelfAttention.q.weight"]
    assert q["observed"]["var"] == pytest.approx(1 / (128 * 32), rel=0.03)  # 32k values: SE of var 0.8%
    k = groups["encoder.block.*.layer.*.SelfAttention.k.weight"]
    assert k["drawn"] == "lecun_normal" and k["identified"] == f"normal(std={128 ** -0.5!r})"  # traced exactly


@pytest.mark.parametrize("text, message", [
    ("hf:nosuchtype", "Unrecognized model identifier"),
    ("hf:gpt2(4)", "config overrides are keywords"),
])
def test_bad_hf_targets(run_cli, text, message):
    code, _, err = run_cli("audit", text)
    assert code == 2 and message in err and err.count("\n") == 1


def test_gpt2_lockfile_round_trip(run_cli, tmp_path):
    lock = tmp_path / "gpt2.lock.toml"
    code, out, _ = run_cli("audit", GPT2, "--write-spec", str(lock), "--seeds", "2")
    assert code == 0, out
    text = lock.read_text()
    assert '"transformer.h.*.ln_*.weight" = "ones"' in text and "[tied]" in text
    code, out, _ = run_cli("audit", GPT2, "--spec", str(lock), "--seeds", "2", "--strict")
    assert code == 0, out
    # the same model with 8 layers: the scaled residual std moves by sqrt(4/8); only the c_proj groups fail
    code, out, _ = run_cli("audit", GPT2.replace("n_layer=4", "n_layer=8"), "--spec", str(lock), "--seeds", "2")
    assert code == 1
    fails = [line.split()[1] for line in out.splitlines() if line.startswith("FAIL")]
    assert fails == ["transformer.h.*.attn.c_proj.weight", "transformer.h.*.mlp.c_proj.weight"], out
