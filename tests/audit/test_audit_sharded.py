"""The sharded audit on torch (issue 20): ranks on CPU with gloo, at world sizes 2 and 4.

- every planted bug of ``shard_models.SCENARIOS`` fails with its finding id (cloned shards, replicas
  that differ, a fan from the local shard, storage never written) and every correct twin passes
  (initialize then shard; a per-block stream), on 1-D and 2-D meshes -- each world size is one
  launch that runs every scenario through ``audit_sharded`` on the ranks;
- the command line: torch's own init on a CPU mesh draws cloned shards (the finding of torch
  2.13), ``--init-before-shard`` passes, two audits at once do not collide, ``--compare-unsharded``;
- faults: a rank that raises, exits, hangs or is killed ends the run in one line naming the rank,
  exit 1, and no process of the run is left.

Power: the planted bugs are exact (bit-identical shards, copies that differ in every value, storage
still holding the sentinel) or gross (a std √2 or 2× the declared one over 32,768 values: tens of
standard errors).  The twins are held to torch's Linear defaults with a fixed seed, so each verdict
is fixed; Holm keeps each audit's false-alarm rate at alpha = 1e-4.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
dist = pytest.importorskip("torch.distributed")
if not dist.is_available():
    pytest.skip("torch.distributed is not available", allow_module_level=True)

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # shard_models: the targets, and the scenarios run on ranks

from shard_models import SCENARIOS  # noqa: E402

from initspec.audit.shards.launch import run_on_ranks  # noqa: E402


@functools.cache
def scenario_results(world: int) -> dict:
    return run_on_ranks("shard_models:scenarios", world)


@pytest.mark.parametrize("world", [2, 4])
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_planted_bug_fails_with_its_finding_and_its_twin_passes(world, name):
    if SCENARIOS[name][2] == "2d" and world < 4:
        pytest.skip("a 2-D mesh needs 4 ranks")
    got = scenario_results(world)[name]
    expected = got["expected"]
    if expected is None:
        assert got["ok"], got["messages"]
        assert not got["findings"]
        assert set(got["verdicts"].values()) == {"pass"}, got["verdicts"]
    else:
        assert not got["ok"]
        assert expected in got["findings"], got["messages"]
        assert [f for f in got["findings"] if f != expected] == [], got["messages"]


@pytest.mark.parametrize("world", [2, 4])
def test_findings_name_the_parameters_placements_and_ranks(world):
    res = scenario_results(world)
    everyone = "ranks 0, 1" if world == 2 else "ranks 0-3"
    cloned = res["torch_reset_tp"]
    # column-parallel weights and biases, row-parallel weights: every random sharded parameter
    assert sorted(cloned["findings"]["shards_cloned"]) == ["blocks.0.0.bias", "blocks.0.0.weight", "blocks.0.2.weight",
                                                           "blocks.1.0.bias", "blocks.1.0.weight", "blocks.1.2.weight"]
    text = cloned["messages"][0]
    assert f"blocks.0.2.weight (Shard(dim=1),) on dp={world}: the blocks of {everyone} are identical" in text
    assert f"torch {torch.__version__}" in text and "pytorch#138329" in text
    # the row-parallel bias is Replicate(): its copies must agree, and here they differ
    assert "blocks.0.2.bias (Replicate(),)" in res["rank_seed_tp"]["messages"][0]
    fans = res["local_fans_tp"]
    assert sorted(fans["findings"]["shard_fans"]) == ["blocks.0.2.weight", "blocks.1.2.weight"]
    assert f"(√{world})" in fans["messages"][0] and f"fan_in {256 // world}" in fans["messages"][0]
    assert fans["verdicts"]["blocks.*.*.weight[64x256]"] == "fail"  # and the declared law fails its check
    unwritten = res["skip_bias_tp"]["findings"]["uninitialized"]
    assert sorted(unwritten) == ["blocks.0.0.bias", "blocks.0.2.bias", "blocks.1.0.bias", "blocks.1.2.bias", "scale"]


def test_each_rank_sends_a_bounded_sample():
    """Rank 0 receives records and a sample bounded per group, not the parameters: at world 4 a rank
    holding a quarter of each sharded parameter sends about a quarter of what a rank sends at world 2."""
    two, four = (scenario_results(w)["block_seed_tp"]["gathered"] for w in (2, 4))
    assert max(four) < 0.6 * max(two)


# --- the command line -----------------------------------------------------------------------------


def _env(**extra: str) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "OPENBLAS_NUM_THREADS": "1", **extra}


def _start(*args: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "initspec", "audit", *args], env=_env(**env),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def _session(sid: int) -> list[str]:
    """The live processes of a session (the CLI started its own; every rank stays in it)."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[3]) == sid and fields[0] != "Z":
            out.append(f"{pid} {stat[:stat.rindex(')') + 1]}")
    return out


def _finish(proc: subprocess.Popen, timeout: float = 600) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    deadline = time.monotonic() + 10  # multiprocessing's resource tracker leaves when its pipe closes
    while _session(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _session(proc.pid) == [], "processes left behind"
    return proc.returncode, out, err


needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the processes from /proc")


@needs_proc
def test_torch_cpu_mesh_draws_cloned_shards_and_init_before_shard_passes(tmp_path):
    """The done criterion, both audits at once (free ports: they do not collide)."""
    js = tmp_path / "tp.json"
    a = _start("shard_models:mlp", "--world-size", "2", "--parallelize", "tp", "--seeds", "1", "--json", str(js),
               "--junit", str(tmp_path / "tp.xml"))
    spec = tmp_path / "spec.toml"
    spec.write_text('[params]\n"*.weight" = "torch_linear_default"\n"*.bias" = "torch_bias_default"\n')
    jb = tmp_path / "before.json"
    b = _start("shard_models:mlp", "--world-size", "2", "--parallelize", "tp", "--seeds", "1", "--init-before-shard",
               "--compare-unsharded", "--spec", str(spec), "--json", str(jb))
    code, out, err = _finish(a)
    assert code == 1, out + err
    assert "FINDING shards_cloned: 6 parameter(s)" in out and "blocks.0.0.weight (Shard(dim=0),) on tp=2" in out
    assert f"torch {torch.__version__}" in out
    doc = json.loads(js.read_text())
    f = next(f for f in doc["findings"] if f["id"] == "shards_cloned")
    assert f["severe"] and {d["param"]: d["ranks"] for d in f["details"]}["blocks.1.2.weight"] == [0, 1]
    assert doc["sharded"]["placements"]["blocks.0.2.bias"]["placements"] == "(Replicate(),)"
    # the finding's reproducing command runs the same sharded world
    assert "initspec audit shard_models:mlp --seed 0 --seeds 1 --world-size 2 --parallelize tp" in (
        tmp_path / "tp.xml").read_text()
    code, out, err = _finish(b)
    assert code == 0, out + err
    assert "laws agree" in out and "bit-equal to the unsharded init: 8 of 8" in out
    assert "FINDING" not in out
    # initialize then shard holds the same tensors as one process: the merged moments are the
    # single-process audit's to rounding, and so are the verdicts
    from initspec.audit.run import audit
    from initspec.audit.spec import load_spec

    one = {g.name: g for g in audit("shard_models:mlp", spec=load_spec(str(spec)), seeds=1).groups}
    sharded = {r["group"]: r for r in json.loads(jb.read_text())["results"]}
    assert sharded.keys() == one.keys()
    for name, r in sharded.items():
        m = one[name].moments
        assert r["observed"]["n"] == m.n and r["verdict"] == one[name].result.verdict == "pass"
        assert r["observed"]["mean"] == pytest.approx(m.mean, rel=1e-9, abs=1e-12)
        assert r["observed"]["var"] == pytest.approx(m.var, rel=1e-9)
        assert (r["observed"]["min"], r["observed"]["max"]) == (m.minimum, m.maximum)


@needs_proc
def test_compare_unsharded_reports_a_law_that_differs():
    """Through a parallelize function of the user's (MODULE:ATTR) and a named init method."""
    code, out, err = _finish(_start("shard_models:planted('local_fans')", "--world-size", "2", "--parallelize",
                                    "shard_models:tp_plan", "--init", "init_weights", "--seeds", "1",
                                    "--compare-unsharded"))
    assert code == 1, out + err
    assert "FINDING sharded_law_differs: 1 group(s)" in out and "var sharded/unsharded 2" in out
    assert "FINDING shard_fans" in out and "meta → shard_models:tp_plan → to_empty → init_weights()" in out


@needs_proc
@pytest.mark.parametrize(("how", "line"), [
    ("raise", "ERROR  rank 1: initializing the model (init_weights()) raised ValueError: planted failure"),
    ("exit", "ERROR  rank 1: initializing the model (init_weights()) called sys.exit(3)"),
    ("hang", "ERROR  rank 1 made no progress for 10 s (--rank-timeout) while initializing the model "
             "(init_weights(), seed 0); rank 0 waited for it"),
])
def test_a_failing_rank_ends_the_run_in_one_line(how, line):
    code, out, err = _finish(_start(f"shard_models:faulty('{how}')", "--world-size", "2", "--parallelize", "tp",
                                    "--seeds", "1", "--rank-timeout", "10"))
    assert (code, out.strip(), err) == (1, line, "")


@needs_proc
def test_a_rank_killed_mid_audit_ends_the_run_in_one_line(tmp_path):
    pidfile = tmp_path / "pid"
    proc = _start("shard_models:faulty('wait')", "--world-size", "2", "--parallelize", "tp", "--seeds", "1",
                  INITSPEC_TEST_PIDFILE=str(pidfile))
    deadline = time.monotonic() + 300
    while not (pidfile.exists() and pidfile.read_text()) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    os.kill(int(pidfile.read_text()), signal.SIGKILL)
    code, out, err = _finish(proc)
    assert (code, out.strip(), err) == (
        1, "ERROR  rank 1 was killed by SIGKILL while initializing the model (init_weights(), seed 0)", "")


@pytest.mark.parametrize(("args", "message"), [
    (["--world-size", "4", "--mesh", "3x2"], "--mesh 3x2: its 6 ranks are not --world-size 4"),
    (["--world-size", "2", "--parallelize", "pp"], "--parallelize 'pp': expected fsdp, tp, tp+fsdp or MODULE:ATTR"),
    (["--world-size", "2", "--parallelize", "tp+fsdp"], "--parallelize tp+fsdp needs a 2-D --mesh"),
    (["--mesh", "2x2"], "--mesh applies to a sharded audit: add --world-size N"),
    (["--world-size", "0"], "--world-size must be at least 1"),
])
def test_bad_sharded_options_are_one_line_exit_2(run_cli, args, message):
    code, out, err = run_cli("audit", "shard_models:mlp", *args)
    assert code == 2 and message in out + err and "Traceback" not in out + err


def test_audit_sharded_needs_a_process_group():
    from initspec.audit.shards import audit_sharded
    from initspec.errors import InputError

    if dist.is_initialized():
        pytest.skip("a process group is already initialized in this process")
    with pytest.raises(InputError, match=r"initialized torch\.distributed process group"):
        audit_sharded(torch.nn.Linear(4, 4))
