"""``initspec audit --world-size N`` for Flax and JAX targets: the initialization runs under
``jax.jit`` with ``out_shardings`` on an N-device mesh -- on CPU, N host devices, which JAX creates
only when ``XLA_FLAGS=--xla_force_host_platform_device_count=N`` is set before it starts: so in a
child process.  Each device's shard is one block (``merge.py``): the law of the assembled arrays,
shards that are copies, replicas that differ; and whether the sharded values equal the unsharded
ones, which JAX promises (jit's semantics do not depend on shardings; ``jax_threefry_partitionable``
makes random bits generation partitionable without changing that): checked, reported.

The sharding of each array: its last axis divisible by N, else its first, over the mesh axis
``x``; else replicated.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from initspec.audit.shards.merge import ShardRecord, finite_written, stream
from initspec.audit.shards.rank import WAITING, Board, Status
from initspec.audit.targets import BuildError
from initspec.errors import InputError


@dataclass
class JaxJob:
    target: str
    convention: str | None
    world: int
    settings: Any
    input_shape: tuple[int, ...] | None
    sys_path: list[str]


class LocalComm:
    """The collectives of one process holding every block (all devices are local)."""

    rank, world, sent = 0, 1, 0

    def note(self, what: str, waiting: bool = False) -> None:
        pass

    def gather(self, obj: Any) -> list[Any]:
        return [obj]

    def share(self, obj: Any) -> Any:
        return obj

    def scatter(self, parts: list[Any]) -> Any:
        return parts[0]


def spec_for(shape: tuple[int, ...], n: int) -> tuple[Any, ...]:
    """The PartitionSpec entries of one array: the last axis divisible by n, else the first, else none."""
    for axis in [len(shape) - 1, *range(len(shape) - 1)]:
        if axis >= 0 and shape[axis] % n == 0 and shape[axis] >= n:
            return tuple("x" if i == axis else None for i in range(len(shape)))
    return ()


class JaxSource:
    """The blocks of a JAX/Flax model: one per device shard (see ``loop.audit_loop``)."""

    framework = "jax"
    layout = "tf"

    def __init__(self, walker: Any, mesh_text: str) -> None:
        self.walker, self.mesh_text = walker, mesh_text
        self.framework = walker.FRAMEWORK

    def walk(self, model: Any) -> Any:
        return self.walker.walk(model.tree)

    def arrays(self, model: Any) -> list[tuple[Any, Any]]:
        """(walker Param, array) per parameter: the walker's storage key is the array's (or its nnx
        Variable's) identity."""
        return [(p, model.by_id.get(p.storage[1])) for p in self.walker.walk(model.tree)]

    def records(self, model: Any, rank: int) -> list[ShardRecord]:
        out = []
        for p, arr in self.arrays(model):
            if arr is None:
                continue
            spec = str(getattr(arr.sharding, "spec", "(one device)"))
            for shard in arr.addressable_shards:
                x = np.asarray(shard.data)
                offset = tuple(int(sl.start or 0) for sl in shard.index)
                rec = ShardRecord(p.path, int(shard.device.id), p.shape, p.dtype, tuple(x.shape), offset, spec,
                                  self.mesh_text, offset, holder="device")
                out.append(stream(rec, iter([x])))
        return out

    def sample(self, model: Any, wanted: dict[tuple[str, int], np.ndarray]) -> dict[tuple[str, int], np.ndarray]:
        shards = {(p.path, int(s.device.id)): s for p, arr in self.arrays(model) if arr is not None
                  for s in arr.addressable_shards}
        out = {}
        for (path, dev), pos in wanted.items():
            x = np.asarray(shards[(path, dev)].data).reshape(-1)[pos]
            out[(path, dev)] = finite_written(x, str(x.dtype))
        return out

    def causes(self, model: Any) -> dict[str, str]:
        return {}


@dataclass
class Built:
    """One instance: what the walker walks, and each array by the walker's storage identity."""

    tree: Any
    by_id: dict[int, Any]


def _initializer(tgt: Any, walker: Any, input_shape: tuple[int, ...] | None) -> Any:
    """``init(seed, shardings) -> Built``: the target's initialization under jit, with out_shardings
    (None: unsharded)."""
    import jax
    import jax.numpy as jnp

    if walker.FRAMEWORK == "jax":
        def init(seed: int, shardings: Any) -> Built:
            fn = jax.jit(tgt.factory) if shardings is None else jax.jit(tgt.factory, out_shardings=shardings)
            tree = fn(jax.random.key(seed))
            return Built(tree, {id(x): x for x in jax.tree_util.tree_leaves(tree)})
        return init, lambda seed: jax.eval_shape(tgt.factory, jax.random.key(seed))
    from flax import linen as nn

    callee = getattr(tgt.factory, "callee", None)
    if callee is not None and walker._takes_rngs(callee):
        from flax import nnx

        def create(seed: int) -> Any:
            return nnx.state(tgt.factory(rngs=nnx.Rngs(seed)))

        def init(seed: int, shardings: Any) -> Built:
            graphdef = nnx.graphdef(nnx.eval_shape(lambda: tgt.factory(rngs=nnx.Rngs(seed))))
            fn = jax.jit(create, static_argnums=0) if shardings is None else \
                jax.jit(create, static_argnums=0, out_shardings=shardings)
            model = nnx.merge(graphdef, fn(seed))
            by_id = {id(v): (v.get_value() if hasattr(v, "get_value") else v.value)
                     for _, v in nnx.iter_graph(model) if isinstance(v, nnx.Variable)}
            return Built(model, by_id)
        return init, lambda seed: jax.eval_shape(lambda: create(seed))
    module = tgt.factory()
    if not isinstance(module, nn.Module):
        raise InputError(f"target {tgt.text!r} returned {type(module).__name__}, not a Flax module")
    if input_shape is None:
        raise InputError(f"the linen {type(module).__name__} needs --input-shape (the dummy input, batch "
                         "dimension included, e.g. 1,28,28,1)")
    x = jnp.ones(tuple(input_shape), jnp.float32)
    owners: dict[tuple[str, ...], tuple[str, Any]] = {}

    def interceptor(next_fun: Any, args: Any, kwargs: Any, context: Any) -> Any:  # the flax walker's, traced
        m = context.module
        if m.scope is not None:
            owners.setdefault(tuple(m.scope.path), (type(m).__name__, getattr(m, "features", None)))
        return next_fun(*args, **kwargs)

    def linen_init(key: Any) -> Any:
        with nn.intercept_methods(interceptor):
            return module.init(key, x)

    def init(seed: int, shardings: Any) -> Built:
        fn = jax.jit(linen_init) if shardings is None else jax.jit(linen_init, out_shardings=shardings)
        variables = fn(jax.random.key(seed))
        return Built(walker.Linen(module, variables, owners), {id(v): v for v in jax.tree_util.tree_leaves(variables)})
    return init, lambda seed: jax.eval_shape(linen_init, jax.random.key(seed))


def child() -> None:
    """The child process: ``python -c '...child()' JOB_FILE BOARD_DIR``."""
    job_file, where = sys.argv[1], sys.argv[2]
    board = Board(where)
    status = Status(board, 0)
    code = 0
    try:
        with open(job_file, "rb") as fh:
            job = pickle.load(fh)
        _child(job, board, status)
    except InputError as e:
        status.fail("input", str(e))
        code = 2
    except BaseException as e:  # noqa: BLE001 - one line for the parent
        line = str(e) if isinstance(e, BuildError) else \
            f"{status.phase}: {type(e).__name__}: {(str(e).strip().splitlines() or [''])[0][:300]}".rstrip(": ")
        status.fail("own", line)
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _child(job: JaxJob, board: Board, status: Status) -> None:
    import importlib

    from initspec.audit.shards.loop import audit_loop
    from initspec.audit.shards.rank import _user
    from initspec.audit.targets import parse_audit_target
    from initspec.frameworks.jax import import_jax

    sys.path[:0] = [p for p in job.sys_path if p not in sys.path]  # the target imports as it did in the parent
    status("importing jax")
    jax = import_jax()
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    devices = jax.devices()
    if len(devices) < job.world:
        raise InputError(f"--world-size {job.world}: JAX sees {len(devices)} device(s) ({devices[0].platform})")
    mesh = Mesh(np.array(devices[:job.world]), ("x",))
    tgt = parse_audit_target(job.target, job.convention)
    fw = "jax" if job.convention == "jax" else "flax"
    walker = importlib.import_module(f"initspec.audit.walkers.{fw}")
    init, shapes = _initializer(tgt, walker, job.input_shape)
    shard = {}

    def build(seed: int) -> Any:
        status(f"initializing {job.target} sharded over {job.world} devices (seed {seed})")
        if "out" not in shard:
            shard["out"] = jax.tree.map(lambda s: NamedSharding(mesh, PartitionSpec(*spec_for(s.shape, job.world))),
                                        _user(lambda: shapes(seed), f"tracing {job.target}"))
        return _user(lambda: init(seed, shard["out"]), f"initializing {job.target}")

    source = JaxSource(walker, f"x={job.world} ({devices[0].platform} devices)")
    rep = audit_loop(build, LocalComm(), job.settings, source)
    status("comparing with the unsharded initialization")
    rep.sharded["unsharded_bits"] = bits = _bit_equal(
        source, _user(lambda: init(rep.seeds[0], None), f"initializing {job.target} unsharded"), rep.blocks)
    flag = bool(jax.config.jax_threefry_partitionable)
    rep.sharded.update({"devices": job.world, "platform": devices[0].platform, "jax_threefry_partitionable": flag})
    n_eq, n = len(bits["equal"]), len(bits["equal"]) + len(bits["differ"])
    rep.notes.append(f"sharded values equal the unsharded ones: {n_eq} of {n} array(s) "
                     f"(jax_threefry_partitionable={flag})")
    if bits["differ"]:
        from initspec.audit.findings import Finding

        rep.findings.append(Finding("sharded_values_differ", list(bits["differ"]),
                                    f"{len(bits['differ'])} array(s) whose sharded values differ from the same "
                                    f"initialization unsharded (jax_threefry_partitionable={flag}; jit promises "
                                    f"equal values whatever the shardings): {', '.join(bits['differ'][:4])}"))
    board.set("result", pickle.dumps(rep, protocol=pickle.HIGHEST_PROTOCOL))
    status("done")


def _bit_equal(source: JaxSource, unsharded: Built, blocks: dict[str, list[Any]]) -> dict[str, list[str]]:
    import hashlib

    full = {p.path: arr for p, arr in source.arrays(unsharded) if arr is not None}
    equal, differ = [], []
    for path, bl in blocks.items():
        if path not in full:
            continue
        x = np.asarray(full[path])
        same = all(hashlib.blake2b(np.ascontiguousarray(
            x[tuple(slice(o, o + n) for o, n in zip(off, shape, strict=True))]).reshape(-1).view(np.uint8),
            digest_size=16).digest() == dig for off, shape, dig in bl)
        (equal if same else differ).append(path)
    return {"equal": equal, "differ": differ}


def audit_world_jax(target: str, *, world_size: int, settings: Any, convention: str | None,
                    input_shape: tuple[int, ...] | None, rank_timeout: float) -> Any:
    """Run the sharded JAX audit in a child process with ``world_size`` host devices; its report."""
    from initspec.audit.shards.launch import POLL, STARTUP, RankFailure

    flags = os.environ.get("XLA_FLAGS", "")
    env = {**os.environ, "XLA_FLAGS": f"{flags} --xla_force_host_platform_device_count={world_size}".strip()}
    with tempfile.TemporaryDirectory(prefix="initspec-jax-") as where:
        job_file = os.path.join(where, "job.pickle")
        with open(job_file, "wb") as fh:
            pickle.dump(JaxJob(target, convention, world_size, settings, input_shape, list(sys.path)), fh)
        board = Board(where)
        with open(os.path.join(where, "child.log"), "wb") as log:
            proc = subprocess.Popen([sys.executable, "-c", "from initspec.audit.shards.jax import child; child()",
                                     job_file, where], env=env, stdout=log, stderr=log, start_new_session=True)
        try:
            seen, since = "", time.monotonic()
            while proc.poll() is None:
                time.sleep(POLL)
                phase = (board.get("phase0") or b" starting").decode()
                if phase != seen:
                    seen, since = phase, time.monotonic()
                limit = max(rank_timeout, STARTUP) if phase in (" starting", " importing jax") else rank_timeout
                if time.monotonic() - since > limit and not phase.startswith(WAITING):
                    raise RankFailure(f"the JAX process made no progress for {rank_timeout:g} s (--rank-timeout) "
                                      f"while {phase[1:]}")
        finally:
            try:  # the child and anything it started: its own session
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            proc.wait()
        fail = board.get("fail0")
        if fail is not None:
            kind, _, line = fail.decode().partition("\n")
            raise InputError(line) if kind == "input" else RankFailure(line)
        result = board.get("result")
        if proc.returncode != 0 or result is None:
            raise RankFailure(f"the JAX process ended with code {proc.returncode} without a report")
        return pickle.loads(result)
