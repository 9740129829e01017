"""``initspec scan LIBRARY``: every architecture a model library offers, built small and audited.

Above the audit (DESIGN.md): a library chooses the targets (``libraries/``: transformers, timm,
keras-hub, each with its shrinking rules), the pool runs one audit per architecture in worker
processes under a timeout (``pool.py``), ``compare.py`` holds each one to the lockfile another
release wrote, and ``report.py`` gives one row per architecture.  No check of its own.
"""
