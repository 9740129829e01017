"""Bad input to ``initspec scan`` and ``--reference`` is one line and exit 2, never a traceback."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("args,message", [
    (("scan", "nope"), "unknown library 'nope'"),
    (("scan", "hf", "-j", "0"), "-j 0: give at least 1 worker"),
    (("scan", "hf", "--timeout", "0"), "--timeout 0"),
    (("scan", "hf", "--specs", "/nonexistent/locks"), "no such folder"),
    (("audit", "x:y", "--reference", "nosuch"), "no such reference"),
    (("audit", "x:y", "--reference", "gpt2", "--spec", "s.toml"), "two specs"),
    (("audit", "x:y", "--reference", "gpt2:nosuchport"), "no port 'nosuchport'"),
])
def test_bad_input_is_one_line(run_cli, args, message):
    code, out, err = run_cli(*args)
    assert code == 2 and message in err and "Traceback" not in out + err, (out, err)
