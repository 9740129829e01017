"""Plain-Python stand-ins for `--convention jax` targets (no JAX needed): a factory with literal
arguments that returns f(key), a bare f, and a factory whose result is not callable."""


def pick(i):
    return lambda key: key[i]


def neg(x):
    return -x


def add(a, b):
    return a + b
