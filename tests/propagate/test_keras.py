"""``initspec propagate --model`` on Keras models (tox keras-tensorflow, keras-jax, keras-torch).

The stack: 10 Dense(256, relu) layers fed N(0, 1) with batch 64.  Dense's default glorot_uniform on
square layers has σ_w² = n·2/(n + n) = 1, and the ReLU inside each Dense halves the second moment:
×1/2 per layer forward, and ×1/2 per layer backward (ReLU' halves it, Wᵀ has σ_w² = 1 too); He
keeps both at ×1.  Power: each layer's E[h²] has a log-sd of about sqrt(5/256) (the finite-width
band of test_stack.py), so the whole-depth ratio has ≈ sqrt(10·5/256) ≈ 0.44: (1/2)^9 = 2e-3 is
9.6 sd below the ×0.1 bound and He's ×1 is 5.2 sd above it; the per-layer factor's log-sd is
0.44/9 ≈ 0.05, so rel=0.2 is 4 sd wide.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

keras = pytest.importorskip("keras")

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the models the tests name as targets

BACKEND = keras.backend.backend()
HAS_GRAD = BACKEND in ("tensorflow", "jax", "torch")


@pytest.mark.parametrize("functional", [False, True])
def test_dense_stack_default_shrinks_and_he_keeps(run_cli, tmp_path, functional):
    out_json = tmp_path / "k.json"
    code, out, _ = run_cli("propagate", "--model", f"propagate_inits:keras_mlp(10, 256, True, {functional})",
                           "--input-shape", "64,256", "--min-shrink", "0.1", "--json", str(out_json))
    data = json.loads(out_json.read_text())
    assert code == 1 and "FAIL: forward shrinks" in out
    assert data["framework"] == "keras" and data["backend"] == BACKEND
    assert [r["type"] for r in data["layers"]] == ["Dense"] * 10
    assert data["layers"][0]["fan_in"] == 256 and data["layers"][0]["fan_out"] == 256
    fw = [r["forward"]["second_moment"] for r in data["layers"]]
    assert (fw[-1] / fw[0]) ** (1 / 9) == pytest.approx(0.5, rel=0.2)
    assert fw[0] == pytest.approx(0.5, rel=0.2)  # the first ReLU(Wx): σ_w²·E[x²]/2
    if HAS_GRAD:
        assert all(r["backward"] is not None for r in data["layers"])
        assert data["growth"]["backward"] ** (1 / 9) == pytest.approx(0.5, rel=0.2)
    code, out, _ = run_cli("propagate", "--model", f"propagate_inits:keras_mlp(10, 256, False, {functional})",
                           "--input-shape", "64,256", "--min-shrink", "0.1", "--max-growth", "10")
    assert code == 0, out


def test_rejected_input_shape_is_one_line_exit_2(run_cli):
    code, _, err = run_cli("propagate", "--model", "propagate_inits:keras_mlp(2, 16)", "--input-shape", "4,15")
    assert code == 2 and "rejects it" in err and len(err.strip().splitlines()) == 1


def test_model_that_cannot_be_built_is_a_failed_run(run_cli):
    code, out, _ = run_cli("propagate", "--model", "propagate_inits:broken_model()", "--input-shape", "4,16")
    assert code == 1 and "ERROR  building propagate_inits:broken_model() raised RuntimeError" in out


def test_layer_calls_are_restored_after_the_run(run_cli):
    """The wrapped ``call`` is an instance attribute for the run only: the model is left as it was."""
    import propagate_inits as inits

    from initspec.propagate.model import keras_model

    model = inits.keras_mlp(2, 16)
    keras_model(model, "m", (4, 16))
    assert all("call" not in layer.__dict__ for layer in model.layers)


@pytest.mark.parametrize("zero_init_last", [False, True])
def test_residual_adds_of_a_functional_resnet(zero_init_last):
    """``keras_resnet``: 4 blocks ``Add()([x, BN(Conv(ReLU(BN(Conv(x)))))])`` then ReLU, 32 channels, 16×16.
    BN on its moving statistics is the identity at init, so the branch is 2 · tap² · E[x²] with
    VarianceScaling(2, fan_out) convs (tap (46/48)², the zero padding's share of 3×3 taps): ratio
    2·(46/48)⁴ = 1.69 from the scheme, 1.64–1.74 from the drawn kernels; band ×7.0 (n = 32 channels);
    measured 0.89–2.66 on tensorflow, jax and torch (the band is conservative, not tight: no credit
    for the batch).  With the last BN's gamma zero every branch is exactly 0, and so is its prediction."""
    from initspec.propagate.model import model_stats

    res = model_stats(f"propagate_inits:keras_resnet(4, 32, {zero_init_last})", (4, 16, 16, 3))["residual"]
    assert [b["label"] for b in res["branches"]] == [f"block{i}_add" for i in range(4)]
    for b in res["branches"]:
        assert b["agrees"], b
        if zero_init_last:
            assert b["branch"] == 0 and b["predicted_branch"] == 0
        else:
            assert b["predicted_ratio"] == pytest.approx(2 * (46 / 48) ** 4, rel=0.1)
    assert bool(res["dominating"]) is not zero_init_last


@pytest.mark.parametrize(("kind", "message"), [("call_sys_exit", "called sys.exit(5)"),
                                               ("build_sys_exit", "called sys.exit(4)")])
def test_a_model_that_exits_fails_the_run(run_cli, kind, message):
    code, out, _ = run_cli("propagate", "--model", f"propagate_inits:keras_hostile('{kind}')", "--input-shape", "2,4")
    assert code == 1 and out.startswith("ERROR  ") and message in out and len(out.strip().splitlines()) == 1, out


def test_a_width_family_at_init(run_cli, tmp_path):
    """``--widths`` on a Keras family at init (``--steps`` needs torch): 2 widths, 2 seeds, t at
    1 − 0.001/6 on 1 df (a band too wide to mean anything): this checks the Keras path, test_width.py
    the statistics."""
    path = tmp_path / "w.json"
    code, out, _ = run_cli("propagate", "--model", "propagate_inits:keras_family()", "--input-shape", "16,16",
                           "--widths", "32,64", "--seeds", "2", "--json", str(path))
    data = json.loads(path.read_text())
    assert code == 0, out
    assert data["framework"] == "keras" and [layer["type"] for layer in data["layers"]] == ["Dense"] * 3
    code, _, err = run_cli("propagate", "--model", "propagate_inits:keras_family()", "--input-shape", "16,16",
                           "--widths", "32,64", "--seeds", "2", "--steps", "1")
    assert code == 2 and "training steps need a torch model" in err
