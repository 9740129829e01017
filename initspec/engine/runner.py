"""The runner: draw samples from each initializer, test them, correct for multiplicity.

One run is a list of jobs (entry x case x dtype).  Planning comes first: every job's
reference is built and its p-valued tests counted, so the sample size of each job can be
derived from the run's family-wise alpha (Holm's first step is Bonferroni's alpha/m) and
the reference's own kurtosis.  Then the jobs are drawn and tested, and Holm's method
decides which p-values reject.
"""

from __future__ import annotations

import fnmatch
import hashlib
import math
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from initspec.engine import stats as st
from initspec.engine.guard import DEFAULT_DRAW_TIMEOUT, DrawError, guarded
from initspec.errors import InputError
from initspec.frameworks.manifest import Case, Entry
from initspec.frameworks.target import parse_target
from initspec.spec.fans import Layout
from initspec.spec.reference import Reference, build, eps, np_dtype
from initspec.spec.schemes import Scheme, resolve

DEFAULT_ALPHA = 1e-4
DEFAULT_SEED = 0
DEFAULT_MAX_DRAWS = 1000
Progress = Callable[[int, int, str], None]


@dataclass
class Test:
    """One check of one result; p-valued tests get `passed` from Holm's method."""

    name: str
    statistic: float | None = None
    p_value: float | None = None
    passed: bool | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "statistic": _num(self.statistic), "p_value": _num(self.p_value),
                "passed": self.passed, "detail": self.detail}


@dataclass
class Evidence:
    """What diagnosis may look at besides the result: the reference and a sample."""

    scheme: Scheme
    reference: Reference | None
    sample: np.ndarray | None = None
    z_var: float | None = None
    layout: Layout | None = None  # the fans' layout: diagnosis recomputes fans under other rules


@dataclass
class Result:
    """The verdict on one initializer at one shape and dtype."""

    id: str
    entry: str
    target: str
    convention: str
    scheme: str
    layout: str
    shape: tuple[int, ...]
    dtype: str
    fan_in: float | None
    fan_out: float | None
    seed: int
    repro: str = ""
    verdict: str = "pass"
    expected: dict[str, float] = field(default_factory=dict)
    observed: dict[str, float] = field(default_factory=dict)
    tests: list[Test] = field(default_factory=list)
    diagnosis: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    xfail: str | None = None
    power: float | None = None
    timing: dict[str, float] = field(default_factory=dict)
    path: str = "eager"
    path_fallback: str | None = None
    evidence: Evidence | None = field(default=None, repr=False)

    @property
    def failed_tests(self) -> list[Test]:
        return [t for t in self.tests if t.passed is False]

    def fail(self, name: str, detail: str) -> None:
        self.tests.append(Test(name, passed=False, detail=detail))

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "target": self.target, "scheme": self.scheme, "layout": self.layout,
            "shape": list(self.shape), "dtype": self.dtype, "fan_in": self.fan_in, "fan_out": self.fan_out,
            "verdict": self.verdict, "expected": {k: _num(v) for k, v in self.expected.items()},
            "observed": {k: _num(v) for k, v in self.observed.items()},
            "tests": [t.to_dict() for t in self.tests], "diagnosis": self.diagnosis,
            "error": self.error, "xfail": self.xfail, "power": _num(self.power), "seed": self.seed,
            "timing": self.timing, "path": self.path, "path_fallback": self.path_fallback,
            "repro": self.repro,
        }


def _num(v: float | None) -> float | str | None:
    """JSON has no inf/nan: write them as strings."""
    if v is None or isinstance(v, (int, bool)):
        return v
    return float(v) if math.isfinite(v) else str(v)


@dataclass
class Job:
    entry: Entry
    case: Case
    dtype: str
    scheme: Scheme
    result: Result
    reference: Reference | None = None
    planned_tests: int = 0


def _repro(entry: Entry, case: Case, dtype: str, seed: int, framework: str | None) -> str:
    if framework:
        return f"initspec check {framework} --only {shlex.quote(entry.id)} --seed {seed}"
    shape = ",".join(map(str, case.shape))
    return (f"initspec check --target {shlex.quote(entry.call)} --convention {entry.convention} "
            f"--scheme {shlex.quote(entry.claims)} --layout {entry.layout.name} --shape {shape} "
            f"--dtype {dtype} --seed {seed}")


def repro_flags(samples: int | None, alpha: float, max_draws: int, batched: bool = True) -> str:
    """The options beyond --seed a repro line needs to repeat a run exactly (those not at their default)."""
    flags = f" --samples {samples}" if samples is not None else ""
    if not batched:
        flags += " --eager"
    if alpha != DEFAULT_ALPHA:
        flags += f" --alpha {alpha!r}"
    if max_draws != DEFAULT_MAX_DRAWS:
        flags += f" --max-draws {max_draws}"
    return flags


def plan(entries: list[Entry], seed: int, framework: str | None) -> list[Job]:
    """Resolve every claim, compute fans and references; InputError on a bad claim."""
    jobs = []
    for entry in entries:
        scheme = resolve(entry.claims)
        for dtype in entry.dtypes:
            np_dtype(dtype)
            for case in entry.cases:
                overridden = case.fan_in is not None or case.fan_out is not None
                fan_in, fan_out = case.fans(entry.layout) if overridden or scheme.fan_dependent else (None, None)
                result = Result(
                    id=f"{entry.id}[{case.label}-{dtype}]", entry=entry.id, target=entry.call,
                    convention=entry.convention, scheme=scheme.expr, layout=entry.layout.spec(),
                    shape=case.shape, dtype=dtype, fan_in=fan_in, fan_out=fan_out, seed=seed,
                    repro=_repro(entry, case, dtype, seed, framework))
                job = Job(entry, case, dtype, scheme, result)
                job.reference = build(scheme, fan_in or 1, fan_out or 1, dtype)
                if job.reference is not None:
                    result.expected = job.reference.expected()
                    job.planned_tests = 4 if job.reference.bounded else 3
                jobs.append(job)
    return jobs


def run(entries: list[Entry], *, seed: int = DEFAULT_SEED, alpha: float = DEFAULT_ALPHA,
        samples: int | None = None, max_draws: int = DEFAULT_MAX_DRAWS,
        framework: str | None = None, xfails: list[tuple[str, str]] | None = None,
        progress: Progress | None = None, drawers: dict[str, Any] | None = None,
        workers: int = 1, draw_timeout: float | None = DEFAULT_DRAW_TIMEOUT,
        batched: bool = True) -> list[Result]:
    """Run every entry; returns the results with verdicts and diagnoses.

    ``drawers`` maps entry id -> a prepared Drawer (``draw(case, dtype, seed)``); entries
    without one are prepared from their ``call`` through their convention's binding.
    ``workers`` > 1 spreads the entries over that many processes (each imports the
    framework once); Holm's correction and diagnosis still see the whole run.
    Every initializer call runs under :func:`~initspec.engine.guard.guarded` with
    ``draw_timeout`` seconds per draw: whatever it does becomes that result's error.
    ``batched``: draw through a drawer's compiled ``many`` where it has one (see :class:`_Clock`);
    False draws every tensor with its own eager call.
    """
    from initspec.engine.diagnosis import diagnose_group
    from initspec.spec.validate import seed as valid_seed

    valid_seed(seed)  # the same range and words as every command's --seed
    jobs = plan(entries, seed, framework)
    flags = repro_flags(samples, alpha, max_draws, batched)
    for job in jobs:
        job.result.repro += flags
    groups = _fan_law_groups(jobs)
    m = sum(j.planned_tests for j in jobs) + len(groups)
    settings = {"samples": samples, "max_draws": max_draws, "seed": seed, "alpha_each": alpha / max(m, 1),
                "draw_timeout": draw_timeout, "batched": batched}
    if workers > 1 and not drawers and len({j.entry.id for j in jobs}) > 1:
        _execute_parallel(jobs, settings, workers, progress)
    else:
        prepared = _Prepared(dict(drawers or {}))
        for i, job in enumerate(jobs):
            if progress:
                progress(i, len(jobs), job.result.id)
            _execute_job(job, prepared, settings)
    if progress:
        progress(len(jobs), len(jobs), "done")
    for group in groups.values():
        _fan_law(group)
    _decide([j.result for j in jobs], alpha)
    results = [j.result for j in jobs]
    if xfails:  # first: a known deviation carries its recorded reason and is not diagnosed again
        apply_xfails(results, xfails)
    for group in _by_entry_dtype(jobs).values():
        diagnose_group([j.result for j in group])
    return results


class _Prepared:
    """Drawers by entry id, prepared once through the entry's binding (or the reason they could not be)."""

    def __init__(self, drawers: dict[str, Any]) -> None:
        self.drawers = drawers
        self.errors: dict[str, str] = {}

    def get(self, entry: Entry, timeout: float | None = None) -> Any:
        if entry.id not in self.drawers and entry.id not in self.errors:
            from initspec.frameworks import binding_for

            try:
                binding = binding_for(entry.convention, convention=True)
                target = parse_target(entry.call)
                self.drawers[entry.id] = guarded(lambda: binding.prepare(target.load(), target, entry.convention),
                                                 timeout=timeout, what="building the initializer")
            except (InputError, DrawError) as e:
                self.errors[entry.id] = str(e)
            except Exception as e:  # noqa: BLE001 - a broken initializer is a result, not a crash
                self.errors[entry.id] = f"building the initializer raised {type(e).__name__}: {e}"
        return self.drawers.get(entry.id)


def _execute_job(job: Job, prepared: _Prepared, settings: dict[str, Any]) -> None:
    drawer = prepared.get(job.entry, settings.get("draw_timeout"))
    if drawer is None:
        job.result.error = prepared.errors[job.entry.id]
        return
    alpha_each = settings["alpha_each"]
    n_req = settings["samples"] or (st.samples_for_power(job.reference.kurtosis, alpha_each) if job.reference else 0)
    _execute(job, drawer, n_req, job.entry.max_draws or settings["max_draws"], settings["seed"], alpha_each,
             settings.get("draw_timeout"), settings.get("batched", True))


_WORKER: _Prepared | None = None


def _work(batch: list[Job], settings: dict[str, Any]) -> list[Result]:
    """One entry's jobs in a worker process (drawers cached per process)."""
    global _WORKER
    if _WORKER is None:
        _WORKER = _Prepared({})
    for job in batch:
        _execute_job(job, _WORKER, settings)
    return [job.result for job in batch]


def _execute_parallel(jobs: list[Job], settings: dict[str, Any], workers: int, progress: Progress | None) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    batches: dict[str, list[Job]] = {}
    for job in jobs:
        batches.setdefault(job.entry.id, []).append(job)
    # spawn: a forked child of a process that imported torch or TF can deadlock
    ctx = multiprocessing.get_context("spawn")
    lost: list[list[Job]] = []
    with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        futures = {pool.submit(_work, batch, settings): batch for batch in batches.values()}
        done = 0
        for future in as_completed(futures):
            batch = futures[future]
            try:
                results = future.result()
            except Exception:  # noqa: BLE001 - a worker died (os._exit, a crash): which batch is found below
                lost.append(batch)
                continue
            for job, result in zip(batch, results, strict=True):
                job.result = result
            done += len(batch)
            if progress:
                progress(done, len(jobs), batch[0].entry.id)
    # A dead worker breaks the whole pool, so every unfinished batch failed with it: rerun each
    # alone, and only one that kills its own worker again is that entry's error.
    for batch in lost:
        try:
            with ProcessPoolExecutor(1, mp_context=ctx) as pool:
                results = pool.submit(_work, batch, settings).result()
            for job, result in zip(batch, results, strict=True):
                job.result = result
        except Exception as e:  # noqa: BLE001 - the initializer ended its process
            for job in batch:
                job.result.error = f"the worker process died while drawing ({type(e).__name__}: {e})"
        done += len(batch)
        if progress:
            progress(done, len(jobs), batch[0].entry.id)


def _by_entry_dtype(jobs: list[Job]) -> dict[tuple[str, str], list[Job]]:
    out: dict[tuple[str, str], list[Job]] = {}
    for job in jobs:
        out.setdefault((job.entry.id, job.dtype), []).append(job)
    return out


def _fan_law_groups(jobs: list[Job]) -> dict[tuple[str, str], list[Job]]:
    """Groups whose claimed variance depends on the fans and that span several fan pairs."""
    return {k: g for k, g in _by_entry_dtype(jobs).items()
            if g[0].scheme.fan_dependent and len({(j.result.fan_in, j.result.fan_out) for j in g}) >= 2}


def _draw(drawer: Any, job: Job, seed: int) -> np.ndarray:
    x = drawer(job.case, job.dtype, seed)
    if not isinstance(x, np.ndarray):
        raise TypeError(f"the initializer returned {type(x).__name__}, not an array of shape {job.case.shape}")
    return x


def _short(text: str, limit: int = 300) -> str:
    """An error line never echoes a huge input whole."""
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


CHUNK = 1 << 22  # values per float64 chunk (32 MiB): bounds the memory beyond the tensor itself
POOL = 1 << 20  # small draws are pooled into blocks of this many values before their statistics


def _chunks(x: np.ndarray):
    """The tensor's values as float64, CHUNK at a time."""
    flat = x.reshape(-1)
    for i in range(0, flat.size, CHUNK):
        yield flat[i:i + CHUNK].astype(np.float64)


def _digest(x: np.ndarray) -> bytes:
    """A fingerprint of the exact bits: determinism checks never hold two tensors at once."""
    return hashlib.blake2b(np.ascontiguousarray(x).reshape(-1).view(np.uint8), digest_size=16).digest()


def _structural(result: Result, x: np.ndarray, job: Job) -> bool:
    """Shape, dtype and finiteness of one draw; False (and a failed test) when wrong."""
    want = np_dtype(job.dtype)
    if x.shape != job.case.shape:
        result.fail("shape", f"expected shape {job.case.shape}, got {x.shape}")
        return False
    if x.dtype != want:
        result.fail("dtype", f"expected dtype {job.dtype}, got {x.dtype}")
        return False
    return True


def _finite(result: Result, x: np.ndarray) -> bool:
    """All values finite; False (and a failed test) when not."""
    bad = sum(int(c.size - np.count_nonzero(np.isfinite(c))) for c in _chunks(x))
    if bad:
        result.fail("finite", f"{bad} of {x.size} values are NaN or infinite")
        return False
    return True


def draw_seed(seed: int, key: str, k: int) -> int:
    """The seed of draw k of one shape and dtype (key ``shape-dtype``) in a run seeded `seed`.

    Hashed, so that the shapes and dtypes of one initializer never share a random stream
    (their variance z's enter one fan-law chi-square, which needs them independent), and
    below 2^31 for every framework's seed type.
    """
    digest = hashlib.blake2b(f"{seed}:{key}:{k}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "little") & 0x7FFFFFFF


def _execute(job: Job, drawer: Any, n_req: int, max_draws: int, seed: int, alpha_each: float,
             timeout: float | None = None, batched: bool = True) -> None:
    r = job.result
    clock = _Clock(drawer, lambda k: draw_seed(seed, f"{job.case.label}-{job.dtype}", k), timeout, batched)
    try:
        if job.scheme.kind in ("constant", "identity", "dirac", "orthogonal"):
            # exact checks: one draw, and a second for the seed test of the random one
            xs = [x for _, block in clock.blocks(job, 2 if job.scheme.kind == "orthogonal" else 1) for x in block]
            first = xs[0]
            if not (_structural(r, first, job) and _finite(r, first)):
                return
            _passed_structure(r)
            if job.scheme.kind == "orthogonal":
                _orthogonal(job, first, xs[1], clock)
            else:
                _exact(job, first)
            digest = _digest(first)
            del first, xs
        else:
            digest = _continuous(job, clock, n_req, max_draws, alpha_each)
            if digest is None:
                return
        same = _digest(clock.first_again(job)) == digest
        r.tests.append(Test("deterministic", passed=same,
                            detail="" if same else f"two draws with seed {clock.seed(0)} differ"))
    except DrawError as e:  # SystemExit, BaseException, os._exit, a timeout: already described
        r.error = str(e)
    except Exception as e:  # noqa: BLE001 - the initializer's failure is the result
        r.error = _short(f"raised {type(e).__name__}: {e}".strip())
    finally:
        r.timing = {"draw": clock.draw_seconds, "total": time.perf_counter() - clock.start}
        r.path, r.path_fallback = clock.path, clock.fallback


#: values one batched call may return: bounds the memory of a batch (32 MiB of float64 statistics)
BATCH = 1 << 22


def _many(drawer: Any, job: Job, seeds: list[int]) -> np.ndarray:
    x = drawer.many(job.case, job.dtype, seeds)
    want = (len(seeds), *job.case.shape)
    if not isinstance(x, np.ndarray) or x.shape != want:
        got = x.shape if isinstance(x, np.ndarray) else type(x).__name__
        raise TypeError(f"the batched call returned {got}, not an array of shape {want}")
    return x


class _Clock:
    """Draws a job's tensors and times the framework's own work (the draws) apart from initspec's.

    A drawer with a ``many(case, dtype, seeds)`` attribute (a binding's compiled path, named by
    its ``path`` attribute) draws a whole batch of seeds in one call; the batch length is fixed
    per job, the last batch padded with the next seeds and cut, so a job compiles once.  When
    the first batched call fails the job falls back to one eager call per draw and says why.
    """

    def __init__(self, drawer: Any, seed: Callable[[int], int], timeout: float | None = None,
                 batched: bool = True) -> None:
        self.drawer = drawer
        self.seed = seed
        self.timeout = timeout
        self.batched = batched and callable(getattr(drawer, "many", None))
        self.path = "eager"
        self.fallback: str | None = None
        self.first_batch: list[int] | None = None
        self.draw_seconds = 0.0
        self.start = time.perf_counter()

    def draw(self, job: Job, k: int) -> np.ndarray:
        """Draw number k of this job, with its own eager call."""
        t0 = time.perf_counter()
        x = guarded(_draw, self.drawer, job, self.seed(k), timeout=self.timeout, what=f"draw {k}")
        self.draw_seconds += time.perf_counter() - t0
        return x

    def many(self, job: Job, ks: list[int]) -> np.ndarray:
        """Draws ks of this job in one batched call: shape (len(ks), *shape)."""
        t0 = time.perf_counter()
        x = guarded(_many, self.drawer, job, [self.seed(k) for k in ks], timeout=self.timeout,
                    what=f"the batched draw of {len(ks)} seeds")
        self.draw_seconds += time.perf_counter() - t0
        return x

    def blocks(self, job: Job, draws: int):
        """Yields (k0, xs): draws k0, k0+1, ... as one array of shape (m, *shape), in order.

        Nothing here keeps a reference to a yielded block: its memory is the consumer's.
        """
        size = max(math.prod(job.case.shape), 1)
        # a power of two: jobs of one shape share a few batch lengths, hence compilations
        b = min(1 << (draws - 1).bit_length(), 1 << max((BATCH // size).bit_length() - 1, 0))
        # even one draw goes through the compiled path: one compilation costs JAX less than the
        # per-op compilations of an eager call at a new shape (a binding draws short batches
        # eagerly where that is cheaper: TensorFlow's)
        if self.batched:
            try:
                first = self.many(job, list(range(b)))
            except Exception as e:  # noqa: BLE001 - cannot be traced or compiled: the eager path decides
                self.fallback = _short(str(e) or type(e).__name__)
            else:
                self.path, self.first_batch = str(getattr(self.drawer, "path", "batched")), list(range(b))
                yield 0, first[:draws]
                del first
                for k0 in range(b, draws, b):
                    yield k0, self.many(job, list(range(k0, k0 + b)))[:draws - k0]
                return
        for k in range(draws):
            yield k, self.draw(job, k)[np.newaxis]

    def first_again(self, job: Job) -> np.ndarray:
        """Draw 0 once more, through the path that drew it (the determinism test)."""
        if self.first_batch is not None:
            return self.many(job, self.first_batch)[0]
        return self.draw(job, 0)


def _passed_structure(r: Result, finite: bool = True) -> None:
    r.tests += [Test("shape", passed=True), Test("dtype", passed=True)]
    if finite:
        r.tests.append(Test("finite", passed=True))


def _seed_test(r: Result, first: bytes, other: bytes, clock: _Clock) -> None:
    differ = first != other
    r.tests.append(Test("seed_sensitive", passed=differ,
                        detail="" if differ else f"seeds {clock.seed(0)} and {clock.seed(1)} give identical output"))


def _expected_exact(job: Job) -> np.ndarray:
    from initspec.frameworks import numpy_reference as numpy_init

    p = job.scheme.params
    init = {"constant": lambda: numpy_init.constant(p["value"]),
            "identity": lambda: numpy_init.identity(p["gain"]),
            "dirac": lambda: numpy_init.dirac(p["groups"])}[job.scheme.kind]()
    shape = job.case.shape
    if job.scheme.kind == "identity" and len(shape) != 2:
        raise InputError(f"identity needs a 2-D shape, got {shape}")
    return init(np.random.default_rng(0), shape, job.dtype)


def _exact(job: Job, x: np.ndarray) -> None:
    r = job.result
    got, want = x.astype(np.float64), _expected_exact(job).astype(np.float64)
    wrong = int((got != want).sum())
    r.observed = {"n": x.size, "mean": float(got.mean()), "var": float(got.var()),
                  "min": float(got.min()), "max": float(got.max())}
    r.expected = {"mean": float(want.mean()), "var": float(want.var())}
    r.tests.append(Test("values", statistic=float(wrong), passed=wrong == 0,
                        detail="" if wrong == 0 else f"{wrong} of {x.size} values differ from {job.scheme.expr}"))


def _orthogonal(job: Job, x: np.ndarray, other: np.ndarray, clock: _Clock) -> None:
    r = job.result
    gain = job.scheme.params["gain"]
    rows, cols = job.entry.layout.matrix(job.case.shape)
    w = x.astype(np.float64).reshape(rows, cols)
    gram = w @ w.T if rows <= cols else w.T @ w
    dev = float(np.abs(gram - gain**2 * np.eye(gram.shape[0])).max())
    tol = gain**2 * (8 * eps(job.dtype) + 1e-4)
    r.observed = {"n": x.size, "max_gram_deviation": dev}
    r.expected = {"gram": gain**2, "tolerance": tol}
    r.tests.append(Test("orthogonal", statistic=dev, passed=dev <= tol,
                        detail="" if dev <= tol else f"max |W Wᵀ - gain² I| = {dev:.3g} > {tol:.3g} "
                        f"on the {rows}x{cols} flattening ({job.entry.layout.name} layout)"))
    _seed_test(r, _digest(x), _digest(other), clock)


#: values of the KS sample kept for diagnosis and plots
EVIDENCE_SAMPLES = 32_768


def _continuous(job: Job, clock: _Clock, n_req: int, max_draws: int, alpha_each: float) -> bytes | None:
    """Draw until n_req values, stream their moments, keep a KS sample; returns the first draw's digest.

    Every tensor is processed CHUNK values at a time and released before the next draw, so
    the memory beyond one tensor stays bounded whatever its size.
    """
    r, ref = job.result, job.reference
    n_ks = min(n_req, st.ks_samples_for_power(alpha_each))
    mom = st.Moments(shift=ref.mean)
    picks: list[np.ndarray] = []
    have = outside = zeros_bad = 0
    sub_rng = np.random.default_rng([clock.seed(0), 7919])
    tol = 2 * eps(job.dtype)
    lo, hi = ref.lower - tol * abs(ref.lower), ref.upper + tol * abs(ref.upper)
    digest0 = b""

    def consume(values: np.ndarray) -> bool:
        """Moments, KS picks and support of a block of values; False when one is not finite."""
        nonlocal have, outside
        if have < n_ks:
            take = n_ks - have
            idx = slice(None) if values.size <= take else _stratified(values.size, take, sub_rng)
            picks.append(values[idx].astype(np.float64))
            have += picks[-1].size
        for chunk in _chunks(values):
            cmin, cmax = mom.add(chunk)
            if not (math.isfinite(cmin) and math.isfinite(cmax)):  # NaN propagates to min/max
                _finite(r, values)
                return False
            if cmin < lo or cmax > hi:
                outside += int(((chunk < lo) | (chunk > hi)).sum())
        return True

    # Small tensors are pooled into blocks of about POOL values: numpy's per-call cost, not
    # the values, would otherwise dominate (a 600-value draw is 600 values for ~20 calls).
    pending: list[np.ndarray] = []
    pending_n = 0
    draws = min(max(2, math.ceil(n_req / max(math.prod(job.case.shape), 1))), max(max_draws, 2))
    for k0, xs in clock.blocks(job, draws):
        if not _structural(r, xs[0], job):
            return None
        if k0 == 0:
            if not _finite(r, xs[0]):  # before the seed test: all-NaN draws are all alike
                return None
            _passed_structure(r, finite=False)  # later draws: finiteness read off each block's extremes
            digest0 = _digest(xs[0])
        if k0 <= 1 < k0 + len(xs):
            _seed_test(r, digest0, _digest(xs[1 - k0]), clock)
        if job.scheme.kind == "sparse":
            zeros_bad += sum(_sparse_columns(job, x) for x in xs)
            values = xs[xs != 0]
        else:
            values = xs.reshape(-1)
        if values.size >= POOL:
            if not consume(values):
                return None
        else:
            pending.append(values)
            pending_n += values.size
            if pending_n >= POOL or k0 + len(xs) >= draws:
                block = np.concatenate(pending)
                pending, pending_n = [], 0
                if not consume(block):
                    return None
                del block
        del xs, values  # nothing of a large tensor may outlive it into the next draw
    r.tests.append(Test("finite", passed=True))
    if job.scheme.kind == "sparse":
        r.tests.append(Test("sparsity", statistic=float(zeros_bad), passed=zeros_bad == 0,
                            detail="" if zeros_bad == 0 else f"{zeros_bad} columns without exactly "
                            f"ceil(sparsity*rows) zeros"))
    sample = np.concatenate(picks) if picks else np.empty(0)
    r.observed = {"n": mom.n, "mean": mom.mean, "var": mom.var, "min": mom.minimum, "max": mom.maximum}
    r.power = st.variance_power(mom.n, ref.kurtosis, alpha_each)
    z_var, p_var = st.variance_test(mom, ref.var, ref.mu4)
    z_mean, p_mean = st.mean_test(mom, ref.mean, ref.var)
    d, p_ks = st.ks_uniform(ref.pit(sample, sub_rng))
    r.tests += [Test("variance", z_var, p_var, detail=f"observed/expected var = {mom.var / ref.var:.5g}"),
                Test("mean", z_mean, p_mean),
                Test("ks", d, p_ks, detail=f"KS on {sample.size} values against the exact reference CDF")]
    if sample.size > EVIDENCE_SAMPLES:
        sample = sample[_stratified(sample.size, EVIDENCE_SAMPLES, sub_rng)]
    r.evidence = Evidence(job.scheme, ref, sample, z_var, job.entry.layout)
    if ref.bounded:
        r.tests.append(Test("support", statistic=float(outside), passed=outside == 0,
                            detail="" if outside == 0 else
                            f"{outside} values outside the support [{ref.lower:.6g}, {ref.upper:.6g}] "
                            f"(observed range [{mom.minimum:.6g}, {mom.maximum:.6g}])"))
        p_reach = st.bounds_reached_test(ref.prob_at_most(mom.maximum), ref.prob_at_least(mom.minimum), mom.n)
        r.tests.append(Test("bounds_reached", None, p_reach,
                            detail=f"min {mom.minimum:.6g} / max {mom.maximum:.6g} vs bounds "
                            f"[{ref.lower:.6g}, {ref.upper:.6g}]"))
    return digest0


def _stratified(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """k distinct ascending indices below n: one uniform pick in each of k equal strata.

    The choice does not look at the values, so under the null the picked values are i.i.d. from
    the law like the whole block; it costs O(k), where ``rng.choice(n, k, replace=False)`` costs
    O(n) (37 ms for 60,000 of 2^20 values here) -- and it spreads the picks over the whole tensor.
    """
    start = np.arange(k, dtype=np.int64) * n // k
    width = np.diff(start, append=n)
    return start + (rng.random(k) * width).astype(np.int64)


def _sparse_columns(job: Job, w: np.ndarray) -> int:
    """Number of columns whose zero count is not ceil(sparsity * rows)."""
    if w.ndim != 2:
        raise InputError(f"sparse needs a 2-D shape, got {w.shape}")
    want = math.ceil(job.scheme.params["sparsity"] * w.shape[0])
    return int(((w == 0).sum(axis=0) != want).sum())


def _fan_law(group: list[Job]) -> None:
    z = [t.statistic for j in group for t in j.result.tests if t.name == "variance" and t.statistic is not None]
    if len(z) < 2:
        return
    chi2, p = st.fan_law_test(z)
    shared = Test("fan_law", chi2, p, detail=f"sum of variance z² over {len(z)} shapes (fan_in != fan_out)")
    for j in group:
        j.result.tests.append(shared)


def _decide(results: list[Result], alpha: float) -> None:
    """Holm over every distinct p-valued test of the run, then one verdict per result."""
    unique: dict[int, Test] = {}
    for r in results:
        for t in r.tests:
            if t.p_value is not None:
                unique[id(t)] = t
    tests = list(unique.values())
    for t, rejected in zip(tests, st.holm([t.p_value for t in tests], alpha), strict=True):
        t.passed = not rejected
    for r in results:
        r.verdict = "error" if r.error else "fail" if r.failed_tests else "pass"


def xfail_matches(result: Result, pattern: str) -> bool:
    """An xfail pattern names a result id (``entry[shape-dtype]``) or a whole entry (globs allowed)."""
    if pattern in (result.id, result.entry):  # exact ids first: '[' in an id is no glob class
        return True
    return fnmatch.fnmatchcase(result.id, pattern) or fnmatch.fnmatchcase(result.entry, pattern)


def apply_xfails(results: list[Result], xfails: list[tuple[str, str]]) -> None:
    """Mark known deviations: a failing result becomes xfail, a passing one xpass (first matching line)."""
    for r in results:
        reason = next((why for pattern, why in xfails if xfail_matches(r, pattern)), None)
        if reason is not None:
            r.xfail = reason
            r.verdict = "xfail" if r.verdict in ("fail", "error") else "xpass"
