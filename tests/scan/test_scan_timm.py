"""timm (its own env: torch 2.14.1 + torchvision 0.29.1): ``timm:NAME`` targets on a handful of
families and ``initspec scan timm`` on a subset.

Power: resnet10t's convolutions are kaiming_normal(fan_out): declaring fan_in instead changes the
variance of conv1.3 (32, 24, 3, 3) by 4/3 and of every 3x3 stage conv by 2x or 1/2; with 2
instances the smallest such group has 13,824 values, the variance's standard error is ~1.2%.
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
timm = pytest.importorskip("timm")

RESNET_SPEC = """\
[params]
"*.bn2.weight" = "zeros"
"conv1.[036].weight" = "kaiming_normal(mode={mode}, nonlinearity=relu)"
"layer*.conv*.weight" = "kaiming_normal(mode={mode}, nonlinearity=relu)"
"layer*.downsample.1.weight" = "kaiming_normal(mode={mode}, nonlinearity=relu)"
"*bn*.weight" = "ones"
"[!f]*.bias" = "zeros"
"""


@pytest.mark.parametrize("mode,code", [("fan_out", 0), ("fan_in", 1)])
def test_resnet_convolutions_are_kaiming_fan_out(run_cli, tmp_path, mode, code):
    spec = tmp_path / "r.toml"
    spec.write_text(RESNET_SPEC.format(mode=mode))
    c, out, err = run_cli("audit", "timm:resnet10t(num_classes=10)", "--spec", str(spec), "--seeds", "2")
    assert c == code, out + err
    if code:
        # square kernels (in = out) cannot tell the modes apart; every stage's first conv can
        assert all(f"FAIL   layer{i}.*.conv1.weight" in out for i in (2, 3, 4)), out


@pytest.mark.parametrize("target", ["timm:convnext_atto(num_classes=10)", "timm:mobilenetv3_small_050(num_classes=10)",
                                    "timm:vit_tiny_patch16_224(num_classes=10, img_size=64)"])
def test_families_audit_without_a_severe_finding(run_cli, tmp_path, target):
    out_json = tmp_path / "a.json"
    c, out, err = run_cli("audit", target, "--seeds", "2", "--json", str(out_json))
    doc = json.loads(out_json.read_text())
    assert c == 0 and doc["summary"]["severe_findings"] == 0 and doc["summary"]["groups"] > 5, out + err


def test_timm_vit_against_the_reference_vit(run_cli):
    c, out, err = run_cli("audit", "timm:vit_tiny_patch16_224(num_classes=10, img_size=64)", "--reference", "vit",
                          "--seeds", "2")
    assert c == 1, out + err
    departs = {line.split(":")[0].split()[1] for line in out.splitlines() if line.startswith("DEPARTS")}
    # timm draws cls_token N(0, 1e-6) (reference: zeros), every Linear trunc_normal(0.02) (reference:
    # xavier_uniform), the head trunc_normal(0.02) (reference: zeros), MLP biases zeros (reference: N(0, 1e-6))
    assert {"cls_token", "attn_in", "attn_out", "mlp_in", "mlp_out", "head", "bias"} <= departs, out
    assert "position_embedding" not in departs and "norm" not in departs


def test_a_family_is_module_class_and_layer_types():
    from initspec.scan.libraries import timm as lib

    described = [lib.describe(n) for n in ("vit_tiny_patch16_224", "vit_small_patch16_224", "resnet18")]
    fams = lib.families(described)
    assert len(fams) == 2 and sorted(len(v) for v in fams.values()) == [1, 2]


def test_scan_a_subset_of_timm(run_cli, tmp_path):
    out_json = tmp_path / "s.json"
    c, out, err = run_cli("scan", "timm", "--only", "resnet10t,convnext_atto,vit_tiny_patch16_224", "-j", "2",
                          "--no-progress", "--json", str(out_json), "--max-seeds", "2")
    doc = json.loads(out_json.read_text())
    assert {r["name"]: r["status"] for r in doc["rows"]} == {"resnet10t": "ok", "convnext_atto": "ok",
                                                             "vit_tiny_patch16_224": "ok"}, out + err
    assert c == 0 and "3 models in 3 families" in out
