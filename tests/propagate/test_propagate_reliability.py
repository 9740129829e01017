"""Issue 25, the propagate side: no model or initializer decides the exit code or hangs the run; bad input is
one line and exit 2; ``--json -`` is the report alone.  In-process (the guard turns ``sys.exit`` and
``os._exit`` into errors, so an in-process run survives them); the torch cases run in tox torch."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the models the tests name as targets

STACK = ("he_normal", "-a", "relu", "--depth", "3", "--width", "16", "--batch", "8")


def _one_line(err: str) -> bool:
    return len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize(("args", "message"), [
    (("--width", "1000000000"), "needs 12 EB; the limit is 17.2 GB"),
    (("--depth", "100000000000000000000"), "the limit is 17.2 GB"),
    (("--batch", "1000000000"), "needs 1.02 TB"),
    (("--conv", "99999x99999"), "at most 7x7"),
    (("--conv", "9x9"), "without wrapping onto itself"),
    (("--widths", "5," + "9" * 5000), "is not a positive integer below 10^12"),
    (("--seeds", "1" + "0" * 30), "--seeds must be at most 1000"),
    (("-a", "wofz"), "scipy.special.wofz is not a real-valued function of one variable"),
    (("-a", "sici"), "2 output(s)"),
    (("--timeout", "-1"), "--timeout must be a finite non-negative number"),
])
def test_unbounded_sizes_and_unreal_activations_are_one_line(run_cli, args, message):
    code, _, err = run_cli("propagate", *STACK, *args)
    assert code == 2 and message in err and _one_line(err), err


@pytest.mark.parametrize(("name", "message"), [
    ("exits_3", "called sys.exit(3)"), ("hard_exit", "called os._exit(0)"),
    ("raises_base", "raised BaseException: not an Exception"),
    ("returns_none", "the initializer returned NoneType, not an array of shape (16, 16)"),
    ("returns_generator", "raised TypeError"),
])
def test_a_target_that_exits_or_breaks_fails_the_run(run_cli, name, message):
    code, out, err = run_cli("propagate", *STACK, "--target", f"hostile_inits:{name}", "--convention", "numpy")
    assert code == 1 and out.startswith("ERROR  ") and message in out and not err, out + err


def test_a_target_that_sleeps_is_stopped_by_the_timeout(run_cli):
    t0 = time.monotonic()
    code, out, _ = run_cli("propagate", *STACK, "--target", "hostile_inits:sleeps", "--convention", "numpy",
                           "--timeout", "1")
    assert code == 1 and "took longer than its time limit (1 s; --timeout)" in out
    assert time.monotonic() - t0 < 30


def test_json_to_stdout_is_the_report_alone(run_cli):
    code, out, err = run_cli("propagate", *STACK, "--json", "-")
    assert code == 0 and json.loads(out)["verdict"]["ok"] and "PASS" in err


def test_a_matplotlib_that_raises_on_import_is_one_line(run_cli, monkeypatch, tmp_path):
    """Not an ImportError: a broken install (here a finder that raises RuntimeError) must not be a traceback."""
    class Broken:
        def find_spec(self, name, path=None, target=None):
            if name == "matplotlib" or name.startswith("matplotlib."):
                raise RuntimeError("broken matplotlib")
            return None

    for mod in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setattr(sys, "meta_path", [Broken(), *sys.meta_path])
    code, _, err = run_cli("propagate", *STACK, "--html", str(tmp_path / "p.html"))
    assert code == 2 and "--html needs matplotlib, which failed to import: RuntimeError: broken matplotlib" in err
    assert _one_line(err)


# -- models (torch) ----------------------------------------------------------------------------------

HOSTILE = [
    ("forward_sys_exit", "the forward pass of propagate_hostile:hostile_model('forward_sys_exit') called sys.exit(3)"),
    ("forward_base_exception", "raised BaseException: not an Exception"),
    ("eval_os_exit", "propagate_hostile:hostile_model('eval_os_exit').eval() called os._exit(7)"),
    ("backward_raises", "the backward pass of propagate_hostile:hostile_model('backward_raises') raised "
                        "RuntimeError: no gradient kernel for this input"),
    ("none", "its output is None, not a tensor"),
    ("empty_tuple", "its output is an empty tuple, not a tensor"),
    ("string", "its output is a builtins.str, not a tensor"),
    ("integer", "its output is a torch.int64 tensor, not a real floating one"),
    ("complex", "its output is a torch.complex64 tensor, not a real floating one"),
    ("detached", "its output is detached from the input"),
    ("empty", "its output is an empty tensor (0, 4)"),
]


@pytest.mark.parametrize(("kind", "message"), HOSTILE)
def test_a_hostile_or_unusable_model_fails_the_run_in_one_line(run_cli, kind, message):
    pytest.importorskip("torch")
    code, out, err = run_cli("propagate", "--model", f"propagate_hostile:hostile_model('{kind}')", "--input-shape",
                             "2,4")
    assert code == 1 and out.startswith("ERROR  ") and message in out, out + err
    assert len(out.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_forward_that_sleeps_is_stopped_by_the_timeout(run_cli):
    pytest.importorskip("torch")
    t0 = time.monotonic()
    code, out, _ = run_cli("propagate", "--model", "propagate_hostile:hostile_model('forward_sleeps')",
                           "--input-shape", "2,4", "--timeout", "1")
    assert code == 1 and "took longer than its time limit (1 s; --timeout)" in out
    assert time.monotonic() - t0 < 30


def test_a_transformers_output_with_many_logits_is_measured(run_cli):
    """``getattr(y, "logits", None) or y`` asked a many-element tensor for its truth value: every classifier."""
    pytest.importorskip("transformers")
    code, out, err = run_cli("propagate", "--model", "propagate_hostile:hostile_model('hf_logits')", "--input-shape",
                             "2,4", "--json", "-")
    data = json.loads(out)
    assert code == 0 and data["layers"][0]["backward"]["second_moment"] > 0 and "whole depth" in err


def test_a_model_report_to_stdout_is_the_json_alone(run_cli):
    pytest.importorskip("torch")
    code, out, err = run_cli("propagate", "--model", "propagate_inits:torch_mlp(2, 8)", "--input-shape", "4,8",
                             "--json", "-")
    assert code == 0 and json.loads(out)["framework"] == "torch" and err.startswith("initspec propagate --model")
