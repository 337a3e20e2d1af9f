"""The residual-block backbone space of CATCH §4.3: its encoding as decisions
(:mod:`~catchjax.residual.space`), a Flax model builder (:mod:`~catchjax.residual.model`)
and measured latency with the latency-aware reward (:mod:`~catchjax.residual.latency`)."""

from catchjax.residual.space import RESIDUAL, ResNetSpec, decode, encode_spec

__all__ = ["RESIDUAL", "ResNetSpec", "decode", "encode_spec"]
