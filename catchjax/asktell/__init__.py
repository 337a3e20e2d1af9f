"""Ask/tell: searches whose rewards come from outside (your trainer, a cluster job), and
CATCH meta-trained the same way.

Layer: imports :mod:`catchjax.runs` and below (``docs/contributing.md``).
"""
