"""The one runner and what it shares: the run config, the run directory's plumbing, the
result, and what it measures."""
