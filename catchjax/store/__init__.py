"""What catchjax keeps on disk: agent checkpoints (Orbax), the lock of a folder shared by
many workers, and the results files of a run.

Layer: imports :mod:`catchjax.methods` and below (``docs/contributing.md``).
"""
