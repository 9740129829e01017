"""The command line: outputs, exit codes, and one clear line for every bad input."""

import json

import pytest

GOOD = ("--target", "bad_inits:he_normal", "--scheme", "he_normal", "--shape", "256,128", "--shape", "8,3,5,5")


def test_list(run_cli):
    code, out, _ = run_cli("list")
    assert code == 0
    lines = out.splitlines()
    assert any(line.startswith("glorot_normal ") for line in lines)
    assert any(line.startswith("tf1_variance_scaling ") for line in lines)


def test_show_gives_fans_and_exact_moments(run_cli):
    code, out, _ = run_cli("show", "glorot_uniform", "--shape", "5,5,3,8", "--layout", "tf")
    assert code == 0
    assert "fan_in 75, fan_out 200" in out
    assert "var 0.00727273" in out  # 2 / 275
    assert "bounds [-0.147710, 0.147710]".replace("0.147710", "0.14771") in out


def test_check_numpy_subset_passes_and_writes_json(run_cli, tmp_path):
    path = tmp_path / "r.json"
    code, out, _ = run_cli("check", "numpy", "--only", "he_*", "--json", str(path))
    assert code == 0, out
    doc = json.loads(path.read_text())
    assert doc["framework"] == "numpy" and doc["alpha"] == 1e-4 and doc["seed"] == 0
    assert doc["summary"]["failed"] == 0 and doc["summary"]["passed"] == len(doc["results"]) > 0
    r = doc["results"][0]
    for key in ("target", "scheme", "layout", "shape", "dtype", "fan_in", "fan_out", "verdict", "expected",
                "observed", "tests", "diagnosis"):
        assert key in r
    assert set(r["expected"]) >= {"mean", "var", "std", "lower", "upper"}
    assert set(r["observed"]) >= {"n", "mean", "var", "min", "max"}
    assert {"name", "statistic", "p_value", "passed"} <= set(r["tests"][0])


def test_target_correct_passes(run_cli):
    code, out, _ = run_cli("check", *GOOD)
    assert code == 0, out


def test_target_std_set_to_variance_fails_with_exit_1(run_cli, tmp_path):
    path = tmp_path / "r.json"
    code, out, _ = run_cli("check", "--target", "bad_inits:he_normal_std_as_variance", "--scheme", "he_normal",
                           "--json", str(path))
    assert code == 1
    doc = json.loads(path.read_text())
    assert doc["summary"]["failed"] == len(doc["results"])
    repro = "initspec check --target bad_inits:he_normal_std_as_variance --convention numpy --scheme he_normal"
    assert all(r["repro"].startswith(repro) for r in doc["results"])
    assert "reproduce: " + repro in out  # the terminal report carries the repro of the failure


@pytest.mark.parametrize(("target", "why"), [
    ("bad_inits:raises", "raised RuntimeError: boom"),
    ("bad_inits:returns_nan", "NaN or infinite"),
    ("bad_inits:wrong_shape", "expected shape"),
    ("bad_inits:wrong_dtype", "expected dtype float32, got float64"),
])
def test_broken_initializer_is_a_failed_result_not_a_crash(run_cli, tmp_path, target, why):
    path = tmp_path / "r.json"
    code, _, err = run_cli("check", "--target", target, "--scheme", "he_normal", "--shape", "64,32",
                           "--shape", "32,64", "--json", str(path))
    assert code == 1
    assert err == ""
    doc = json.loads(path.read_text())
    assert len(doc["results"]) == 2  # the run went on to the second shape
    text = json.dumps(doc["results"])
    assert why in text


@pytest.mark.parametrize(("args", "message"), [
    (("check", "--target", "bad_inits:he_normal", "--scheme", "he_normall"),
     "unknown scheme 'he_normall' (did you mean he_normal"),
    (("check", "--target", "no_such_module_xyz:f", "--scheme", "he_normal"),
     "module 'no_such_module_xyz' not found"),
    (("check", "--target", "bad_inits:nope", "--scheme", "he_normal"), "has no attribute 'nope'"),
    (("check", "--target", "bad_inits:not_callable", "--scheme", "he_normal"), "'not_callable' is not callable"),
    (("check", "--target", "bad_inits", "--scheme", "he_normal"), "expected MODULE:ATTR"),
    (("check", "--target", "bad_inits:he_normal(__import__('os'))", "--scheme", "he_normal"), "is not a literal"),
    (("check", *GOOD[:4], "--shape", "8,x"), "bad shape '8,x'"),
    (("check", *GOOD[:4], "--dtype", "float8"), "unsupported dtype 'float8'"),
    (("check", *GOOD[:4], "--layout", "nchw"), "unknown layout 'nchw'"),
    (("check", *GOOD[:4], "--convention", "caffe"), "unknown convention 'caffe'"),
    (("check", *GOOD[:2]), "--target needs --scheme"),
    (("check", "nosuchframework"), "no manifest for framework 'nosuchframework'"),
    (("check",), "name a FRAMEWORK"),
    (("check", "numpy", "--only", "zzz*"), "--only 'zzz*' matches no entry"),
    (("check", "numpy", "--alpha", "2"), "--alpha must be in (0, 1)"),
    (("check", "numpy", "--seed", "abc"), "'abc' is not a valid integer"),
    (("show", "he_normal", "--shape", "10", "--layout", "torch"), "at least 2 dimensions"),
    (("frobnicate",), "No such command 'frobnicate'"),
])
def test_bad_input_is_one_line_and_exit_2(run_cli, args, message):
    code, out, err = run_cli(*args)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("initspec: error: ")
    assert message in err


def test_malformed_manifest_names_file_line_and_key(run_cli, tmp_path):
    bad = tmp_path / "m.toml"
    bad.write_text('framework = "numpy"\n\n[[entry]]\nid = "a"\ncall = "x:y"\nclaims = "he_normal"\n'
                   'shapes = [[0, 3]]\n')
    code, _, err = run_cli("check", "--manifest", str(bad))
    assert code == 2
    assert f"{bad}:7: key entry.0.shapes" in err
    bad.write_text('framework = "numpy"\n[[entry]]\nid = "a"\ncall = "x:y"\nclaims = "he_normall"\n')
    code, _, err = run_cli("check", "--manifest", str(bad))
    assert code == 2 and "unknown scheme 'he_normall'" in err


def test_framework_not_installed_names_the_extra(run_cli, monkeypatch, tmp_path):
    import initspec.frameworks as fw

    monkeypatch.setitem(fw.FRAMEWORKS, "ghost", "ghost")
    fake = tmp_path / "pkg"
    fake.mkdir()
    (tmp_path / "m.toml").write_text('framework = "ghost"\n[[entry]]\nid = "a"\ncall = "x:y"\nclaims = "he_normal"\n')
    import sys
    import types

    mod = types.ModuleType("initspec.frameworks.ghost")
    mod.FRAMEWORK, mod.EXTRA = "ghost_framework_not_installed", "ghost"
    monkeypatch.setitem(sys.modules, "initspec.frameworks.ghost", mod)
    code, _, err = run_cli("check", "--manifest", str(tmp_path / "m.toml"))
    assert code == 2
    assert "ghost_framework_not_installed is not installed: pip install 'initspec[ghost]'" in err


def test_version(run_cli):
    from initspec import __version__

    code, out, _ = run_cli("--version")
    assert code == 0 and __version__ in out
