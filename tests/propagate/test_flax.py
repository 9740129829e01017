"""``initspec propagate --model`` on Flax modules (tox flax): nnx (built with nnx.Rngs(seed)) and linen.

The stack: 10 Linear/Dense(256) layers with a ReLU between, fed N(0, 1) with batch 64.  Flax's
default lecun_normal has σ_w² = 1: the first Linear's output has E[h²] = 1 and each later one half
the one before (the ReLU between), ×1/2 per layer forward and backward; he_normal keeps ×1 (from
E[h²] = 2).  Power as in test_keras.py: the whole-depth log-sd is ≈ sqrt(10·5/256) ≈ 0.44, so
(1/2)^9 is 9.6 sd below the ×0.1 bound, ×1 is 5.2 sd above it, and rel=0.2 on the per-layer factor
is 4 sd wide.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("flax")

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the models the tests name as targets


@pytest.mark.parametrize("factory,kind,name", [("nnx_mlp", "nnx", "layers.0"), ("linen_mlp", "linen", "Dense_0")])
def test_dense_stack_default_shrinks_and_he_keeps(run_cli, tmp_path, factory, kind, name):
    out_json = tmp_path / "f.json"
    code, out, _ = run_cli("propagate", "--model", f"propagate_inits:{factory}(10, 256)", "--input-shape", "64,256",
                           "--min-shrink", "0.1", "--json", str(out_json))
    data = json.loads(out_json.read_text())
    assert code == 1 and "FAIL: forward shrinks" in out
    assert data["framework"] == "flax" and data["backend"] == kind
    assert len(data["layers"]) == 10 and data["layers"][0]["name"] == name
    assert data["layers"][0]["fan_in"] == 256
    fw = [r["forward"]["second_moment"] for r in data["layers"]]
    assert fw[0] == pytest.approx(1.0, rel=0.2)
    assert (fw[-1] / fw[0]) ** (1 / 9) == pytest.approx(0.5, rel=0.2)
    assert all(r["backward"] is not None for r in data["layers"])
    assert data["growth"]["backward"] ** (1 / 9) == pytest.approx(0.5, rel=0.2)
    code, out, _ = run_cli("propagate", "--model", f"propagate_inits:{factory}(10, 256, False)",
                           "--input-shape", "64,256", "--min-shrink", "0.1", "--max-growth", "10")
    assert code == 0, out


def test_rejected_input_shape_is_one_line_exit_2(run_cli):
    """nnx layers are built with their sizes; linen infers them from the input at init (no rejection)."""
    code, _, err = run_cli("propagate", "--model", "propagate_inits:nnx_mlp(2, 16)", "--input-shape", "4,15")
    assert code == 2 and "rejects it" in err and len(err.strip().splitlines()) == 1


def test_nnx_classes_are_restored_after_the_run():
    """The recording subclass is swapped in for the run only."""
    import propagate_inits as inits
    from flax import nnx

    from initspec.propagate.model import flax_model

    model = inits.nnx_mlp(2, 16, rngs=nnx.Rngs(0))
    flax_model(model, "m", (4, 16))
    assert all(type(m) is nnx.Linear for m in model.layers if isinstance(m, nnx.Module))


def test_a_module_that_exits_fails_the_run(run_cli):
    code, out, _ = run_cli("propagate", "--model", "propagate_inits:nnx_hostile()", "--input-shape", "2,4")
    assert code == 1 and out.startswith("ERROR  ") and "called sys.exit(6)" in out, out


def test_a_width_family_at_init(run_cli, tmp_path):
    """``--widths`` on an nnx family, built as ATTR(width=W, rngs=nnx.Rngs(seed)), at init: the Flax path
    (2 widths, 2 seeds: the statistics are test_width.py's)."""
    path = tmp_path / "w.json"
    code, out, _ = run_cli("propagate", "--model", "propagate_inits:nnx_family()", "--input-shape", "16,16",
                           "--widths", "32,64", "--seeds", "2", "--json", str(path))
    data = json.loads(path.read_text())
    assert code == 0, out
    assert data["framework"] == "flax" and len(data["layers"]) == 3
