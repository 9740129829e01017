"""Speed of ``propagate --model`` with residual branches and of the coordinate check (a script, not a timed test).

    python bench/propagate_width.py --repeat 3 --json bench/propagate_width.json

1. The residual recorder's cost: ``model_stats`` of the pre-LN stack (6 blocks, d 64, batch 8 × 32
   tokens) and of the 4-block ResNet (64 channels, 4 × 3 × 16 × 16) with the branches recorded
   (a ``TorchFunctionMode`` that sees every op) against without.
2. The coordinate check of tests/propagate/test_width.py: the standard MLP family at widths
   64..512, 8 seeds, 2 Adam steps (32 models built, 96 forward passes).
The best of --repeat runs is reported (the machine is shared; the best is the least disturbed),
with the median next to it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "propagate"))  # the models the tests name as targets

from propagate import _time  # noqa: E402 - bench/propagate.py, beside this script


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    import torch

    from initspec.propagate.model import model_stats
    from initspec.propagate.width import coord_check

    out: dict[str, object] = {"torch": torch.__version__, "cpus": os.cpu_count(), "load_average": os.getloadavg()[0]}
    for name, target, shape in (("pre-LN stack 6x64", "propagate_inits:torch_transformer(6, 64, 4, False)",
                                 (8, 32, 64)),
                                ("ResNet 4x64 16x16", "propagate_inits:torch_resnet(4, 64, False)", (4, 3, 16, 16))):
        model_stats(target, shape)  # warm: imports, first-call costs
        for on in (False, True):
            out[f"{name}, residual {'recorded' if on else 'off'}"] = _time(
                lambda t=target, s=shape, o=on: model_stats(t, s, residual_branches=o), args.repeat)
    out["coordinate check SP MLP 64..512, 8 seeds, 2 Adam steps"] = _time(
        lambda: coord_check("propagate_inits:mlp_family(mup=False)", (32, 32), [64, 128, 256, 512], steps=2, seeds=8,
                            lr=0.01), args.repeat)
    text = json.dumps(out, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()
