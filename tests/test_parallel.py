"""-j N gives exactly the single-process results (the seeds fix every draw)."""

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
