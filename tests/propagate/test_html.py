"""``initspec propagate --html``: the signal-propagation page of a synthetic stack (numpy backend)."""

from __future__ import annotations

import base64
import re

import pytest

pytest.importorskip("matplotlib")


def test_html_page_is_written_with_the_plot_and_names_every_layer(run_cli, tmp_path):
    page = tmp_path / "p.html"
    code, out, _ = run_cli("propagate", "he_normal", "--activation", "relu", "--depth", "6", "--width", "64",
                           "--batch", "32", "--html", str(page))
    assert code == 0, out
    text = page.read_text()
    names = re.findall(r"<tr><td>\d+</td><td>([^<]+)</td>", text)
    assert len(names) == 6 and len(set(names)) == 6  # one row per layer, each named
    png = re.search(r'src="data:image/png;base64,([^"]+)"', text)
    assert png and base64.b64decode(png.group(1)).startswith(b"\x89PNG")
    assert "forward: preserved" in text


def test_a_vanishing_stack_says_so_on_the_page(run_cli, tmp_path):
    """torch's Linear default under ReLU (×1/6 per layer, see test_stack.py) is a FAIL page, not only a FAIL exit."""
    page = tmp_path / "v.html"
    code, _, _ = run_cli("propagate", "torch_linear_default", "--activation", "relu", "--depth", "10", "--width", "128",
                         "--batch", "32", "--html", str(page))
    assert code == 1 and "vanishing" in page.read_text() and "FAIL" in page.read_text()


def test_html_is_refused_with_gains(run_cli, tmp_path):
    code, _, err = run_cli("propagate", "--gains", "--html", str(tmp_path / "g.html"))
    assert code == 2 and "--html" in err and len(err.strip().splitlines()) == 1


def test_model_page_plots_the_leaves_and_the_residual_branches(run_cli, tmp_path):
    """``--model --html``: the per-leaf panels, the branch/stream panel and one table row per leaf and branch."""
    pytest.importorskip("torch")
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    page = tmp_path / "m.html"
    code, out, _ = run_cli("propagate", "--model", "propagate_inits:torch_resnet(2, 8, False)", "--input-shape",
                           "2,3,8,8", "--html", str(page))
    text = page.read_text()
    assert code == 0, out
    png = re.search(r'src="data:image/png;base64,([^"]+)"', text)
    assert png and base64.b64decode(png.group(1)).startswith(b"\x89PNG")
    assert "Residual branches" in text and text.count("layer1.") >= 2 + 12  # 2 branches, 12 leaves inside
    assert "branch dominates its stream at init" in text
