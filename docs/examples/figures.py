"""The manual's figures, drawn from real runs with fixed seeds by the same code the HTML reports use.

    python docs/examples/figures.py [OUTDIR]      (default: docs/figures)

- ``propagate-torch-linear-default.png``: ``initspec propagate torch_linear_default -a relu --depth 20
  --width 256`` (what ``--html`` draws): measured E[h²] and E[g²] on the predicted ×1/6 per layer.
- ``propagate-he-normal.png``: the same stack under ``he_normal``: preserved.
- ``check-std-as-variance.png``: the histogram and QQ plot ``check --html`` draws for a failing result,
  ``mutants:normal_vs(2.0, bug='std_as_variance')`` held to ``he_normal`` on 512x128.
- ``check-fan-swapped.png``: the variance-against-fan plot ``check --html`` draws per initializer, for
  ``mutants:normal_vs(2.0, bug='fan_swapped')`` held to ``he_normal`` on the default shapes.

tests/test_docs_examples.py draws them again and compares them with the stored ones.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
FIGURES = HERE.parent / "figures"


def _save(fig, path: Path) -> None:
    """PNG through Agg with no metadata, so the same figure gives the same bytes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    fig.savefig(path, format="png", dpi=100, metadata={"Software": None})


def draw(out: Path) -> list[Path]:
    """Every figure into ``out``; the paths written."""
    sys.path.insert(0, str(ROOT / "tests"))  # the mutants (tests/mutants) are the failing initializers
    from initspec import api
    from initspec.propagate.html import figure as propagate_figure
    from initspec.propagate.run import propagate
    from initspec.reports.html import _mpl, fan_figure, result_figure

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for scheme, name in (("torch_linear_default", "propagate-torch-linear-default.png"),
                         ("he_normal", "propagate-he-normal.png")):
        result = propagate(scheme, "relu", depth=20, width=256)
        _save(propagate_figure(result), out / name)
        written.append(out / name)
    mpl = _mpl()
    report = api.check("mutants:normal_vs(2.0, bug='std_as_variance')", scheme="he_normal", shapes=[(512, 128)])
    _save(result_figure(report.results[0], mpl), out / "check-std-as-variance.png")
    written.append(out / "check-std-as-variance.png")
    report = api.check("mutants:normal_vs(2.0, bug='fan_swapped')", scheme="he_normal")
    _save(fan_figure(report.results, mpl), out / "check-fan-swapped.png")
    written.append(out / "check-fan-swapped.png")
    return written


if __name__ == "__main__":
    for p in draw(Path(sys.argv[1]) if len(sys.argv) > 1 else FIGURES):
        print(f"wrote {p}")
