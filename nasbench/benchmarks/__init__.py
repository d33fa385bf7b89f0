"""Tabular ground truth: benchmarks that trained (and measured) every architecture of a
space, read from the user's files (:mod:`.nb201`: NAS-Bench-201 and HW-NAS-Bench)."""

from nasbench.benchmarks.nb201 import NB201Bench

__all__ = ["NB201Bench"]
