"""Issue 12: no bad input gets a traceback, no initializer ends or hangs the run.

Each bad input is one line on stderr and exit 2; each misbehaving initializer is an error
result (exit 1) while the rest of the run goes on.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from initspec.errors import InputError
from initspec.spec import validate

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent
GOOD = ("--target", "bad_inits:he_normal", "--scheme", "he_normal", "--shape", "16,16", "-q")


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    """``python -c code`` with this checkout importable (and ``env`` added): its exit code and output."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **env})


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# --- bad input: one line, exit 2 ----------------------------------------------------------

BAD_SCHEMES = [
    ("kaiming_normal(nonlinearity=leaky_relu, a=x)", "a must be a finite number"),
    ("kaiming_normal(nonlinearity=leaky_relu, a=1e400)", "a must be a finite number"),
    ("he_normal(a=nan)", "a must be a finite number"),
    ("variance_scaling(gain=1e200)", "gain must be a finite positive number in [1e-150, 1e+150]"),
    (f"normal(std={10**400})", "an integer of 401 digits"),
    ("normal(std=1e400)", "std must be a finite positive number"),
    ("normal(mean=1e400)", "mean must be a finite number in [-1e+150, 1e+150]"),
    ("uniform(high=1e400)", "high must be a finite number"),
    ("constant(value=1e400)", "value must be a finite number"),
    ("variance_scaling(scale=1e400)", "scale must be a finite positive number"),
    ("variance_scaling(scale=1e-320)", "scale must be a finite positive number in [1e-150"),
    ("variance_scaling(truncation_correction=-1)", "truncation_correction must be a finite positive number"),
    ("variance_scaling(truncation_correction=1e400)", "truncation_correction must be a finite positive"),
    ("truncated_normal(lower=1000, upper=1001)", "holds 0 of the normal"),
    ("truncated_normal(lower=50, upper=60)", "it must hold at least 1e-09"),
    ("truncated_normal(mean=0, std=1, lower=30, upper=40, bounds=absolute)", "holds 4.91e-198 of the normal"),
    ("variance_scaling(lower=-1, upper=-0.999)", "at least 0.01 wide"),
    ("sparse(sparsity=2)", "sparsity must be a finite number in [0, 1)"),
    ("sparse(sparsity=-0.5)", "sparsity must be a finite number in [0, 1)"),
    ("orthogonal(gain=0)", "gain must be a finite positive number"),
    ("orthogonal(gain=1e400)", "gain must be a finite positive number"),
    ("identity(gain=0)", "gain must be a finite positive number"),
    ("he_normal(mode=fan_out, mode=fan_in)", "mode is given twice"),
    ("variance_scaling(gain=2, scale=1)", "give one of scale, gain, nonlinearity"),
    # a renamed key or a value table setting a key given too: one of them used to win silently
    ("tf1_variance_scaling(factor=2, scale=3)", "factor sets scale, which is given too"),
    ("tf1_variance_scaling(factor=2, gain=3)", "not both factor and gain"),
    ("tf1_variance_scaling(uniform=true, distribution=normal)", "uniform sets distribution, which is given too"),
    ("caffe_msra(variance_norm=FAN_OUT, mode=fan_in)", "variance_norm sets mode, which is given too"),
    # the parser's bounds (issue 25): 4096 characters, 64 levels of nesting, 100 digits
    ("x" * 100_000, "(100000 characters): longer than the 4096 characters an expression may have"),
    ("he_normal(mode=" + "x" * 4000 + ")", "is not one of fan_in"),
    ("kaiming_normal(nonlinearity=" + "x" * 4000 + ")", "unknown nonlinearity 'xxx"),
    ("he_normal(" + "x" * 4000 + "=1)", "unknown parameter 'xxx"),
    ("normal(std=" + "1+" * 1500 + "1)", "nested deeper than 64 levels"),
    ("he_normal(a=" + "-" * 2000 + "1)", "nested deeper than 64 levels"),
    ("he_normal(a=" + "-" * 20_000 + "1)", "longer than the 4096 characters"),
    ("he_normal(a=" + "1" * 400 + ")", "an integer of 400 digits; at most 100 are accepted"),
]


@pytest.mark.parametrize(("expr", "message"), BAD_SCHEMES, ids=[e[:40] for e, _ in BAD_SCHEMES])
@pytest.mark.parametrize("command", ["show", "check"])
def test_bad_scheme_numbers_are_one_line(run_cli, command, expr, message):
    args = ("show", expr) if command == "show" else ("check", *GOOD[:2], "--scheme", expr, "--shape", "16,16")
    code, _, err = run_cli(*args)
    line = _one_line(err)
    assert code == 2
    assert message in line
    assert len(line) <= 217  # "initspec: error: " and at most 200 characters: a 100 KB input is not echoed whole


@pytest.mark.parametrize(("args", "message"), [
    (("show", "he_normal", "--shape", ""), "bad shape '': empty"),
    (("check", *GOOD[:4], "--shape", "100000000,100000000"), "needs 40 PB as float32"),
    (("check", *GOOD[:4], "--shape", "70000,70000"), "needs 19.6 GB as float32"),
    (("check", *GOOD[:4], "--shape", ",".join(["1"] * 2000)), "a shape of 2000 dimensions"),
    (("identify", "--target", "bad_inits:he_normal", "--shape", "100000000,100000000"), "needs 40 PB"),
    (("check", "numpy", "--only", ""), "--only '': the pattern is empty"),
    (("check", *GOOD, "--only", "x*"), "--only does not apply"),
    (("check", *GOOD, "--manifest", "m.toml"), "--manifest does not apply"),
    (("check", *GOOD, "--samples", str(10**14)), "--samples must be an integer in [10, 4294967296]"),
    (("check", *GOOD, "--draw-timeout", "-1"), "--draw-timeout must be a finite non-negative number"),
    (("check", *GOOD, "--draw-timeout", "nan"), "--draw-timeout must be a finite"),
    (("diff", "numpy:normal", "numpy:normal", "--alpha", "2"), "--alpha must be a finite number in (0, 1)"),
    (("diff", "numpy:normal", "numpy:normal", "--alpha", "nan"), "--alpha must be a finite number in (0, 1)"),
    (("diff", "numpy:normal", "numpy:normal", "--samples", "0"), "--samples must be an integer in [1000"),
    (("diff", "numpy:normal", "numpy:normal", "--samples", "1"), "--samples must be an integer in [1000"),
    (("diff", "numpy:normal", "numpy:normal", "--samples", "99999999999999"), "--samples must be an integer"),
    (("identify", "--target", "bad_inits:he_normal", "--samples", "99999999999999"), "--samples must be"),
    (("identify", "--target", "bad_inits:he_normal", "--top", "-5"), "--top must be at least 0"),
    (("check", "--manifest", "nope.toml"), "no such file"),
    # the @backend suffix names a Keras backend: numpy@jax used to run numpy and say nothing
    (("diff", "numpy@jax:normal", "numpy:normal"),
     "@jax names a Keras backend and applies to keras only, not to 'numpy'"),
    (("diff", "numpy:normal", "torch@torch:normal_"), "applies to keras only, not to 'torch'"),
    (("diff", "keras@banana:GlorotNormal", "numpy:normal"), "unknown Keras backend 'banana': use one of tensorflow"),
    # identify validates shapes as check does (a 1-D torch shape has no fans)
    (("identify", "--target", "bad_inits:he_normal", "--shape", "7"),
     "layout torch: fans need a weight of at least 2 dimensions, got shape (7,)"),
    (("check", "--target", "bad_inits:he_normal", "--scheme", "he_normal", "--shape", "7"),
     "layout torch: fans need a weight of at least 2 dimensions, got shape (7,)"),
    # a seed in the call would be overridden by the per-draw seed; refused before keras is imported
    (("check", "--target", "keras.initializers:HeNormal(seed=3)", "--convention", "keras", "--scheme", "he_normal"),
     "initspec seeds each draw; remove seed="),
    (("identify", "--target", "keras.initializers:HeNormal(seed=3)", "--convention", "keras"),
     "initspec seeds each draw; remove seed="),
    (("check", "--target", "tensorflow.keras.initializers:HeNormal(seed=3)", "--convention", "tf",
      "--scheme", "he_normal"), "initspec seeds each draw; remove seed="),
])
def test_bad_options_are_one_line(run_cli, args, message):
    code, _, err = run_cli(*args)
    assert code == 2
    assert message in _one_line(err)


@pytest.mark.parametrize(("target", "message"), [
    ("bad_inits:" + "x" * 100_000, "longer than the 4096 characters an expression may have"),
    ("bad_inits:" + "x" * 4000, "has no attribute 'xxx"),
    ("x" * 100_000 + ":f", "not found"),
    ("bad_inits:he_normal(" + "x" * 4000, "not of the form NAME or NAME(key=literal"),
], ids=["attribute", "attribute-4k", "module", "unclosed"])
@pytest.mark.parametrize("command", ["check", "identify"])
def test_huge_target_is_not_echoed_whole(run_cli, command, target, message):
    extra = ("--scheme", "normal") if command == "check" else ()
    code, _, err = run_cli(command, "--target", target, *extra)
    line = _one_line(err)
    assert code == 2 and message in line
    assert len(line) <= 217  # it used to echo the 100 KB target twice


REFUSED_TARGETS = ["os:system('touch F')", "builtins:exec('1')", "builtins:eval('lambda rng, shape, dtype: 0')",
                   "sys:exit(0)", "os:_exit(0)", "subprocess:run('true')", "shutil:rmtree('x')",
                   "importlib:import_module('os')", "os.path:join"]


@pytest.mark.parametrize("target", REFUSED_TARGETS)
def test_refused_modules_run_nothing(run_cli, tmp_path, monkeypatch, target):
    monkeypatch.chdir(tmp_path)
    for args in (("check", "--target", target, "--scheme", "normal"), ("identify", "--target", target)):
        code, _, err = run_cli(*args)
        assert code == 2
        assert "is never an initializer" in _one_line(err)
    manifest = tmp_path / "m.toml"
    manifest.write_text(f'framework = "numpy"\n[[entry]]\nid = "a"\ncall = "{target}"\nclaims = "normal"\n')
    code, _, err = run_cli("check", "--manifest", str(manifest))
    assert code == 2 and "is never an initializer" in _one_line(err)
    assert list(tmp_path.iterdir()) == [manifest]  # `touch F` never ran


@pytest.mark.parametrize(("body", "message"), [
    (b'framework = "numpy"\n# \xff\xfe\n', "not UTF-8 text"),
    (b'framework = "numpy"\nconvention = "banana"\n[[entry]]\nid = "a"\ncall = "bad_inits:he_normal"\n'
     b'claims = "he_normal"\n', "unknown convention 'banana'"),
])
def test_bad_manifest_documents(run_cli, tmp_path, body, message):
    path = tmp_path / "m.toml"
    path.write_bytes(body)
    code, _, err = run_cli("check", "--manifest", str(path))
    assert code == 2 and message in _one_line(err)


@pytest.mark.parametrize(("convention", "call", "case", "message"), [
    # conventions whose draw takes nothing but (rng/key, shape, dtype): a case's args were dropped
    ("numpy", "bad_inits:he_normal", "kwargs = { scale = 3 }", "cases[0] has args/kwargs, but the numpy "
     "convention calls fn(rng, shape, dtype) and nothing else: give them in `call`"),
    ("numpy", "bad_inits:he_normal", "args = [3]", "the numpy convention calls fn(rng, shape, dtype)"),
    ("jax", "jax.nn.initializers:he_normal()", "args = [3]", "the jax convention calls fn(key, shape, dtype)"),
    ("keras", "keras.initializers:HeNormal", "kwargs = { x = 1 }", "the keras convention calls Init("),
    ("tf", "tensorflow.keras.initializers:HeNormal", "args = [1]", "the tf convention calls init(shape, dtype)"),
    # a seed= in the call would be overridden by the per-draw seed
    ("keras", "keras.initializers:HeNormal(seed=3)", "", "initspec seeds each draw; remove seed="),
    ("tf", "tensorflow.keras.initializers:GlorotNormal(seed=0)", "", "initspec seeds each draw; remove seed="),
])
def test_manifest_entries_that_would_be_ignored(run_cli, tmp_path, monkeypatch, convention, call, case, message):
    """Refused at load (exit 2, before any framework is imported), naming the file, line and entry."""
    path = tmp_path / "m.toml"
    path.write_text(f'framework = "numpy"\n\n[[entry]]\nid = "ok"\ncall = "bad_inits:he_normal"\n'
                    f'claims = "he_normal"\n\n[[entry]]\nid = "bad"\nconvention = "{convention}"\n'
                    f'call = "{call}"\nclaims = "he_normal"\n'
                    f'cases = [{{ shape = [16, 16]{", " + case if case else ""} }}]\n')
    monkeypatch.chdir(tmp_path)  # the path as a user types it: the line stays within 200 characters
    code, _, err = run_cli("check", "--manifest", "m.toml")
    line = _one_line(err)
    assert code == 2
    assert line.startswith("initspec: error: m.toml:8: entry 'bad': ")  # [[entry]] of 'bad' is line 8
    assert message in line


@pytest.mark.parametrize(("axes", "message"), [
    ("in_axis = 5, out_axis = 0",
     "layout torch: axis 5 is out of range for the 2-D shape (16, 16) (axes run from -2 to 1)"),
    ("in_axis = 1, out_axis = -3", "axis -3 is out of range"),
    ("in_axis = 0, out_axis = 0", "in_axis, out_axis and batch_axis overlap for shape (16, 16)"),
])
def test_manifest_axes_checked_at_load(run_cli, tmp_path, monkeypatch, axes, message):
    """An axis out of range is reported as such (it once wrapped round and read as "overlap"),
    at load, naming the file and the entry."""
    path = tmp_path / "m.toml"
    path.write_text(f'framework = "numpy"\n[[entry]]\nid = "a"\ncall = "bad_inits:he_normal"\n'
                    f'claims = "he_normal"\naxes = {{ {axes} }}\nshapes = [[16, 16]]\n')
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli("check", "--manifest", "m.toml")
    line = _one_line(err)
    assert code == 2
    assert line.startswith("initspec: error: m.toml:2: entry 'a': ") and message in line


def test_manifest_cases_without_arguments_still_run(run_cli, tmp_path):
    """The refusal is of arguments only: numpy cases with a shape (and fans) alone still run."""
    path = tmp_path / "m.toml"
    path.write_text('framework = "numpy"\n[[entry]]\nid = "a"\ncall = "bad_inits:he_normal"\n'
                    'claims = "he_normal"\n'
                    'cases = [{ shape = [16, 16] }, { shape = [32, 8], args = [], kwargs = {} }]\n')
    code, out, err = run_cli("check", "--manifest", str(path), "-q")
    assert code == 0, out + err


def test_manifest_directory(run_cli, tmp_path):
    code, _, err = run_cli("check", "--manifest", str(tmp_path))
    assert code == 2 and "is a directory" in _one_line(err)


# --- output paths: refused before the run ------------------------------------------------

def _bad_paths(tmp: Path) -> list[tuple[str, str]]:
    out = [(str(tmp), "is a directory"), (str(tmp / "missing" / "r.out"), "does not exist"),
           ("", "the path is empty"), (str(tmp / ("a" * 300)), "File name too long")]
    if Path("/dev/full").exists():
        out.append(("/dev/full", "not a regular file"))
    return out


@pytest.mark.parametrize("case", range(5))
@pytest.mark.parametrize(("command", "option"), [
    ("check", "--json"), ("check", "--junit"), ("check", "--markdown"), ("check", "--html"),
    ("diff", "--json"), ("diff", "--junit"), ("identify", "--json"), ("matrix", "--markdown")])
def test_output_paths_checked_before_the_run(run_cli, tmp_path, monkeypatch, command, option, case):
    paths = _bad_paths(tmp_path)
    if case >= len(paths):
        pytest.skip("no /dev/full here")
    path, message = paths[case]
    called = []  # the run itself must not start: an up-front refusal costs nothing
    import initspec.api
    import initspec.engine.compare
    import initspec.engine.identify

    for mod, name in ((initspec.api, "check"), (initspec.engine.compare, "diff"),
                      (initspec.engine.identify, "identify"), (initspec.engine.compare, "matrix")):
        monkeypatch.setattr(mod, name, lambda *a, **k: called.append(1))
    args = {"check": GOOD, "diff": ("numpy:normal", "numpy:normal"),
            "identify": ("--target", "bad_inits:he_normal"), "matrix": ("numpy",)}[command]
    code, _, err = run_cli(command, *args, option, path)
    assert code == 2
    line = _one_line(err)
    assert option in line and message in line
    assert not called


def test_two_reports_to_one_path(run_cli, tmp_path):
    p = str(tmp_path / "r.out")
    code, _, err = run_cli("check", *GOOD, "--json", p, "--junit", p)
    assert code == 2 and "--json and --junit both write to" in _one_line(err)
    code, _, err = run_cli("check", *GOOD, "--json", "-", "--junit", "-")
    assert code == 2 and "both write to standard output" in _one_line(err)


def test_json_dash_is_stdout(run_cli, tmp_path, monkeypatch):
    import json

    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli("check", *GOOD, "--json", "-")
    assert code == 0
    assert json.loads(out)["results"][0]["verdict"] == "pass"  # stdout is the JSON alone
    assert "1 passed" in err  # the terminal view moved to stderr
    assert not (tmp_path / "-").exists()


# --- misbehaving initializers: an error result each, the run goes on ---------------------

def _cli(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(TESTS)])}
    return subprocess.run([sys.executable, "-m", "initspec", *args], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=TESTS)


HOSTILE = [("exits_0", "called sys.exit(0)"), ("exits_3", "called sys.exit(3)"),
           ("hard_exit", "called os._exit(0)"), ("raises_base", "raised BaseException: not an Exception"),
           ("returns_none", "returned NoneType, not an array of shape (8, 8)"),
           ("returns_generator", "returned generator, not an array")]


@pytest.mark.parametrize(("name", "message"), HOSTILE)
def test_hostile_target_is_an_error_result(name, message):
    # a real process: sys.exit/os._exit would end an in-process run silently
    p = _cli("check", "--target", f"hostile_inits:{name}", "--scheme", "normal", "--shape", "8,8")
    assert p.returncode == 1, p.stdout + p.stderr
    assert "ERROR" in p.stdout and message in p.stdout
    assert "Traceback" not in p.stderr


@pytest.mark.parametrize(("name", "message"), HOSTILE[:4])
@pytest.mark.parametrize("command", ["check", "identify"])
def test_hostile_factory_is_an_error_result(command, name, message):
    """`MODULE:ATTR(args)` calls the factory once, before any draw: a factory that exits or
    raises is the initializer's error (exit 1), as in a manifest -- it used to be a traceback
    (raising) or initspec's exit code (sys.exit)."""
    extra = ("--scheme", "normal") if command == "check" else ("--samples", "1000")
    p = _cli(command, "--target", f"hostile_inits:{name}(1, 2, 3)", *extra, "--shape", "8,8")
    assert p.returncode == 1, p.stdout + p.stderr
    assert f"building the initializer {message}" in p.stdout
    assert "Traceback" not in p.stderr


@pytest.mark.parametrize("command", ["check", "identify"])
def test_raising_factory_is_an_error_result(run_cli, command):
    extra = ("--scheme", "he_normal") if command == "check" else ("--samples", "1000")
    code, out, err = run_cli(command, "--target", "bad_inits:he_normal(x)", *extra, "--shape", "8,8")
    assert code == 1, out + err
    assert "building the initializer raised TypeError: he_normal() missing 2 required positional" in out
    assert "Traceback" not in err


@pytest.mark.parametrize(("name", "message"), HOSTILE[:4])
def test_hostile_model_constructor_fails_the_audit(run_cli, name, message):
    """A model factory that exits or raises a BaseException: one ERROR line, exit 1 (the
    constructor never decides initspec's exit code).  In-process: the audit's child process
    takes the blow, this test's own process is the parent."""
    code, out, err = run_cli("audit", f"hostile_inits:{name}(1, 2, 3)")
    assert code == 1, out + err
    assert out.startswith("ERROR") and message in out
    assert "Traceback" not in err


@pytest.mark.parametrize("args", [("audit", "hostile_inits:good"),
                                  ("propagate", "he_normal", "-a", "relu", "--depth", "2", "--width", "8")])
def test_new_commands_check_their_output_paths_first(args, tmp_path):
    p = _cli(*args, "--json", str(tmp_path / "missing" / "r.json"))
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.strip() == f"initspec: error: --json {str(tmp_path / 'missing' / 'r.json')!r}: " \
                               f"the folder {str(tmp_path / 'missing')!r} does not exist"


def _manifest(tmp_path: Path, names: list[str]) -> Path:
    body = 'framework = "numpy"\n' + "".join(
        f'[[entry]]\nid = "{n}{i}"\ncall = "hostile_inits:{n}"\nclaims = "normal"\nshapes = [[64, 32]]\n'
        for i, n in enumerate(names))
    path = tmp_path / "hostile.toml"
    path.write_text(body)
    return path


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_hostile_manifest_run_goes_on(tmp_path, jobs):
    names = ["good", "exits_0", "hard_exit", "raises_base", "good"]
    if jobs == "2":
        names.append("kills_itself")  # SIGKILL: only a worker process can die of it and be survived
    m = _manifest(tmp_path, names)
    p = _cli("check", "--manifest", str(m), "-j", jobs, "--samples", "20000", "--json", str(tmp_path / "r.json"))
    assert p.returncode == 1, p.stdout + p.stderr
    import json

    verdicts = {r["id"].split("[")[0]: r["verdict"] for r in json.loads((tmp_path / "r.json").read_text())["results"]}
    assert verdicts["good0"] == verdicts[f"good{names.index('good', 1)}"] == "pass"
    assert all(v == "error" for k, v in verdicts.items() if not k.startswith("good")), verdicts
    if jobs == "2":
        assert "the worker process died" in p.stdout


@pytest.mark.parametrize("name", ["sleeps", "busy_loop"])
def test_draw_timeout(name):
    p = _cli("check", "--target", f"hostile_inits:{name}", "--scheme", "normal", "--shape", "8,8",
             "--draw-timeout", "0.5", timeout=60)
    assert p.returncode == 1
    assert "took longer than the draw timeout (0.5 s; --draw-timeout)" in p.stdout


def test_broadcast_view_is_bounded():
    # a zero-memory broadcast claiming 1e8 values: the finiteness scan is chunked and finishes
    p = _cli("check", "--target", "hostile_inits:broadcast", "--scheme", "constant(value=0)",
             "--shape", "10000,10000", timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr


def test_identify_of_a_raising_initializer(run_cli):
    code, out, err = run_cli("identify", "--target", "bad_inits:raises")
    assert code == 1 and "Traceback" not in err
    assert "cannot identify bad_inits:raises: shape (512, 128): raised RuntimeError: boom" in out


@pytest.mark.parametrize(("a", "b", "code", "message"), [
    ("numpy:zeros", "numpy:ones", 1, "different distributions"),
    ("numpy:zeros", "numpy:zeros", 0, "both are the constant 0"),
])
def test_diff_of_constants(run_cli, a, b, code, message):
    got, out, err = run_cli("diff", a, b, "--samples", "1000")
    assert got == code and message in out and "Traceback" not in err


def test_matrix_counts_a_framework_once(run_cli):
    _, once, _ = run_cli("matrix", "numpy")
    _, twice, _ = run_cli("matrix", "numpy", "numpy")
    assert once == twice


# --- the validation layer as an API ------------------------------------------------------

@pytest.mark.parametrize(("call", "message"), [
    (lambda: validate.number(1e400, "x"), "x must be a finite number in (-inf, inf), got inf"),
    (lambda: validate.number(10**400, "x", low=0), "an integer of 401 digits"),
    (lambda: validate.number("3", "x"), "must be a finite number"),
    (lambda: validate.number(True, "x"), "must be a finite number"),
    (lambda: validate.number(1.0, "x", low=1.0, low_open=True), "x must be a finite number in (1, inf), got 1.0"),
    (lambda: validate.probability(1.0, "--alpha", where="diff"), "diff: --alpha must be a finite number in (0, 1)"),
    (lambda: validate.magnitude(0, "std"), "std must be a finite positive number in [1e-150, 1e+150]"),
    (lambda: validate.integer(2.0, "n", low=1), "n must be an integer in [1, inf], got 2.0"),
    (lambda: validate.integer(0, "n", low=1, high=5), "n must be an integer in [1, 5], got 0"),
    (lambda: validate.shape_size((10**5, 10**5)), "1e+10 values; one draw needs 40 GB"),
    (lambda: validate.truncation(2.0, 1.0), "lower (2) must be below upper (1)"),
])
def test_validate_api_messages(call, message):
    with pytest.raises(InputError) as e:
        call()
    assert message in str(e.value)


def test_validate_api_accepts_and_converts():
    assert validate.number(3, "x", low=0, high=3) == 3.0 and isinstance(validate.number(3, "x"), float)
    assert validate.integer(5, "n", low=1, high=5) == 5
    assert validate.shape_size((3, 4)) == 12
    validate.truncation(-2.0, 2.0)  # the default truncation is fine
    assert len(validate.show("y" * 10_000)) < 100


def test_torch_initializer_that_fills_nothing_is_all_nan():
    """torch.empty memory is pre-filled with NaN: the verdict never reads stale memory (same on every run)."""
    pytest.importorskip("torch")
    outs = [_cli("check", "--target", "hostile_inits:torch_no_fill", "--convention", "torch", "--scheme", "normal",
                 "--shape", "64,32") for _ in range(2)]
    for p in outs:
        assert p.returncode == 1, p.stdout + p.stderr
        assert "2048 of 2048 values are NaN or infinite" in p.stdout


def test_low_power_is_warned(run_cli):
    _, out, _ = run_cli("check", *GOOD, "--samples", "10")
    assert "tested with power below 0.5" in out
    _, out, _ = run_cli("check", *GOOD)  # the derived default has power 0.99
    assert "power below" not in out



# --- issue 25: every call into user code guarded; one validation path; outputs; ties; trust ------

AUDIT = TESTS / "audit"


@pytest.fixture
def hostile(monkeypatch):
    """tests/audit (hostile_models, torch_models) importable here and in the audit's child process."""
    monkeypatch.syspath_prepend(str(AUDIT))


def _cli_audit(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(TESTS), str(AUDIT)])}
    return subprocess.run([sys.executable, "-m", "initspec", "audit", *args], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=TESTS)


def _line(p: subprocess.CompletedProcess | tuple, stream: str = "out") -> str:
    """The one non-empty line of a result's stdout (or stderr), at most 200 characters after its tag."""
    text = (p.stdout if stream == "out" else p.stderr) if isinstance(p, subprocess.CompletedProcess) else p
    lines = [x for x in text.splitlines() if x.strip()]
    assert len(lines) == 1, text
    assert "Traceback" not in text
    assert len(lines[0].split(": ", 1)[-1]) <= 200 or len(lines[0]) <= 217, lines[0]
    return lines[0]


@pytest.mark.parametrize(("name", "args", "message"), [
    ("sleeps", ("--timeout", "1"), "building hostile_models:sleeps took longer than the time limit (1 s; --timeout)"),
    ("busy_loop", ("--timeout", "1"), "took longer than the time limit (1 s; --timeout)"),
    # SIGALRM blocked, as by C code that never returns: the parent's watchdog ends the child
    ("blocks_alarm", ("--timeout", "1"), "building hostile_models:blocks_alarm took longer than the time limit (1 s) "
                                         "and never returned to Python: its process was ended"),
    ("exits_5", (), "building hostile_models:exits_5 called sys.exit(5)"),
    ("raises_multiline", (), "building hostile_models:raises_multiline raised BaseException: first line"),
])
def test_hostile_model_is_one_error_line_within_its_limit(run_cli, hostile, name, args, message):
    """A model that hangs, blocks the alarm, exits or raises a many-line BaseException: exit 1, one
    ERROR line naming what it did, within the limit plus the watchdog's 5 s grace."""
    import time

    t0 = time.monotonic()
    code, out, err = run_cli("audit", f"hostile_models:{name}", *args)
    assert code == 1, out + err
    assert _line(out) == f"ERROR  {message}" if name != "busy_loop" else message in _line(out)
    assert time.monotonic() - t0 < 60  # 1 s limit, 5 s grace, a process start: far below a minute


def test_nothing_the_model_started_outlives_the_audit(run_cli, hostile, tmp_path):
    pid_file = tmp_path / "pid"
    code, out, _ = run_cli("audit", f"hostile_models:leaves_a_process({str(pid_file)!r})")
    assert code == 1 and "called sys.exit(5)" in out
    pid = int(pid_file.read_text())
    import time

    for _ in range(50):  # killed at once; reaped by init a moment later
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.kill(pid, 9)
        pytest.fail(f"process {pid} the model started was still running after the audit")


@pytest.mark.parametrize(("name", "message"), [
    # what a model leaves behind after its constructor returned: only the child process can contain it
    ("thread_exits_later", "a thread the model started (Thread-1 (later)) called os._exit(7)"),
    ("atexit_exits", "an atexit handler the model registered called os._exit(9)"),
    ("walk_exits", "walking hostile_models:walk_exits called sys.exit(5)"),
    ("del_exits", "releasing hostile_models:del_exits: a __del__ called os._exit(3)"),
])
def test_torch_model_side_effects_are_reported(run_cli, hostile, name, message):
    pytest.importorskip("torch")
    code, out, err = run_cli("audit", f"hostile_models:{name}")
    assert code == 1, out + err
    assert message in next(x for x in out.splitlines() if x.startswith("ERROR"))
    assert "Traceback" not in err


def test_torch_a_thread_that_never_ends_does_not_hang_the_audit(run_cli, hostile):
    pytest.importorskip("torch")
    code, out, err = run_cli("audit", "hostile_models:thread_never_ends", "--seeds", "2")
    assert code == 0, out + err  # the audit ends (the child is ended with its thread) and the model conforms


def test_no_isolate_runs_in_process_with_the_guard(run_cli, hostile):
    """--no-isolate: the constructor's sys.exit is still caught by the in-process guard."""
    code, out, _ = run_cli("audit", "hostile_models:exits_5", "--no-isolate")
    assert code == 1 and _line(out) == "ERROR  building hostile_models:exits_5 called sys.exit(5)"


# seeds: one range, one message, every command

BAD_SEEDS = [("-1", "--seed must be an integer in [0, 2147483647], got -1"),
             (str(10**23), "--seed must be an integer in [0, 2147483647], got 100000000000000000000000")]


@pytest.mark.parametrize(("seed", "message"), BAD_SEEDS)
@pytest.mark.parametrize("command", [
    ("check", *GOOD), ("diff", "numpy:normal", "numpy:normal"), ("identify", "--target", "bad_inits:he_normal"),
    ("audit", "hostile_inits:good"), ("check", "numpy", "--only", "normal")], ids=lambda c: c[0])
def test_bad_seed_everywhere(run_cli, command, seed, message):
    code, _, err = run_cli(*command, "--seed", seed)
    assert code == 2 and _line(err, "err") == f"initspec: error: {message}"


@pytest.mark.parametrize(("args", "message"), [
    (("--seeds", str(10**30)), "--seeds must be an integer in [1, 10000], got 1000000000000000000000000000000"),
    (("--max-seeds", "0"), "--max-seeds must be an integer in [1, 10000], got 0"),
    (("--seed", "2147483647"), "--seed 2147483647 with 8 seeds reaches 2147483654; seeds must lie in [0, 2147483647]"),
    (("--timeout", "-1"), "--timeout must be a finite non-negative number"),
])
def test_audit_counts_and_limits(run_cli, args, message):
    code, _, err = run_cli("audit", "hostile_inits:good", *args)
    assert code == 2 and message in _line(err, "err")


def test_seed_api_validates_the_whole_range():
    assert validate.seed(0) == 0 and validate.seed(2**31 - 1) == 2**31 - 1
    with pytest.raises(InputError, match="reaches 2147483648"):
        validate.seed(2**31 - 2, count=3)


# parsed text: bounded before ast.parse, in every place that parses

DEEP = "1+" * 1500 + "1"


@pytest.mark.parametrize(("row", "message"), [
    (f"normal(std={DEEP})", "nested deeper than 64 levels"),
    ("normal(std=" + "-" * 2000 + "1)", "nested deeper than 64 levels"),
    (f"normal(std={'9' * 400})", "an integer of 400 digits; at most 100 are accepted"),
    (f"normal(std={'9' * 90} * 1e300)", "is not a finite real number"),
    ("normal(std=" + "x" * 5000 + ")", "longer than the 4096 characters"),
])
def test_spec_rows_are_bounded(tmp_path, run_cli, row, message):
    path = tmp_path / "s.toml"
    path.write_text(f'[params]\n"*" = "{row}"\n')
    code, _, err = run_cli("audit", "hostile_inits:good", "--spec", str(path))
    assert code == 2 and message in _line(err, "err")


@pytest.mark.parametrize("command", ["check", "identify", "audit"])
def test_target_arguments_are_bounded(run_cli, command):
    extra = {"check": ("--scheme", "normal"), "identify": (), "audit": ()}[command]
    target = f"bad_inits:he_normal(x={DEEP})"
    args = (command, target) if command == "audit" else (command, "--target", target)
    code, _, err = run_cli(*args, *extra)
    assert code == 2 and "nested deeper than 64 levels" in _line(err, "err")


@pytest.mark.parametrize(("body", "message"), [
    ('vars = 3\n[params]\n"*" = "zeros"\n', "vars must be a table ([vars]), got int"),
    ('params = "zeros"\n', "params must be a table ([params]), got str"),
    ('tied = ["a", "b"]\n[params]\n"*" = "zeros"\n', "tied must be a table ([tied]), got list"),
    ('[params]\n"' + "g" * 100_000 + '" = "nosuch"\n', "(100002 characters): unknown scheme"),
])
def test_spec_tables_are_type_checked(run_cli, tmp_path, body, message):
    path = tmp_path / "s.toml"
    path.write_text(body)
    code, _, err = run_cli("audit", "hostile_inits:good", "--spec", str(path))
    assert code == 2 and message in _line(err, "err")


def _special_files(tmp_path: Path) -> list[tuple[str, str]]:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # opening it for reading would block until a writer came: never opened
    big = tmp_path / "big.toml"
    big.write_bytes(b"#" * (validate.MAX_FILE_BYTES + 1))
    return [(str(tmp_path), "is a directory"), ("/dev/zero", "not a regular file"), (str(fifo), "not a regular file"),
            ("", "the path is empty"), (str(big), "4.19 MB; at most 4.19 MB are read")]


@pytest.mark.parametrize("case", range(5))
@pytest.mark.parametrize("option", ["--spec", "--manifest"])
def test_input_files_are_regular_and_bounded(tmp_path, option, case):
    """A directory, a device, a FIFO, an empty path, a file too large: one line, exit 2, at once
    (a real process with a time limit: a regression would block on the FIFO)."""
    path, message = _special_files(tmp_path)[case]
    args = ("audit", "hostile_inits:good", "--spec", path) if option == "--spec" else ("check", "--manifest", path)
    p = subprocess.run([sys.executable, "-m", "initspec", *args], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(TESTS)])}, cwd=TESTS)
    assert p.returncode == 2 and option in _line(p, "err") and message in p.stderr


# outputs: a report on stdout is alone there; error lines echo little

def test_audit_json_dash_is_alone_on_stdout(run_cli, hostile):
    import json

    code, out, err = run_cli("audit", "hostile_models:exits_5", "--json", "-")
    assert code == 1
    assert json.loads(out)["error"] == "building hostile_models:exits_5 called sys.exit(5)"
    assert _line(err, "err").startswith("ERROR  building")


@pytest.mark.parametrize(("args", "option"), [
    (("diff", "numpy:normal", "numpy:normal", "--samples", "1000"), "--json"),
    (("matrix", "numpy"), "--markdown")])
def test_other_reports_alone_on_stdout(run_cli, args, option):
    import json

    code, out, err = run_cli(*args, option, "-")
    assert code == 0, err
    if option == "--json":
        assert json.loads(out)["same"] is True and "numpy:normal" in err
    else:
        assert out.startswith("| scheme | numpy |") and "initializers by canonical scheme" in err


@pytest.mark.parametrize("target", ["x" * 100_000, "hostile_inits:" + "x" * 100_000, "pkg:" + "y" * 3000 + "(1"])
def test_audit_echoes_little_of_a_huge_target(run_cli, target):
    code, _, err = run_cli("audit", target)
    assert code == 2 and len(_line(err, "err")) <= 217


def test_one_line_keeps_both_ends():
    from initspec.errors import one_line

    line = one_line("where: " + "x" * 500 + "\nthe reason")
    assert len(line) == 200 and line.startswith("where: x") and line.endswith("; the reason")


def test_framework_log_lines_are_filtered(tmp_path):
    """TensorFlow's C++ lines (absl format) never reach initspec's stderr; other lines do, in order."""
    code = ("import os, sys\n"
            "from initspec.engine.logs import quiet_framework_logs\n"
            "with quiet_framework_logs():\n"
            "    os.write(2, b'WARNING: All log messages before absl::InitializeLog() is called are written'\n"
            "             b' to STDERR\\n')\n"
            "    os.write(2, b'I0000 00:00:1796520478.713145    9585 port.cc:153] oneDNN custom operations'\n"
            "             b' are on.\\n')\n"
            "    os.write(2, b'kept one\\nE0000 00:00:1.5  12 cuda_dnn.cc:8] Unable to register\\n')\n"
            "    os.write(2, b'I0000 partial')\n"
            "    os.write(2, b' at the start of a line is a user line\\n')\n"
            "    print('kept two', file=sys.stderr)\n")
    p = _python(code)
    assert p.stderr == "kept one\nI0000 partial at the start of a line is a user line\nkept two\n"
    p = _python(code, INITSPEC_FRAMEWORK_LOGS="1")
    assert "port.cc:153" in p.stderr


def test_keras_audit_prints_no_tensorflow_noise(tmp_path):
    """A real Keras-on-TensorFlow audit (keras-tensorflow env): ~6 lines of TF log noise used to
    precede the report, whatever TF_CPP_MIN_LOG_LEVEL said."""
    pytest.importorskip("keras")
    pytest.importorskip("tensorflow")
    (tmp_path / "km.py").write_text("def dense():\n    import keras\n"
                                    "    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])\n")
    for args in (("km:dense", "--seeds", "2"), ("km:dense", "--seed", "-1")):
        p = subprocess.run([sys.executable, "-m", "initspec", "audit", *args], capture_output=True, text=True,
                           timeout=600, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT),
                                                            "KERAS_BACKEND": "tensorflow"})
        assert p.returncode in (0, 2), p.stdout + p.stderr
        assert p.stderr == ("" if p.returncode == 0 else "initspec: error: --seed must be an integer in "
                            "[0, 2147483647], got -1\n"), p.stderr


# ties and zero-size tensors, verified (torch models, in-process: --no-isolate)

def _spec(tmp_path: Path, body: str) -> str:
    path = tmp_path / "s.toml"
    path.write_text(body)
    return str(path)


def test_torch_zero_size_parameters_are_not_tied(run_cli, hostile, tmp_path):
    pytest.importorskip("torch")
    for spec in ((), ("--spec", _spec(tmp_path, '[params]\n"*" = "normal(std=1)"\n'))):
        code, out, err = run_cli("audit", "hostile_models:zero_size", "--seeds", "2", "--no-isolate", *spec)
        assert "TIED" not in out and "Traceback" not in err, out + err
        assert "zero_size: 2 zero-size parameter(s) hold no values and are not audited: a, b" in out
        assert code == (0 if not spec else 1)  # the spec's normal(std=1) is wrong for fc (torch's default)


@pytest.mark.parametrize(("target", "tied", "code", "message"), [
    ("two_linears", '["0.weight", "1.weight"]', 1, "tie_broken: declared [tied] but 2 separate tensors with "
                                                   "different values: 0.weight, 1.weight"),
    ("two_linears", '["0.weight", "nope.*"]', 2, "[tied] 'nope.*' matches no parameter of the model"),
    ("truly_tied", '["a.weight", "b.weight"]', 0, "TIED   a.weight = b.weight"),
])
def test_torch_ties_are_verified(run_cli, hostile, tmp_path, target, tied, code, message):
    pytest.importorskip("torch")
    spec = _spec(tmp_path, f'[params]\n"*.weight" = "torch_linear_default"\n"*.bias" = "torch_bias_default"\n'
                           f'[tied]\nx = {tied}\n')
    got, out, err = run_cli("audit", f"hostile_models:{target}", "--spec", spec, "--seeds", "2", "--no-isolate")
    assert got == code, out + err
    assert message in (err if code == 2 else out)


def test_torch_orthogonal_bias_is_refused(run_cli, hostile, tmp_path):
    pytest.importorskip("torch")
    spec = _spec(tmp_path, '[params]\n"*.bias" = "orthogonal"\n"*" = "torch_linear_default"\n')
    code, _, err = run_cli("audit", "hostile_models:two_linears", "--spec", spec, "--no-isolate")
    assert code == 2
    assert _line(err, "err").endswith("'*.bias' = 'orthogonal': '0.bias' has shape (8,); orthogonal needs at "
                                      "least 2 dimensions")


def test_jax_prng_keys_are_skipped_with_a_note(run_cli, tmp_path, monkeypatch):
    pytest.importorskip("jax")
    (tmp_path / "keyed.py").write_text(
        "import jax\n\ndef init(key):\n    k1, k2 = jax.random.split(key)\n"
        "    return {'w': jax.random.normal(k1, (16, 8)), 'rng': k2, 'step': jax.numpy.zeros((), 'int32')}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    code, out, err = run_cli("audit", "keyed:init", "--convention", "jax", "--seeds", "2", "--no-isolate")
    assert code == 0, out + err
    assert "not_float: 2 non-float parameter(s) skipped (integers, booleans, PRNG keys have no law): " \
           "rng (key<fry>), step (int32)" in out


# the trust model: a target is code; the check runs only what is named, after validating it

@pytest.mark.parametrize(("target", "message"), [
    ("cProfile:run('open(\\'F\\', \\'w\\')')", "module 'cProfile' is in Python's standard library"),
    ("pydoc:pipepager('x', 'touch F')", "module 'pydoc' is in Python's standard library"),
    ("bad_inits:he_normal.__globals__", "the attribute path goes through '__globals__'"),
    ("bad inits:he_normal", "the module 'bad inits' is not a dotted Python name"),
    (".bad_inits:he_normal", "is not a dotted Python name"),
])
def test_targets_run_only_what_they_name(run_cli, tmp_path, monkeypatch, target, message):
    monkeypatch.chdir(tmp_path)
    runs = [("check", "--target", target, "--scheme", "normal"), ("identify", "--target", target), ("audit", target)]
    for args in runs:
        code, _, err = run_cli(*args)
        assert code == 2 and message in _line(err, "err"), args
    manifest = tmp_path / "m.toml"
    manifest.write_text(f'framework = "numpy"\n[[entry]]\nid = "a"\ncall = "{target}"\nclaims = "normal"\n'
                        .replace("\\'", "'"))
    code, _, err = run_cli("check", "--manifest", str(manifest))
    assert code == 2 and message in _line(err, "err")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.toml"]  # `touch F` never ran


# the guard as an API (what other evidence sources reuse)

def test_call_user_names_what_the_code_did():
    import time

    from initspec.engine.guard import UserCodeError, call_user, guarded, time_limit

    with pytest.raises(UserCodeError, match=r"^building m called sys.exit\(4\)$"):
        call_user(sys.exit, 4, what="building m")
    with pytest.raises(UserCodeError, match=r"^x raised KeyError: 'k'$"):
        call_user({}.__getitem__, "k", what="x")
    with pytest.raises(InputError):  # bad input stays bad input
        call_user(validate.seed, -1, what="x")
    with time_limit(0.2, "--timeout"), pytest.raises(UserCodeError, match=r"the time limit \(0.2 s; --timeout\)"):
        # nested: the inner call runs under the outer call's limit, which names itself
        call_user(lambda: call_user(time.sleep, 5, what="inner"), what="outer")
    # a nested call with a shorter limit fires first and names itself (propagate's --timeout inside
    # the model's build); the outer limit gets its remaining time back afterwards
    t0 = time.monotonic()
    with pytest.raises(UserCodeError, match=r"^inner took longer than the time limit \(0.2 s; --timeout\)$"):
        call_user(lambda: guarded(time.sleep, 5, timeout=0.2, what="inner"), what="outer", timeout=30)
    with pytest.raises(UserCodeError, match=r"^outer took longer than the time limit \(0.5 s; --timeout\)$"):
        call_user(lambda: (guarded(time.sleep, 0.05, timeout=0.3, what="inner"), time.sleep(5)), what="outer",
                  timeout=0.5)
    assert time.monotonic() - t0 < 3
    assert guarded(lambda a, b=0: a + b, 1, b=2, timeout=1) == 3  # the API other helpers use


def test_call_user_reports_an_exiting_destructor():
    from initspec.engine.guard import UserCodeError, call_user

    class Bad:
        def __del__(self) -> None:
            os._exit(3)

    box = [Bad()]
    with pytest.raises(UserCodeError, match=r"^releasing: a __del__ called os._exit\(3\)$"):
        call_user(box.clear, what="releasing")


def test_a_broken_matplotlib_is_one_line(run_cli, monkeypatch, tmp_path):
    """A matplotlib whose import raises something other than ImportError: exit 2, one line, before the run."""
    broken = tmp_path / "matplotlib"
    broken.mkdir()
    (broken / "__init__.py").write_text("raise RuntimeError('broken install\\nsecond line')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "matplotlib", raising=False)
    code, _, err = run_cli("check", *GOOD, "--html", str(tmp_path / "r.html"))
    assert code == 2
    assert _line(err, "err") == ("initspec: error: --html needs matplotlib, which failed to import: "
                                 "RuntimeError: broken install")


def test_torch_audit_progress_reaches_the_terminal_from_the_child(monkeypatch):
    """The isolated audit's instances drive the parent's bar (the child has no terminal)."""
    pytest.importorskip("torch")
    import test_progress as tp

    env = tp._env
    monkeypatch.setattr(tp, "_env", lambda d: {**env(d), "PYTHONPATH": os.pathsep.join([str(ROOT), str(AUDIT)])})
    code, out = tp._under_pty(["audit", "hostile_models:two_linears", "--seeds", "3"])
    assert code == 0 and tp.BAR in out and "instances" in out


def test_run_isolated_directly(hostile):
    """The child-process machinery on plain functions (what any evidence source can reuse)."""
    import hostile_models as hm

    from initspec.engine.guard import UserCodeError
    from initspec.engine.isolate import AfterResultError, run_isolated

    assert run_isolated(hm.answer, what="x") == 42
    with pytest.raises(AfterResultError, match=r"^x: an atexit handler the model registered called os._exit\(9\)$") \
            as e:
        run_isolated(hm.answer_then_atexit_exit, what="x")
    assert e.value.value == 42  # the result stands beside what the code did after it
    with pytest.raises(UserCodeError, match=r"^x: a thread the model started \(quitter\) called os._exit\(7\)$"):
        run_isolated(hm.thread_exits_during, what="x")
    with pytest.raises(InputError, match="a bad input found in the child"):
        run_isolated(hm.bad_input, what="x")


def test_a_huge_framework_name_is_one_line(run_cli):
    """`check <100 kB name>` built a path from it (OSError: File name too long, a traceback)."""
    code, _, err = run_cli("check", "x" * 100_000)
    assert code == 2 and "no manifest for framework 'xxx" in _line(err, "err")
    code, _, err = run_cli("check", "../adapters/numpy")
    assert code == 2 and "no manifest for framework '../adapters/numpy'" in _line(err, "err")


def test_os_exit_is_stopped_only_in_the_guarded_thread():
    """While a guarded call runs, os._exit from another thread (a scan worker's orphan watch) still ends
    the process; from the call's own thread it is the call's error."""
    code = ("import os, threading, time\n"
            "from initspec.engine.guard import DrawError, guarded\n"
            "try:\n"
            "    guarded(lambda: os._exit(4))\n"
            "except DrawError as e:\n"
            "    print(e, flush=True)\n"
            "threading.Thread(target=lambda: (time.sleep(0.2), os._exit(3))).start()\n"
            "guarded(time.sleep, 30, timeout=60)\n")
    p = _python(code)
    assert p.returncode == 3 and p.stdout == "the draw called os._exit(4)\n", (p.returncode, p.stdout, p.stderr)
