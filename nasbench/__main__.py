"""``python -m nasbench`` runs the CLI."""

from nasbench.cli import entry

entry()
