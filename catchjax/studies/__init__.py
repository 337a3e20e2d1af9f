"""Studies over many runs: the transfer study, task relations, reward shaping, and
``catchjax report``'s tables and figures.

Layer: imports :mod:`catchjax.runs` and below (``docs/contributing.md``).
"""
