"""``initspec audit``: every parameter of a model identified and held to a declared spec.

Built on the engine (identify, the checks, Holm, diagnosis) and on per-framework walkers
(:mod:`initspec.audit.walkers`) that build a model under a seed and list its parameters with
the layout and fans of the layer that owns each one.
"""
