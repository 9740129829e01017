"""timm's ResNet in the default audit (trace and draws): every convolution is set by one line of timm,
``nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')`` in ``ResNet.init_weights``.
On one shape several schemes draw the same law, so the draws alone name some of them he_normal and
others lecun_normal (issue 19); the trace reads the name the code used, and the draws confirm its law
(no ``trace_mismatch``: each conv group's values pass the traced law's own tests, Holm over the model).

Runs in the tox env ``timm`` (torch 2.14.1, torchvision 0.29.1, timm).  Two seeds: the smallest conv
group holds 64*3*7*7 = 9408 values a seed, enough for the variance test to see a 5% std error.
"""

from __future__ import annotations

import fnmatch
import inspect
import json
import tomllib
from pathlib import Path

import pytest

pytest.importorskip("torch")
timm = pytest.importorskip("timm")

KAIMING = "kaiming_normal(mode=fan_out, nonlinearity=relu)"


def test_resnet18_convolutions_all_read_kaiming_fan_out(run_cli, tmp_path):
    out_json, lock = tmp_path / "r.json", tmp_path / "r.toml"
    code, out, err = run_cli("audit", "timm:resnet18", "--seeds", "2", "--json", str(out_json),
                             "--write-spec", str(lock))
    assert code == 0 and "Traceback" not in out + err, out
    doc = json.loads(out_json.read_text())
    assert doc["sources"] == ["trace", "draws"] and not doc["findings"]
    convs = [r for r in doc["results"] if len(r["shape"]) == 4]
    assert sum(len(r["members"]) for r in convs) == 20  # conv1, 16 block convs, 3 downsamples
    from timm.models import resnet

    source, first = inspect.getsourcelines(resnet.ResNet.init_weights)
    line = first + next(i for i, s in enumerate(source) if "kaiming_normal_" in s)
    for r in convs:
        t = r["traced"]
        assert t["declared"] == KAIMING and r["identified"] == KAIMING, r["group"]
        assert (Path(t["site"]["file"]).name, t["site"]["line"], t["site"]["function"]) == (
            "resnet.py", line, "init_weights")
    rows = [x for x in out.splitlines() if any(f" {r['group']} ×" in x for r in convs)]
    assert len(rows) == len(convs) and all(f"{KAIMING}  resnet.py:{line} in init_weights" in x for x in rows), out
    # the draws alone cannot tell fan_out from fan_in on a square kernel, but one fan law for every
    # convolution of the model (issue 22) is the code's: they agree with the trace
    assert {r["drawn"] for r in convs} == {"variance_scaling(scale=2.0, mode=fan_out, distribution=normal)"}
    params = tomllib.loads(lock.read_text())["params"]  # --write-spec: the name the code used, for every conv
    for r in convs:
        for m in r["members"]:
            assert next(e for g, e in params.items() if fnmatch.fnmatchcase(m, g)) == KAIMING, m
