"""-j N gives exactly the single-process results (the seeds fix every draw), through the API
and through the CLI."""

import json
import os

import initspec


def test_workers_give_the_same_results():
    kwargs = {"only": "he_*", "samples": 20_000}
    one = initspec.check_framework("numpy", **kwargs)
    two = initspec.check_framework("numpy", workers=2, **kwargs)
    assert [r.id for r in one.results] == [r.id for r in two.results]
    for a, b in zip(one.results, two.results, strict=True):
        assert a.verdict == b.verdict
        assert a.observed == b.observed
        assert [(t.name, t.p_value) for t in a.tests] == [(t.name, t.p_value) for t in b.tests]


MANIFEST = """framework = "numpy"
[[entry]]
id = "bad"
call = "bad_inits:he_normal_std_as_variance"
claims = "he_normal"
shapes = [[64, 32], [32, 64]]
""" + "".join(f"""[[entry]]
id = "good{i}"
call = "bad_inits:he_normal_logging_pid"
claims = "he_normal"
shapes = [[64, 32], [32, 64]]
""" for i in range(3))


def test_cli_jobs_flag_spreads_entries_and_keeps_the_verdicts(run_cli, tmp_path, monkeypatch):
    """`check -j 2` draws in other processes than the CLI's own (each good entry logs the pid
    that drew it) and reports what `-j 1` reports, result by result."""
    manifest = tmp_path / "m.toml"
    manifest.write_text(MANIFEST)
    docs, pids = {}, {}
    for jobs in ("1", "2"):
        log = tmp_path / f"pids{jobs}.txt"
        monkeypatch.setenv("INITSPEC_TEST_PID_LOG", str(log))  # inherited by the spawned workers
        path = tmp_path / f"r{jobs}.json"
        code, out, _ = run_cli("check", "--manifest", str(manifest), "--samples", "5000", "-j", jobs,
                               "--json", str(path), "-q")
        assert code == 1, out  # "bad" fails in both
        docs[jobs] = json.loads(path.read_text())
        pids[jobs] = set(log.read_text().split())
    assert pids["1"] == {str(os.getpid())}
    assert str(os.getpid()) not in pids["2"] and 1 <= len(pids["2"]) <= 2
    one, two = docs["1"]["results"], docs["2"]["results"]
    assert [r["id"] for r in one] == [r["id"] for r in two]
    assert {r["verdict"] for r in one} == {"pass", "fail"}
    for a, b in zip(one, two, strict=True):
        assert (a["verdict"], a["observed"], a["diagnosis"]) == (b["verdict"], b["observed"], b["diagnosis"])
        assert [(t["name"], t["p_value"], t["passed"]) for t in a["tests"]] == \
               [(t["name"], t["p_value"], t["passed"]) for t in b["tests"]]
