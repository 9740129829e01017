#!/usr/bin/env bash
# env: docs
# cwd: tmp
# A target is code: the check runs only what is named, and says so (no file F is ever written).
initspec check --target "cProfile:run('open(\"F\", \"w\")')" --scheme normal
initspec audit 'pydoc:pipepager("x", "touch F")'
initspec audit 'bad_inits:he_normal.__globals__'
ls
