"""Running searches: sweeps of many seeded trials (vmapped, chunked, sharded over devices
and processes), the training driver, the XLA options and compile cache they share, and
what a run records (results, progress, status lines).

Layer: imports :mod:`catchjax.store`, :mod:`catchjax.methods` and below
(``docs/contributing.md``).
"""
