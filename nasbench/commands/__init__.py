"""CLI command implementations, registered by nasbench.cli."""
