"""The coordinate check as a picture: a standard and a muP MLP family, at init and after two Adam steps.

Writes docs/img/coord_check.png (2 x 2 panels: standard / muP, at init / after the steps) from real
runs of ``initspec.propagate.width.coord_check`` and prints each run's terminal view, the numbers
docs/guides/propagate.md quotes.  Run from the repository root (needs torch and matplotlib):

    PYTHONPATH=.:tests/propagate python docs/examples/coord_check.py
"""

from __future__ import annotations

import sys
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from initspec.propagate.html_model import draw_width
from initspec.propagate.width import coord_check, render

ROOT = Path(__file__).resolve().parents[2]
WIDTHS = [64, 128, 256, 512]
FAMILIES = [("standard (SP)", "propagate_inits:mlp_family(mup=False)", "adam"),
            ("μP (Tensor Programs V, Table 3)", "propagate_inits:mlp_family(mup=True)", "propagate_inits:mup_adam")]


def main() -> None:
    sys.path.insert(0, str(ROOT / "tests" / "propagate"))
    fig = Figure(figsize=(10.5, 8.4))
    for row, (title, target, optimizer) in enumerate(FAMILIES):
        result = coord_check(target, (32, 32), WIDTHS, steps=2, seeds=8, optimizer=optimizer, lr=0.01)
        print(f"$ initspec propagate --model '{target}' --input-shape 32,32 --widths {','.join(map(str, WIDTHS))} "
              f"--steps 2 --lr 0.01 --seeds 8 --optimizer {optimizer}")
        print(render(result), end="\n\n")
        for col, t in enumerate(("0", "2")):
            ax = fig.add_subplot(2, 2, 2 * row + col + 1)
            draw_width(ax, result, t)
            ax.set_title(f"{title}: " + ("at init" if t == "0" else "after 2 Adam steps, lr 0.01"), fontsize=9)
    fig.suptitle("RMS of every layer's output against width, log-log (8 seeds: mean and sd), the fitted exponent k\n"
                 "per layer (✗: outside its band); μP's zero-initialized readout is exactly 0 at init (not drawn)",
                 fontsize=9)
    fig.tight_layout()
    out = ROOT / "docs" / "img" / "coord_check.png"
    FigureCanvasAgg(fig).print_png(str(out))
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
