"""transformers' GPT-2 held to OpenAI's released GPT-2 and to nanoGPT (torch env).

Power: the departures are factors of 4 in variance (wpe 0.02 vs 0.01; c_proj 0.02/sqrt(2*2) = 0.01
vs 0.02) on tables of >= 16k values: the variance test's z is in the hundreds with 2 instances.
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

GPT2 = "hf:gpt2(n_layer=2, n_embd=64, n_head=2, vocab_size=1024)"


def _roles(path):
    return {r["role"]: r["verdict"] for r in json.loads(path.read_text())["reference"]["roles"]}


def test_transformers_gpt2_departs_from_openai_in_wpe_and_the_residual_projections(run_cli, tmp_path):
    c, out, err = run_cli("audit", GPT2, "--reference", "gpt2", "--seeds", "2", "--json", str(tmp_path / "a.json"))
    assert c == 1, out + err
    roles = _roles(tmp_path / "a.json")
    assert {r for r, v in roles.items() if v == "departs"} == {"position_embedding", "attn_out", "mlp_out"}
    assert ("DEPARTS position_embedding: reference normal(std=0.01) [src/model.py#L152-L153], "
            "port normal(std=0.02)") in out


def test_transformers_gpt2_is_nanogpt_in_every_role(run_cli, tmp_path):
    c, out, err = run_cli("audit", GPT2, "--reference", "nanogpt", "--seeds", "2", "--json", str(tmp_path / "a.json"))
    assert c == 0, out + err
    assert set(_roles(tmp_path / "a.json").values()) == {"agrees"}
    assert "the port agrees with nanogpt in every role it has" in out
