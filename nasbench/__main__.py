"""``python -m nasbench`` runs the CLI."""

from .cli import entry

entry()
