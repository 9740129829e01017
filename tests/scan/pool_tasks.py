"""Task functions for tests/scan/test_pool.py, importable by the pool's spawned workers."""

import os
import time


def echo(x):
    return {"value": x}


def hang(x):
    time.sleep(3600)
    return {"value": x}


def hard_exit(x):
    os._exit(3)


def raises(x):
    raise SystemExit(7)


def pid(x):
    return {"pid": os.getpid()}
