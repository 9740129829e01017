"""initspec diff and initspec matrix, on numpy entries (the cross-framework cases need the frameworks)."""

import numpy as np
import pytest

from initspec.engine.compare import compare, convert_shape, family


def test_convert_shape_between_layouts():
    assert convert_shape((8, 3, 5, 5), "torch", "tf") == (5, 5, 3, 8)
    assert convert_shape((5, 5, 3, 8), "tf", "torch") == (8, 3, 5, 5)
    assert convert_shape((512, 128), "torch", "jax") == (128, 512)
    assert convert_shape((128, 512), "tf", "jax") == (128, 512)


def test_compare_tells_normal_from_truncated_normal_of_the_same_variance():
    """2e5 values a side: KS D between N(0,1) and the variance-matched ±2σ truncated normal is
    0.017, the critical D at alpha 1e-4 is 0.0061, so the difference is found with certainty."""
    from scipy import stats

    rng = np.random.default_rng(0)
    a = rng.standard_normal(200_000)
    b = stats.truncnorm(-2, 2).rvs(200_000, random_state=rng) / 0.87962566103423978
    r = compare(a, b)
    assert not r["same"]
    assert not r["rejected"]["variance"] and r["rejected"]["ks"]
    assert family(r["a"]["kurtosis"]) == "normal" and family(r["b"]["kurtosis"]).startswith("truncated normal")


def test_diff_cli_same_and_different(run_cli):
    code, out, _ = run_cli("diff", "numpy:glorot_uniform", "numpy:glorot_uniform_tf", "--samples", "50000")
    assert code == 0, out
    assert "same distribution" in out
    assert "(128, 512) (tf layout)" in out  # the torch (512, 128) shape mapped to tf
    code, out, _ = run_cli("diff", "numpy:torch_linear_default", "numpy:flax_dense_default", "--shape", "256,128",
                           "--samples", "50000")
    assert code == 1
    assert "variance differs" in out and "looks uniform" in out and "looks truncated normal" in out


@pytest.mark.parametrize(("args", "message"), [
    (("diff", "numpy", "numpy:he_normal"), "expected FRAMEWORK:ENTRY_ID"),
    (("diff", "numpy:he_normall", "numpy:he_normal"), "numpy has no entry 'he_normall' (did you mean he_normal"),
])
def test_diff_bad_input(run_cli, args, message):
    code, _, err = run_cli(*args)
    assert code == 2 and message in err


def test_matrix_markdown(run_cli, tmp_path):
    path = tmp_path / "m.md"
    code, out, _ = run_cli("matrix", "numpy", "--markdown", str(path))
    assert "he_normal" in out
    assert code == 0
    text = path.read_text()
    assert text.startswith("| scheme | numpy |")
    row = next(line for line in text.splitlines() if line.startswith("| he_normal |"))
    assert "caffe_msra" in row and "kaiming_normal" in row  # matched by parameters, not by name


def test_diff_junit_and_markdown(run_cli, tmp_path, monkeypatch):
    import xml.etree.ElementTree as ET

    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    junit, md = tmp_path / "d.xml", tmp_path / "d.md"
    code, _, _ = run_cli("diff", "numpy:glorot_normal", "numpy:glorot_truncated_normal", "--samples", "50000",
                         "--junit", str(junit), "--markdown", str(md))
    assert code == 1
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite.get("tests") == "1" and suite.get("failures") == "1"
    case = suite.find("testcase")
    assert case.get("name") == "numpy:glorot_normal vs numpy:glorot_truncated_normal"
    assert "looks truncated normal" in case.find("failure").text
    text = md.read_text()
    assert text.startswith("### initspec diff: **different distributions**")
    assert "`numpy:glorot_truncated_normal`" in text and summary.read_text() == text
