"""torch conventions: ``torch`` (an in-place ``fn(tensor, *args)``) and ``torch_module`` (a layer's default).

torch is imported inside the functions only, so ``import initspec`` never imports it.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from initspec.errors import InputError
from initspec.spec.reference import np_dtype

FRAMEWORK = "torch"
EXTRA = "torch"
CONVENTIONS = ("torch", "torch_module")


def version() -> str:
    import torch

    return str(torch.__version__)


def torch_dtype(name: str) -> Any:
    """The torch dtype of an initspec dtype name."""
    import torch

    np_dtype(name)  # an unknown name is an InputError here, with the list of valid ones
    return {"float64": torch.float64, "float32": torch.float32, "float16": torch.float16,
            "bfloat16": torch.bfloat16}[name]


def to_numpy(t: Any) -> np.ndarray:
    """A torch tensor as numpy, bit for bit (bfloat16 through its int16 bits and ml_dtypes)."""
    import torch

    t = t.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().view(np_dtype("bfloat16")).copy()
    return t.numpy().copy()


def _seed(seed: int) -> None:
    """Seed torch's CPU generator, the one every CPU initializer draws from.

    ``torch.manual_seed`` does the same and also queues lazy seeding of cuda/xpu/mtia,
    formatting a stack trace on each call: ~200 µs against ~3 µs, over tens of
    thousands of draws per run.
    """
    import torch

    torch.default_generator.manual_seed(seed)


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Run a draw on one intra-op thread, then restore the caller's setting.

    The tensors are small, so a second OpenMP thread only adds synchronisation; on a busy
    2-core machine its spin-waiting made comparisons 150x slower (trunc_normal_ of 512x128:
    32 ms against 1.8 ms of CPU).  torch's CPU generators are sequential, so the values do
    not depend on the thread count.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _accepts_dtype(cls: Any) -> bool:
    try:
        params = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "dtype" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def prepare(obj: Any, target: Any, convention: str):
    """A drawer for ``obj`` under the ``torch`` or ``torch_module`` convention."""
    if convention not in CONVENTIONS:
        raise InputError(f"the torch binding has no convention {convention!r}: use one of {', '.join(CONVENTIONS)}")
    if convention == "torch_module":
        return _module_drawer(obj, target)

    def draw(case: Any, dtype: str, seed: int) -> np.ndarray:
        import torch

        args = (*target.args, *case.args)
        kwargs = {**target.kwargs, **case.kwargs}
        _seed(seed)
        with torch.no_grad(), _one_thread(), warnings.catch_warnings():
            tensor = torch.empty(tuple(case.shape), dtype=torch_dtype(dtype))
            if tensor.is_floating_point():  # an initializer that fills nothing shows as all-NaN, never as stale memory
                tensor.fill_(float("nan"))  # on one thread too: two spin-waiting threads made this cost a draw
            # the deprecated aliases (nn.init.normal, ...) warn on every call
            warnings.simplefilter("ignore", FutureWarning)
            out = obj(tensor, *args, **kwargs)
        return to_numpy(out if isinstance(out, torch.Tensor) else tensor)

    return draw


def _module_drawer(cls: Any, target: Any):
    if target.has_call:
        raise InputError(f"--target {target.text!r}: a torch_module target names the class only; "
                         "constructor arguments go in each case's args/kwargs")
    takes_dtype = _accepts_dtype(cls)

    def draw(case: Any, dtype: str, seed: int) -> np.ndarray:
        import torch

        if not case.param:
            raise InputError(f"{target.text}: a torch_module case needs `param`, the parameter to read")
        kwargs = dict(case.kwargs)
        if takes_dtype:
            kwargs["dtype"] = torch_dtype(dtype)
        elif dtype != "float32":
            raise InputError(f"{target.text} takes no dtype argument: test it in float32 only")
        _seed(seed)
        with _one_thread():
            module = cls(*case.args, **kwargs)
        try:  # dotted names reach submodules: "out_proj.weight"
            param = functools.reduce(getattr, case.param.split("."), module)
        except AttributeError:
            raise InputError(f"{target.text}{case.args}: no parameter {case.param!r}") from None
        if not isinstance(param, torch.Tensor):
            raise InputError(f"{target.text}{case.args}: {case.param!r} is {type(param).__name__}, not a tensor")
        return to_numpy(param)

    return draw
