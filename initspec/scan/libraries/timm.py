"""timm: one model per architecture family, built with ``timm.create_model(NAME, pretrained=False)``.

``timm.list_models()`` names every variant (sizes, patch sizes, resolutions, training recipes);
they share their init code. A *family* is the models that share the timm module that registers
them, the class of the model they build and the set of layer classes inside it (so ``vit_base``
and ``vit_large`` are one family, a ViT with SwiGLU MLPs or a register token another). Each is
told from a build on the meta device (nothing allocated); the member with the fewest parameters
represents the family, built with 10 classes (and a 64 px image where it takes ``img_size``).
"""

from __future__ import annotations

from typing import Any

from initspec.scan import shrink
from initspec.scan.libraries import CannotBuild, Resolved, first_line

NAME = "timm"
FRAMEWORK = "torch"
ENUMERATES_IN_WORKERS = True


def version() -> str:
    import timm

    return str(timm.__version__)


def _meta(name: str, kwargs: dict[str, Any]) -> Any:
    import timm
    import torch

    with torch.device("meta"):
        return timm.create_model(name, pretrained=False, **kwargs)


def describe(name: str) -> dict[str, Any]:
    """A model's family key and parameter count, from a build on the meta device (in a worker)."""
    from timm.models import _registry

    try:
        model = _meta(name, {})
    except Exception as e:  # noqa: BLE001 - a model that does not build is its own family, and fails later
        return {"name": name, "key": f"{name} (does not build: {first_line(e)})", "params": 0}
    layers = sorted({type(m).__name__ for m in model.modules()})
    module = _registry._model_to_module.get(name, "?")
    return {"name": name, "key": f"{module}:{type(model).__name__}:{','.join(layers)}",
            "params": sum(p.numel() for p in model.parameters())}


def families(described: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for d in described:
        out.setdefault(d["key"], []).append(d)
    return out


def architectures(options: dict[str, Any], pool: Any) -> list[str]:
    """One representative per family (see the module docstring), sorted by name."""
    import timm

    names = timm.list_models()
    if options.get("only"):  # --only narrows what is described, for speed
        from initspec.scan.run import select

        names = select(names, options["only"])
    rows = pool("initspec.scan.libraries.timm.describe", names, "describing")
    rows = [r for r in rows if "key" in r]
    fams = families(rows)
    reps = sorted(min(members, key=lambda d: (d["params"], d["name"]))["name"] for members in fams.values())
    options.setdefault("notes", []).append(
        f"timm {timm.__version__}: {len(names)} models in {len(fams)} families (module, model class, layer "
        f"classes); each family is scanned through its smallest member")
    return reps


def resolve(name: str, options: dict[str, Any]) -> Resolved:
    limit = int(options.get("max_params") or 0)
    first_error = ""
    for kwargs in ({"num_classes": shrink.CLASSES, "img_size": shrink.IMAGE}, {"num_classes": shrink.CLASSES}, {}):
        try:
            n = sum(p.numel() for p in _meta(name, kwargs).parameters())
        except Exception as e:  # noqa: BLE001 - this option is not taken: try fewer
            first_error = first_error or first_line(e)
            continue
        if limit and n > limit:
            first_error = f"{n / 1e6:.1f}M parameters at its smallest (over --max-params)"
            continue
        args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        return Resolved(f"timm:{name}({args})" if args else f"timm:{name}", params=n)
    raise CannotBuild(first_error or "does not build")
