"""Residual branches of torch models (tox torch): measured against the mean-field prediction, and the verdict.

What is predicted (``meanfield.py``): E[branch²] from the block input's measured E[x²] through the
branch's recorded ops; the band's log-sd √V sums 2/n per linear layer and (κ − 1)/n per activation
(n features), reset by a normalization; agreement is |log measured − log predicted| ≤ z·√V with z
at 0.001 family-wise (Bonferroni over the model's predicted branches).

Pre-LN stack (``torch_transformer``: 6 blocks, d 64, 4 heads, batch 8 × 32 tokens, N(0, 0.02²)
weights): the attention branch is LN → c_attn → causal SDPA (uniform at init: logit variance
(64·0.0004)² = 6.6e-4) → c_proj, predicted 64·0.0004 · (64·0.0004) · H₃₂/32 ≈ 8e-5 of the stream; the
MLP branch 256·0.0004 · E[gelu(√q z)²] ≈ 6.8e-4.  Band ×2.9 and ×2.4 (z 3.93); measured within 10 %
of the prediction on all 12 branches.  GPT-2's scaled c_proj (0.02/√12) divides both by 12: the
measured ratio of the scaled to the plain stack, per branch kind, is 12 within a factor 1.3 (the two
stacks share their seed; their branches differ only by the c_proj weights' scale).

ResNet (``torch_resnet``: 4 timm BasicBlocks, 64 channels, 16×16 images, batch 4, kaiming fan_out):
at init with BN on its running statistics (eval: the identity), the branch conv-BN-ReLU-conv-BN
gives E[f²] = 2 · tap² · E[x²], tap = (46/48)² the zero padding's share of 3×3 taps on 16×16: the
ratio 1.69 predicted, 1.36–2.60 measured (band ×3.95): every branch dominates its stream.  With
``zero_init_last`` every branch is exactly 0, predicted exactly 0, and the stream passes unchanged.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the models the tests name as targets

from initspec.propagate.model import model_stats

TRANSFORMER = (8, 32, 64)
IMAGES = (4, 3, 16, 16)


def _branches(target: str, shape: tuple[int, ...], **kw) -> dict:
    return model_stats(target, shape, **kw)["residual"]


@pytest.fixture(scope="module")
def plain_and_scaled():
    return (_branches("propagate_inits:torch_transformer(6, 64, 4, False)", TRANSFORMER),
            _branches("propagate_inits:torch_transformer(6, 64, 4, True)", TRANSFORMER))


def test_pre_ln_branches_are_predicted_within_their_band(plain_and_scaled):
    for res in plain_and_scaled:
        bs = res["branches"]
        assert [b["label"] for b in bs] == [f"h.{i}[{k}]" for i in range(6) for k in (1, 2)]
        assert [b["path"] for b in bs[:2]] == [["ln_1", "attn"], ["ln_2", "mlp"]]
        assert all(b["agrees"] and b["opaque"] is None for b in bs), [(b["label"], b["ratio"], b["predicted_ratio"])
                                                                      for b in bs]
        assert all(abs(math.log(b["ratio"] / b["predicted_ratio"])) < math.log(1.3) for b in bs)
        assert not res["dominating"] and 0.98 < res["stream"]["growth"] < 1.02


def test_gpt2_scaled_projection_divides_every_branch_by_2_n_layer(plain_and_scaled):
    plain, scaled = (r["branches"] for r in plain_and_scaled)
    for kind in (0, 1):  # attention, MLP
        p = [b for b in plain[kind::2]]
        s = [b for b in scaled[kind::2]]
        for a, b in zip(p, s, strict=True):
            assert a["predicted_ratio"] / b["predicted_ratio"] == pytest.approx(12, rel=0.15)
            assert a["ratio"] / b["ratio"] == pytest.approx(12, rel=0.3)
    assert 5e-5 < plain[0]["predicted_ratio"] < 1.2e-4 and 5e-4 < plain[1]["predicted_ratio"] < 9e-4


def test_resnet_branches_dominate_and_zero_init_last_adds_nothing():
    res = _branches("propagate_inits:torch_resnet(4, 64, False)", IMAGES)
    tap = (46 / 48) ** 2
    assert [b["label"] for b in res["branches"]] == [f"layer1.{i}" for i in range(4)]
    for b in res["branches"]:
        assert b["predicted_ratio"] == pytest.approx(2 * tap**2, rel=0.05)  # realized weights: within 5 %
        assert b["agrees"] and b["dominates"]
    assert res["dominating"] == [f"layer1.{i}" for i in range(4)]
    zero = _branches("propagate_inits:torch_resnet(4, 64, True)", IMAGES)
    for b in zero["branches"]:
        assert b["branch"] == 0 and b["ratio"] == 0 and b["predicted_branch"] == 0 and b["agrees"]
    assert zero["stream"]["growth"] == 1 and not zero["dominating"]


def test_inplace_relu_models_measure_both_ways_and_the_bound_is_a_check(run_cli, tmp_path):
    """torchvision/timm ResNets use nn.ReLU(inplace=True): full backward hooks refused them (issue 25)."""
    path = tmp_path / "r.json"
    code, out, err = run_cli("propagate", "--model", "propagate_inits:torch_resnet(2, 16, False)", "--input-shape",
                             "2,3,8,8", "--max-branch-ratio", "1", "--json", str(path))
    data = json.loads(path.read_text())
    assert code == 1 and "FAIL: 2 residual branch(es) exceed --max-branch-ratio 1: layer1.0, layer1.1" in out, out + err
    assert all(r["backward"] is not None for r in data["layers"])
    assert "branch dominates its stream at init (ratio > 1): layer1.0, layer1.1" in out
    code, out, _ = run_cli("propagate", "--model", "propagate_inits:torch_resnet(2, 16, True)", "--input-shape",
                           "2,3,8,8", "--max-branch-ratio", "1")
    assert code == 0 and "no branch dominates" in out


def test_blocks_glob_chooses_the_blocks():
    res = _branches("propagate_inits:torch_transformer(2, 16, 2, False)", (2, 4, 16), blocks="h.1")
    assert [b["label"] for b in res["branches"]] == ["h.1[1]", "h.1[2]"]
    none = _branches("propagate_inits:torch_transformer(2, 16, 2, False)", (2, 4, 16), blocks="h.*.mlp")
    assert none["branches"] == []  # the MLP's own input is not added to its output inside it


def test_an_unknown_op_on_the_branch_is_opaque_not_guessed():
    res = _branches("propagate_inits:torch_opaque_block()", (4, 8))
    (b,) = res["branches"]
    assert b["predicted_ratio"] is None and b["agrees"] is None and "no mean-field rule for" in b["opaque"]
    assert b["ratio"] > 0


def test_a_failure_of_the_recorder_stops_the_recording_not_the_model(monkeypatch):
    from initspec.propagate import torch_residual

    def broken(self, func, args, kwargs):
        raise RuntimeError("recorder bug")

    monkeypatch.setattr(torch_residual.Recorder, "_before", broken)
    r = model_stats("propagate_inits:torch_resnet(2, 8, False)", (2, 3, 8, 8))
    assert r["residual"]["recording_stopped"] == "RuntimeError: recorder bug" and r["residual"]["branches"] == []
    assert all(rec["backward"] is not None for rec in r["layers"])  # the model itself was measured


def test_seed_out_of_range_is_one_line(run_cli):
    code, _, err = run_cli("propagate", "--model", "propagate_inits:torch_mlp(2, 8)", "--input-shape", "4,8",
                           "--seed", "-1")
    assert code == 2 and "--seed must be an integer in [0, 2147483646]" in err and len(err.strip().splitlines()) == 1
