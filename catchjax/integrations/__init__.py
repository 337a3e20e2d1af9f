"""catchjax's methods inside other tools: :mod:`catchjax.integrations.optuna` (a sampler for
optuna studies, and through optuna for Ray Tune). Each needs its tool installed (an
optional extra); importing this package needs nothing.

Layer: imports :mod:`catchjax.asktell` and below (``docs/contributing.md``).
"""
