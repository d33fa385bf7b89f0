"""Networks of the search spaces: DARTS search supernet and derived evaluation network."""
