"""Diagnostics of the measurement set-up (run as modules, e.g. ``python -m
nasbench.diagnostics.drift_check``); they use the search spaces, so they live in
``nasbench``, not in ``profilers``."""
