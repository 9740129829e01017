"""The launcher of ``initspec audit --world-size N``: N ranks started with torch.distributed's own
machinery -- ``torch.multiprocessing.start_processes`` (spawn) joining through a ``TCPStore`` this
process hosts on a free localhost port -- watched until they finish, fail or stop making progress.

Whatever a rank does (raises, exits, hangs, is killed), the run ends in one line naming the rank
and why (:class:`RankFailure`, exit 1), within ``--rank-timeout`` of its last progress, and no
process is left behind: each rank leads its own process group, and every group still alive is
killed before this returns.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from initspec.audit.shards.rank import WAITING, Board, Job
from initspec.audit.targets import BuildError
from initspec.errors import InputError

#: how often the launcher looks at the ranks (seconds)
POLL = 0.2
#: seconds a rank may take to start (interpreter, imports, the process group) when --rank-timeout is shorter
STARTUP = 120.0
#: the phases of a rank's start
STARTING = (" starting", " importing torch", " joining the process group", " importing torch's parallel APIs")


class RankFailure(BuildError):
    """A rank that raised, exited, hung or was killed: the message is the one line to show."""


def launch(job: Job, world: int) -> Any:
    """Run ``job`` on ``world`` ranks; rank 0's report, or RankFailure / InputError."""
    import torch.distributed as dist
    import torch.multiprocessing as mp

    # the ranks' rendezvous; port 0: the system picks a free one (two audits at once never collide)
    store = dist.TCPStore("127.0.0.1", 0, None, True, timeout=timedelta(seconds=max(job.rank_timeout, 30.0)),
                          wait_for_workers=False)
    with tempfile.TemporaryDirectory(prefix="initspec-ranks-") as logdir:
        board = Board(logdir)
        with _main_hidden():
            ctx = mp.start_processes(_entry, args=(job, store.port, world, logdir), nprocs=world, join=False,
                                     start_method="spawn")
        try:
            return _watch(ctx.processes, board, job.rank_timeout)
        finally:
            _end(ctx.processes)
            for f in ctx.error_files:  # torch.multiprocessing's traceback files (a rank that raised past us)
                if f and os.path.exists(f):
                    os.unlink(f)


def run_on_ranks(entry: str, world: int, mesh: tuple[int, ...] | None = None, timeout: float = 300.0) -> Any:
    """``entry`` (MODULE:ATTR of a function ``(mesh) -> value``) on ``world`` ranks started and watched
    like an audit's; rank 0's value (picklable), or RankFailure."""
    job = Job("-", None, None, mesh or (world,), None, False, timeout, entry=entry)
    return launch(job, world)


@contextlib.contextmanager
def _main_hidden() -> Iterator[None]:
    """Spawned ranks need nothing of ``__main__``; multiprocessing's spawn would re-run the caller's
    script in each of them (multiprocessing/spawn.py get_preparation_data reads ``__spec__`` and
    ``__file__``), and a script without an ``if __name__ == "__main__":`` guard would launch again."""
    main = sys.modules.get("__main__")
    saved = {k: main.__dict__[k] for k in ("__file__", "__spec__") if main is not None and k in main.__dict__}
    try:
        for k in saved:
            if k == "__file__":
                del main.__dict__[k]
            else:
                main.__dict__[k] = None
        yield
    finally:
        if main is not None:
            main.__dict__.update(saved)


def _entry(rank: int, job: Job, port: int, world: int, logdir: str) -> None:
    from initspec.audit.shards.rank import rank_main

    rank_main(rank, job, port, world, logdir)


def _get(board: Board, key: str) -> str | None:
    value = board.get(key)
    return None if value is None else value.decode()


def _watch(procs: list[Any], board: Board, timeout: float) -> Any:
    from multiprocessing.connection import wait

    alive = {p.sentinel: r for r, p in enumerate(procs)}
    seen: dict[int, str] = {}
    since = {r: time.monotonic() for r in range(len(procs))}
    failed: list[int] = []
    while alive:
        for s in wait(list(alive), timeout=POLL):
            r = alive.pop(s)
            procs[r].join()
            if procs[r].exitcode != 0:
                failed.append(r)
        now = time.monotonic()
        for r in alive.values():
            phase = _get(board, f"phase{r}") or " starting"
            if seen.get(r) != phase:
                seen[r], since[r] = phase, now
        if failed:
            time.sleep(POLL)  # the ranks a failure takes down with it report within a moment
            failed += [alive.pop(s) for s in list(alive) if not procs[alive[s]].is_alive()]
            stuck = [r for r in alive.values() if not seen[r].startswith(WAITING)]
            if stuck and all(_kind(board, r) == "wait" for r in failed):  # they timed out waiting for it
                raise _hang(stuck, seen, now - min(since[r] for r in stuck), failed, "timed out waiting for it")
            raise _failure(procs, board, failed)
        stale = [r for r in alive.values()
                 if now - since[r] > (max(timeout, STARTUP) if seen[r] in STARTING else timeout)]
        working = [r for r in stale if not seen[r].startswith(WAITING)]
        if working or (stale and len(stale) == len(alive)):
            raise _hang(working or stale, seen, timeout, sorted(set(alive.values()) - set(working or stale)),
                        "waited for it")
    result = board.get("result")
    if result is None:
        raise RankFailure("rank 0 ended without a report")
    return pickle.loads(result)


def _failure(procs: list[Any], board: Board, failed: list[int]) -> Exception:
    """The one line for the first rank that failed on its own (not because another rank died)."""
    reasons = {}
    for r in failed:
        rec = _get(board, f"fail{r}")
        if rec is not None:
            kind, _, line = rec.partition("\n")
            reasons[r] = (kind, line)
    bad_input = [r for r in failed if reasons.get(r, ("",))[0] == "input"]
    own = [r for r in failed if reasons.get(r, ("own",))[0] != "wait"]
    r = (bad_input or own or failed)[0]
    if r in reasons:
        kind, line = reasons[r]
        if kind == "input":
            return InputError(line)
        return RankFailure(f"rank {r}: {line}")
    code = procs[r].exitcode
    phase = (_get(board, f"phase{r}") or " starting")[1:]
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return RankFailure(f"rank {r} was killed by {name} while {phase}")
    return RankFailure(f"rank {r} exited with code {code} while {phase}")


def _kind(board: Board, r: int) -> str:
    return (_get(board, f"fail{r}") or "own\n").partition("\n")[0]


def _hang(ranks: list[int], seen: dict[int, str], timeout: float, others: list[int],
          how: str) -> RankFailure:
    who = f"rank {ranks[0]}" if len(ranks) == 1 else f"ranks {', '.join(map(str, ranks))}"
    phases = sorted({seen[r][1:] for r in ranks})
    tail = f"; {'rank' if len(others) == 1 else 'ranks'} {', '.join(map(str, others))} {how}" if others else ""
    return RankFailure(f"{who} made no progress for {timeout:.3g} s (--rank-timeout) while {'; '.join(phases)}{tail}")


def _end(procs: list[Any]) -> None:
    """Kill every rank still alive, with whatever it started (its process group), and reap it."""
    for p in procs:
        try:  # the group outlives a rank that died first: its children would be left in it
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass  # not (yet) its own group leader: the process alone
        if p.is_alive():
            p.kill()
    for p in procs:
        p.join()


def check_settings(world: int, rank_timeout: float) -> None:
    if world < 1:
        raise InputError(f"--world-size must be at least 1, got {world}")
    if not rank_timeout > 0:
        raise InputError(f"--rank-timeout must be positive, got {rank_timeout}")
