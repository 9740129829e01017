"""``initspec propagate --model --widths``: the coordinate check's verdict on a standard and a muP MLP (tox torch).

The family: a 3-layer ReLU MLP 32 → W → W → 10 (``propagate_inits:mlp_family``) at widths
64, 128, 256, 512, batch 32, two Adam steps at lr 0.01 on one fixed synthetic batch (a large rate
emphasizes a broken parametrization: mup's README, "Tips for Coord Check"), 8 seeds.  The band is
±t·SE with t = 7.88 (Student's t, 7 df, at 1 − 0.001/(2·10): 5 layers × 2 times).

Measured (this seed set, torch 2.13 CPU): standard parametrization after two steps, the hidden
Linear grows as width^0.457 (band ±0.096: 29.6 SE beyond it) and the output as width^0.454 (band
±0.119: 22.2 SE beyond); at init every layer is inside its band (largest |k|/band 0.16).  muP: every
layer at both times inside its band, the largest |k|/band 0.22 (the hidden ReLU after the steps,
+0.019 ± 0.086), the zero readout exactly zero at init.  The runs are seeded (torch.manual_seed per
seed and width): the numbers repeat exactly on one platform; across platforms they move by float
rounding, far inside those margins.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the models the tests name as targets

FAMILY = ("--input-shape", "32,32", "--widths", "64,128,256,512", "--steps", "2", "--lr", "0.01", "--seeds", "8")


def _run(run_cli, tmp_path, mup: bool) -> tuple[int, str, dict]:
    path = tmp_path / "w.json"
    opt = "propagate_inits:mup_adam" if mup else "adam"
    code, out, err = run_cli("propagate", "--model", f"propagate_inits:mlp_family(mup={mup})", *FAMILY,
                             "--optimizer", opt, "--json", str(path))
    assert not err, err
    return code, out, json.loads(path.read_text())


def _fits(data: dict, t: str) -> dict[str, dict]:
    return {layer["name"]: layer["times"][t] for layer in data["layers"]}


def test_standard_mlp_under_adam_grows_with_width(run_cli, tmp_path):
    code, out, data = _run(run_cli, tmp_path, mup=False)
    assert code == 1 and "FAIL" in out and "NOT width-stable" in out
    assert [layer["name"] for layer in data["layers"]] == ["0", "1", "2", "3", "4"]
    assert all(f["state"] == "stable" for f in _fits(data, "0").values())  # He-like init: width-stable at init
    after = _fits(data, "2")
    for name in ("2", "4"):  # the hidden Linear and the output: Adam's update is ∝ width in SP
        f = after[name]
        assert f["state"] == "grows" and f["exponent"] > f["band"] + 10 * f["se"], f
        assert 0.3 < f["exponent"] < 0.7
    assert f"{data['t']:.3g}" == "7.88" and data["fits"] == 10


def test_mup_mlp_is_width_stable(run_cli, tmp_path):
    code, out, data = _run(run_cli, tmp_path, mup=True)
    assert code == 0 and "PASS" in out and "width-stable: every layer" in out
    for t in ("0", "2"):
        for name, f in _fits(data, t).items():
            if name == "4" and t == "0":
                assert f["state"] == "zero"  # the zero-initialized readout
                continue
            assert f["state"] == "stable" and abs(f["exponent"]) < 0.5 * f["band"], (t, name, f)
    assert _fits(data, "2")["4"]["exponent"] is not None  # the readout has moved off zero


def test_init_only_family_and_the_page(run_cli, tmp_path):
    """``--steps 0``: at init only (one time); the page draws the coordinate check with the fitted slopes."""
    pytest.importorskip("matplotlib")
    page = tmp_path / "c.html"
    code, out, _ = run_cli("propagate", "--model", "propagate_inits:mlp_family(mup=False)", "--input-shape", "16,32",
                           "--widths", "32,64,128", "--seeds", "3", "--html", str(page))
    text = page.read_text()
    assert code == 0 and "t=0" in out and "t=2" not in out
    assert 'src="data:image/png;base64,' in text and text.count("<tr><td>") == 5


@pytest.mark.parametrize(("args", "message"), [
    (("--model", "propagate_inits:no_width()", "--input-shape", "4,8", "--widths", "8,16"),
     "takes no width= parameter"),
    (("--model", "propagate_inits:mlp_family(width=8)", "--input-shape", "4,32", "--widths", "8,16"),
     "already gives width="),
    (("--model", "propagate_inits:mlp_family()", "--input-shape", "4,32", "--widths", "8,x"), "'x' is not a positive"),
    (("--model", "propagate_inits:mlp_family()", "--input-shape", "4,32", "--widths", "8,-16"), "not a positive"),
    (("--model", "propagate_inits:mlp_family()", "--input-shape", "4,32", "--widths", "8"), "2 to 64 distinct"),
    (("--model", "propagate_inits:mlp_family()", "--input-shape", "4,32", "--widths", "8,8"), "2 to 64 distinct"),
    (("--model", "propagate_inits:mlp_family()", "--input-shape", "4,32", "--widths", "8,16", "--seeds", "1"),
     "--seeds must be an integer in [2, 1000]"),
    (("--model", "propagate_inits:mlp_family()", "--input-shape", "4,32", "--widths", "8,16", "--steps", "1",
      "--optimizer", "rmsprop"), "use sgd, adam or MODULE:ATTR"),
    (("--model", "propagate_inits:mlp_family()", "--input-shape", "4,32", "--widths", "8,16", "--steps", "1",
      "--lr", "-1"), "--lr must be"),
    (("--model", "propagate_inits:torch_mlp(2, 8)", "--input-shape", "4,8", "--steps", "1"), "go with --widths"),
    (("he_normal", "-a", "relu", "--steps", "1"), "--steps goes with --model"),
])
def test_bad_input_is_one_line_and_exit_2(run_cli, args, message):
    code, _, err = run_cli("propagate", *args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize(("factory", "message"), [
    ("no_width", "--optimizer propagate_inits:no_width raised TypeError: no_width() got an unexpected keyword"),
    ("not_an_optimizer", "--optimizer propagate_inits:not_an_optimizer returned a builtins.list, not an optimizer"),
])
def test_an_optimizer_that_is_not_one_fails_the_run(run_cli, factory, message):
    code, out, _ = run_cli("propagate", "--model", "propagate_inits:mlp_family()", "--input-shape", "4,32", "--widths",
                           "8,16", "--seeds", "2", "--steps", "1", "--optimizer", f"propagate_inits:{factory}")
    assert code == 1 and out.startswith(f"ERROR  {message}"), out
