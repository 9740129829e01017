"""Keras models of the trace's tests and the manual's transcripts (docs/examples/trace_keras.sh), kept apart
from the tests so that the lines the transcripts show do not move when a test changes; ``# site: TAG``
marks the lines a test expects provenance to name.
"""

from __future__ import annotations

import keras

D = 64


def model(bug: str = "") -> keras.Model:
    """Two blocks and a head; bugs (comma-separated): gain, zero, variance, shared, seed."""
    bugs = set(bug.split(","))
    x = inp = keras.Input((D,))
    shared = keras.initializers.RandomNormal(stddev=0.02)
    for i in range(2):
        he = keras.initializers.VarianceScaling(1.0 if "gain" in bugs else 2.0, "fan_in", "truncated_normal",
                                                seed=7 if "seed" in bugs else None)
        x = keras.layers.Dense(4 * D, name=f"fc_{i}", kernel_initializer=he)(x)  # site: fc
        proj = "glorot_uniform" if "zero" in bugs else "zeros"
        x = keras.layers.Dense(D, name=f"proj_{i}", kernel_initializer=proj)(x)
        emb = shared if "shared" in bugs else keras.initializers.RandomNormal(stddev=0.02)
        x = keras.layers.Dense(D, name=f"emb_{i}", kernel_initializer=emb)(x)
    head = keras.initializers.RandomNormal(stddev=1 / D if "variance" in bugs else D ** -0.5)
    return keras.Model(inp, keras.layers.Dense(256, name="head", kernel_initializer=head)(x))  # site: head
