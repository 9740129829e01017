"""What each rank of ``initspec audit --world-size N`` does: join the process group through the
parent's TCPStore, build the target on ``meta``, parallelize, ``to_empty``, mark the storage, run
the model's init (or build, init, then shard), and audit (``loop.py``).  Every call into the user's
code runs under the engine's guard; the rank tells the parent its phase (for hangs) and, when it
fails, one line saying why, through files in the run's directory (written before torch is even
imported, so that a rank stuck importing is seen as stuck there).
"""

from __future__ import annotations

import os
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from initspec.audit.shards.loop import Settings
from initspec.errors import InputError

#: phases in which a rank waits for the others (a hang there is another rank's)
WAITING = "W"


@dataclass
class Job:
    """Everything a rank needs, pickled to it by the launcher."""

    target: str
    convention: str | None
    parallelize: str | None
    mesh: tuple[int, ...]
    init: str | None
    init_before_shard: bool
    rank_timeout: float
    settings: Settings = field(default_factory=Settings)
    #: MODULE:ATTR of a function ``(mesh) -> value`` run on every rank instead of the audit (rank 0's
    #: value is the result): how tests and benchmarks run code on ranks with the launcher's fault handling
    entry: str | None = None


class Board:
    """Small files in the run's directory, each replaced whole (a reader never sees half of one)."""

    def __init__(self, where: str) -> None:
        self.where = where

    def set(self, key: str, value: str | bytes) -> None:
        path = os.path.join(self.where, key)
        with open(path + ".tmp", "wb") as fh:
            fh.write(value.encode() if isinstance(value, str) else value)
        os.replace(path + ".tmp", path)

    def get(self, key: str) -> bytes | None:
        try:
            with open(os.path.join(self.where, key), "rb") as fh:
                return fh.read()
        except FileNotFoundError:
            return None


class Status:
    """The rank's phase, on the board for the launcher to watch."""

    def __init__(self, board: Board, rank: int) -> None:
        self.board, self.rank, self.phase, self.waiting = board, rank, "starting", False

    def __call__(self, phase: str, waiting: bool = False) -> None:
        self.phase, self.waiting = phase, waiting
        self.board.set(f"phase{self.rank}", f"{WAITING if waiting else ' '}{phase}")

    def fail(self, kind: str, line: str) -> None:
        self.board.set(f"fail{self.rank}", f"{kind}\n{line}")


def flow(job: Job) -> str:
    """The initialization flow, as the report's header says it."""
    par = job.parallelize or "fsdp"
    if job.init_before_shard:
        return f"build (init in the constructor{', then ' + job.init + '()' if job.init else ''}) → {par}"
    return f"meta → {par} → to_empty → {job.init + '()' if job.init else 'init_weights()/reset_parameters()'}"


def _user(fn: Callable[[], Any], what: str) -> Any:
    """The user's code under the guard: any way it fails is a BuildError (exit 1)."""
    from initspec.audit.targets import BuildError
    from initspec.engine.guard import DrawError, guarded

    try:
        return guarded(fn, what=what)
    except (InputError, BuildError):
        raise
    except DrawError as e:
        raise BuildError(str(e)) from None
    except Exception as e:  # noqa: BLE001 - the user's code failed
        first = (str(e).strip().splitlines() or [""])[0][:300]
        raise BuildError(f"{what} raised {type(e).__name__}: {first}".rstrip(": ")) from None


def builder(job: Job, mesh: Any, device: str, status: Callable[[str], None]) -> Callable[[int], Any]:
    """``build(seed)``: the target built, parallelized (unless ``mesh`` is None: the unsharded twin)
    and initialized on this rank."""
    import torch

    from initspec.audit.shards.local import mark_unwritten
    from initspec.audit.shards.parallel import apply, init_step
    from initspec.audit.targets import parse_audit_target
    from initspec.audit.walkers import torch as walker

    tgt = parse_audit_target(job.target, job.convention)
    par = job.parallelize or "fsdp"

    def init(model: Any, seed: int) -> None:
        fn, what = init_step(model, job.init)
        status(f"initializing the model ({what}, seed {seed})")
        with torch.no_grad():
            _user(fn, f"initializing the model ({what})")

    def build(seed: int) -> Any:
        status(f"building {job.target} (seed {seed})")
        torch.manual_seed(seed)  # the same seed on every rank, as SPMD code seeds
        if job.init_before_shard:
            model = _user(lambda: walker.build(tgt.factory, seed), f"building {job.target}")
            if job.init:
                init(model, seed)
        else:
            def on_meta() -> Any:
                with torch.device("meta"):
                    return tgt.factory()
            model = _user(on_meta, f"building {job.target} on the meta device")
            if not walker.recognizes(model):
                raise InputError(f"target {job.target!r} returned {type(model).__name__}, not a torch nn.Module")
        if job.init and not callable(getattr(model, job.init, None)):  # said before FSDP renames the class
            raise InputError(f"--init {job.init}: {type(model).__name__} has no method {job.init}()")
        if mesh is not None:
            status(f"parallelizing the model ({par}, seed {seed})")
            model = _user(lambda: apply(job.parallelize, model, mesh), f"parallelizing the model ({par})")
        if not job.init_before_shard:
            status(f"materializing the model (to_empty, seed {seed})")
            model = _user(lambda: model.to_empty(device=device), "to_empty") or model
            mark_unwritten(model)
            init(model, seed)
        return model

    return build


def rank_main(rank: int, job: Job, port: int, world: int, logdir: str) -> None:
    """A rank's life (the entry point ``torch.multiprocessing.start_processes`` spawns)."""
    os.setpgid(0, 0)  # the launcher ends this rank and anything it started as one process group
    fd = os.open(os.path.join(logdir, f"rank{rank}.log"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    board = Board(logdir)
    status = Status(board, rank)
    code = 0
    try:
        status("importing torch")
        import torch.distributed as dist

        status("joining the process group")
        store = dist.TCPStore("127.0.0.1", port, is_master=False, timeout=timedelta(seconds=job.rank_timeout))
        _run(rank, world, job, store, board, status)
    except KeyboardInterrupt:  # the launcher is gone (the death signal torch.multiprocessing sets)
        code = 1
    except InputError as e:
        status.fail("input", str(e))
        code = 2
    except BaseException as e:  # noqa: BLE001 - every other end is one line for the launcher
        from initspec.audit.targets import BuildError

        if isinstance(e, BuildError):
            line = str(e)
        else:
            first = (str(e).strip().splitlines() or [""])[0][:300]
            line = f"{status.phase}: {type(e).__name__}: {first}".rstrip(": ")
        from initspec.audit.shards.loop import PeerFailure

        status.fail("wait" if status.waiting or isinstance(e, PeerFailure) else "own", line)
        code = 1
    finally:
        import sys

        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)  # no interpreter teardown: a process group's threads can hang it


def _run(rank: int, world: int, job: Job, store: Any, board: Board, status: Status) -> None:
    import torch
    import torch.distributed as dist

    from initspec.audit.shards.loop import Comm, audit_loop
    from initspec.audit.shards.parallel import make_mesh

    cuda = torch.cuda.is_available() and torch.cuda.device_count() >= 1
    backend, device = ("nccl", "cuda") if cuda else ("gloo", "cpu")
    if cuda:
        torch.cuda.set_device(rank % torch.cuda.device_count())
    # collectives time out after the launcher's watch has ended a hang (it names the rank that hangs)
    dist.init_process_group(backend, store=dist.PrefixStore("pg", store), rank=rank, world_size=world,
                            timeout=timedelta(seconds=job.rank_timeout + 30))
    status("importing torch's parallel APIs")
    import torch.distributed.fsdp
    import torch.distributed.tensor.parallel

    mesh = make_mesh(device, job.mesh, job.parallelize)
    if job.entry is not None:
        from initspec.audit.shards.parallel import load_function

        status(f"running {job.entry}")
        value = load_function(job.entry)(mesh)
        if rank == 0:
            board.set("result", pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
        status("done")
        dist.destroy_process_group()
        return
    comm = Comm()
    comm.note = status
    build = builder(job, mesh, device, status)
    timing: dict[str, float] = {}
    t0 = time.perf_counter()
    rep = audit_loop(build, comm, job.settings, timing)
    if rank == 0:
        rep.sharded.update({"backend": backend, "device": device, "rank_seconds": time.perf_counter() - t0})
        board.set("result", pickle.dumps(rep, protocol=pickle.HIGHEST_PROTOCOL))
    status("done")
    dist.destroy_process_group()
