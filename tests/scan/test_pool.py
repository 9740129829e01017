"""The scan's worker pool: a hang, a dying worker or a raising task costs one row, never the run."""

from __future__ import annotations

import time

from initspec.scan.pool import run_tasks


def _lost(task, why):
    return {"lost": why, "task": task[1]}


def test_results_come_back_in_order_over_two_workers():
    rows = run_tasks([("pool_tasks.echo", i) for i in range(6)], workers=2, on_lost=_lost)
    assert [r["value"] for r in rows] == list(range(6))


def test_a_hang_is_killed_at_the_timeout_and_the_others_finish():
    t0 = time.monotonic()
    tasks = [("pool_tasks.echo", 1), ("pool_tasks.hang", 2), ("pool_tasks.echo", 3)]
    rows = run_tasks(tasks, workers=2, timeout=4, on_lost=_lost)
    assert rows[0] == {"value": 1} and rows[2] == {"value": 3}
    assert rows[1]["lost"].startswith("timed out after 4 s")
    assert time.monotonic() - t0 < 60  # the hung worker was killed, not waited for


def test_a_worker_that_dies_is_replaced():
    tasks = [("pool_tasks.hard_exit", 1), ("pool_tasks.echo", 2), ("pool_tasks.echo", 3)]
    rows = run_tasks(tasks, workers=1, timeout=60, on_lost=_lost)
    assert rows[0]["lost"] == "the worker process died (exit code 3)"
    assert [r.get("value") for r in rows[1:]] == [2, 3]


def test_a_task_that_raises_systemexit_is_a_row():
    rows = run_tasks([("pool_tasks.raises", 1), ("pool_tasks.echo", 2)], workers=1, on_lost=_lost)
    assert rows[0]["error"].startswith("SystemExit") and rows[1] == {"value": 2}


def test_one_worker_serves_many_tasks():
    rows = run_tasks([("pool_tasks.pid", i) for i in range(4)], workers=1, on_lost=_lost)
    assert len({r["pid"] for r in rows}) == 1


def test_workers_end_when_the_scan_is_killed(tmp_path):
    """A scan killed from outside (SIGKILL: no finally runs) leaves no worker behind."""
    import os
    import signal
    import subprocess
    import sys

    pids = tmp_path / "pids"
    here = os.path.dirname(__file__)
    code = (f"import sys; sys.path.insert(0, {here!r})\n"
            "from initspec.scan.pool import run_tasks\n"
            "run_tasks([('pool_tasks.hang', 1)], workers=1, on_lost=lambda t, w: {})\n")
    p = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 60
        children: list[int] = []
        while time.monotonic() < deadline and len(children) < 2:  # the resource tracker and the worker
            time.sleep(0.5)
            out = subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True, text=True).stdout
            children = [int(x) for x in out.split()]
        assert children, "the pool started no worker"
        pids.write_text(" ".join(map(str, children)))
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
        time.sleep(10)  # the watch polls once a second; a loaded machine gets some slack
        alive = [c for c in children if os.path.exists(f"/proc/{c}") and
                 "Z" not in open(f"/proc/{c}/stat").read().split()[2]]
        assert not alive, f"workers outlived their scan: {alive}"
    finally:
        if p.poll() is None:
            p.kill()
