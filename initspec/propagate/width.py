"""The coordinate check with a verdict: each layer's activation scale against width, at init and after training steps.

muP's coordinate check (microsoft/mup, ``mup/coord_check.py``@1981497: ``_get_coord_data``
builds each width's model after ``torch.manual_seed(seed)``, trains it for ``nsteps`` on one fixed
batch, and records a statistic of every module's output at each step through forward hooks;
``plot_coord_data`` draws it against width, log-log) is a picture people find hard to read (mup#42,
mup#71).  Here the family ``ATTR(width=W)`` is built for every width and seed, each leaf layer's
RMS sqrt(E[h²]) is recorded at init (t = 0) and after ``--steps`` optimizer steps (the forward pass
that follows the last step), and the picture becomes a number per layer: the exponent k of
RMS ∝ width^k (``fit``).

Training: a fixed synthetic batch (the N(0, 1) input of ``--input-shape`` and an N(0, 1) target of
the output's shape, both from the seed, the same at every width), loss mean((y − target)²), the
model in training mode (mup's ``model.train()``), SGD or Adam from torch.optim or any
``MODULE:ATTR`` called as ``ATTR(model.parameters(), lr=LR)`` (torch.optim's classes, mup's
``MuAdam``/``MuSGD``).  Steps need torch; a Keras or Flax family is checked at init (``--steps 0``).
"""

from __future__ import annotations

import math
from typing import Any

from initspec.errors import InputError
from initspec.propagate import leaves, widthfit
from initspec.propagate.leaves import ModelError

#: mup's default learning rates (``mup/coord_check.py`` get_coord_data: ``lr = 0.1 if optimizer == 'sgd'
#: else 1e-3``); mup's README suggests a larger one for the check
DEFAULT_LR = {"sgd": 0.1, "adam": 1e-3}
#: mup's example runs 5 seeds (``mup/coord_check.py`` __main__: ``nseeds = 5``)
DEFAULT_SEEDS = 5
MAX_WIDTHS = 64
MAX_STEPS = 10_000


def parse_family(text: str) -> list[int]:
    """'256,512,1024' -> [256, 512, 1024]: distinct positive integers, at least two (one line, exit 2 otherwise)."""
    items = [s.strip() for s in text.split(",")]
    out = []
    for item in items:
        if not item.isdigit() or int(item) < 1 or len(item) > 10:
            raise InputError(f"--widths {leaves.short(text)!r}: {leaves.short(item, 20)!r} is not a positive integer "
                             "below 10^10")
        out.append(int(item))
    if len(set(out)) < 2 or len(out) > MAX_WIDTHS:
        raise InputError(f"--widths {leaves.short(text)!r}: give 2 to {MAX_WIDTHS} distinct widths, e.g. 64,128,256")
    if len(set(out)) != len(out):
        raise InputError(f"--widths {leaves.short(text)!r}: a width is given twice")
    return sorted(out)


def _optimizer(spec: str, model: Any, lr: float, timeout: float | None) -> Any:
    import torch

    if spec == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr)
    if spec == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr)
    from initspec.frameworks.target import parse_target

    fn = parse_target(spec).load()
    try:
        opt = leaves.call(fn, model.parameters(), lr=lr, what=f"--optimizer {leaves.short(spec)}", timeout=timeout)
    except ModelError:
        raise
    except Exception as e:  # noqa: BLE001 - the optimizer factory is user code: its failure fails the run
        raise ModelError(f"--optimizer {leaves.short(spec)} raised {type(e).__name__}: {leaves.first_line(e)}"
                         ) from None
    if not (callable(getattr(opt, "step", None)) and callable(getattr(opt, "zero_grad", None))):
        raise ModelError(f"--optimizer {leaves.short(spec)} returned {leaves.describe(opt)}, not an optimizer "
                         "(no step/zero_grad)")
    return opt


def _torch_run(model: Any, target: str, input_shape: tuple[int, ...], seed: int, steps: int, optimizer: str,
               lr: float, timeout: float | None) -> dict[int, dict[str, tuple[str, float]]]:
    """{t: {layer: (type, RMS)}} at t = 0 and t = steps for one built torch model."""
    import torch

    from initspec.propagate.model_torch import output

    seen: dict[str, tuple[str, float]] = {}
    counts: dict[str, int] = {}
    handles = []
    for name, mod in model.named_modules():
        if next(iter(mod.children()), None) is not None:
            continue
        name = name or type(mod).__name__

        def hook(m: Any, inp: Any, out: Any, name: str = name) -> None:
            if isinstance(out, torch.Tensor) and out.is_floating_point() and out.numel():
                n = counts[name] = counts.get(name, 0) + 1
                with torch.no_grad():
                    seen[name if n == 1 else f"{name}#{n}"] = (type(m).__name__,
                                                               float(out.detach().double().pow(2).mean().sqrt()))

        handles.append(mod.register_forward_hook(hook))
    gen = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(*input_shape, generator=gen)
    what = leaves.short(target)
    out: dict[int, dict[str, tuple[str, float]]] = {}
    try:
        leaves.call(model.train, what=f"{what}.train()", timeout=timeout)
        opt = _optimizer(optimizer, model, lr, timeout) if steps else None
        y_target = None
        for t in range(steps + 1):
            seen.clear()
            counts.clear()
            y = output(leaves.forward(target, input_shape, model, x, timeout=timeout), target)
            if t in (0, steps):
                out[t] = dict(seen)
            if t == steps:
                break
            if y_target is None:
                y_target = torch.randn(y.shape, generator=gen)

            def step(y: Any = y, y_target: Any = y_target) -> None:
                opt.zero_grad()
                ((y - y_target) ** 2).mean().backward()
                opt.step()

            try:
                leaves.call(step, what=f"training step {t + 1} of {what}", timeout=timeout)
            except ModelError:
                raise
            except Exception as e:  # noqa: BLE001 - the model's backward or the optimizer failed
                raise ModelError(f"training step {t + 1} of {what} raised {type(e).__name__}: "
                                 f"{leaves.first_line(e)}") from None
    finally:
        for h in handles:
            h.remove()
    return out


def coord_check(target: str, input_shape: tuple[int, ...], widths: list[int], *, steps: int = 0,
                seeds: int = DEFAULT_SEEDS, optimizer: str = "adam", lr: float | None = None,
                timeout: float | None = leaves.DEFAULT_TIMEOUT, progress: Any = None) -> dict[str, Any]:
    """Build ``target(width=W)`` for every width and seed, record every leaf's RMS at t = 0 and t = steps,
    fit the exponent per layer: the dict ``--json`` writes (``progress(done, total, label)`` hears of each
    model)."""
    from initspec.propagate.model import build_seeded, load, model_stats

    if not 0 <= steps <= MAX_STEPS:
        raise InputError(f"--steps must be an integer in [0, {MAX_STEPS}], got {steps!r}")
    if not 2 <= seeds <= 1000:
        raise InputError(f"--seeds must be an integer in [2, 1000] with --widths (the band is the seeds' spread), "
                         f"got {seeds!r}")
    opt = optimizer.strip()
    if opt not in DEFAULT_LR and ":" not in opt:
        raise InputError(f"--optimizer {leaves.short(opt)!r}: use sgd, adam or MODULE:ATTR (called as "
                         "ATTR(model.parameters(), lr=LR))")
    lr = DEFAULT_LR.get(opt, 1e-3) if lr is None else lr
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise InputError(f"--lr must be a finite number > 0, got {lr!r}")
    load(target, {"width": widths[0]})  # a factory without width= is bad input before anything is built
    runs: dict[int, list[dict[int, dict[str, tuple[str, float]]]]] = {}
    framework = None
    for w in widths:
        runs[w] = []
        for s in range(seeds):
            if progress:
                progress(len(widths[:widths.index(w)]) * seeds + s, len(widths) * seeds, f"width {w}, seed {s}")
            obj, fw = build_seeded(target, s, {"width": w}, timeout)
            framework = fw
            if fw == "torch":
                runs[w].append(_torch_run(obj, target, input_shape, s, steps, opt, lr, timeout))
                continue
            if steps:
                raise InputError(f"--steps {steps}: training steps need a torch model ({leaves.short(target)} is "
                                 f"{fw}); a Keras or Flax family is checked at init, --steps 0")
            r = model_stats(target, input_shape, s, extra={"width": w}, timeout=timeout, residual_branches=False,
                            backward=False)
            runs[w].append({0: {rec["name"]: (rec["type"], math.sqrt(rec["forward"]["second_moment"]))
                                for rec in r["layers"]}})
    times = sorted({0, steps})
    fits = widthfit.fit_all(runs, widths, seeds, times)
    return {"model": target, "framework": framework, "input_shape": list(input_shape), "widths": widths,
            "seeds": seeds, "steps": steps, "optimizer": opt if steps else None, "lr": lr if steps else None,
            "loss": "mean((y - t)^2), t ~ N(0, 1) fixed per seed" if steps else None,
            "statistic": "RMS sqrt(E[h^2]) of each leaf output", **fits}


def render(result: dict[str, Any]) -> str:
    """The terminal view: one row per layer, the exponent and its band at each time, the verdict."""
    times = [str(t) for t in result["times"]]
    lines = [f"initspec propagate --model {result['model']} --widths {','.join(map(str, result['widths']))} "
             f"({result['framework']}; {result['seeds']} seeds; RMS of each leaf output"
             + (f"; {result['steps']} {result['optimizer']} steps at lr {result['lr']:g})" if result["steps"]
                else "; at init)"),
             f"exponent k of RMS ∝ width^k per layer; band: ±t·SE over the seeds' slopes, t at "
             f"{1 - result['alpha']:.4g} family-wise over {result['fits']} fits (Bonferroni), t = {result['t']:.3g}",
             f"{'#':>3}  {'layer':<24} {'type':<12} " + "  ".join(f"{'t=' + t:<34}" for t in times)]
    for i, layer in enumerate(result["layers"], 1):
        cells = []
        for t in times:
            f = layer["times"][t]
            cells.append(f"{widthfit.cell(f):<34}")
        lines.append(f"{i:>3}  {layer['name'][:24]:<24} {layer['type'][:12]:<12} " + "  ".join(cells))
    bad = result["verdict"]["unstable"]
    if result["dropped"]:
        lines.append(f"not at every width (not fitted): {', '.join(result['dropped'][:6])}")
    lines.append("width-stable: every layer, at every time" if not bad else
                 f"NOT width-stable: {len(bad)} layer/time(s): " + ", ".join(bad[:8]) + (" ..." if len(bad) > 8
                                                                                          else ""))
    lines.append("PASS" if result["verdict"]["ok"] else "FAIL")
    return "\n".join(lines)

