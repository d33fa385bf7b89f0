"""Zero-cost proxies: scores of untrained networks from one minibatch
(:mod:`.measures`: the proxies and their registry; :mod:`.scorer`: scoring a space's
architectures on a data set, the on-disk cache and the aggregate of several).

This module stays light (no torch): configs and ``--help`` read its names."""

from __future__ import annotations

from nasbench.errors import UserError
from nasbench.registry import PROXIES

#: the default score: fixed before measuring on our own images, as the best 3-proxy
#: rank aggregate of NASLib's public NAS-Bench-201 scores (docs/proxies.md)
DEFAULT_PROXY = "jacob_cov+naswot+params"
#: images in the proxies' minibatch (NASWOT's and NASLib's 64)
DEFAULT_BATCH = 64


def proxy_names() -> list[str]:
    """Returns the registered proxy names (imports nothing)."""
    return PROXIES.names()


def parse_proxy(text: str) -> list[str]:
    """Returns the proxies of ``--proxy`` text: one name, or an aggregate ``a+b+c``;
    raises UserError (one line) for an unknown or repeated name."""
    names = [t.strip() for t in str(text).split("+")]
    known = proxy_names()
    for n in names:
        if n not in known:
            raise UserError(f"--proxy must be one of {', '.join(known)} or an aggregate "
                            f"of them joined by '+' (e.g. {DEFAULT_PROXY}), got {n!r}")
    if len(set(names)) != len(names):
        raise UserError(f"--proxy names a proxy twice: {text!r}")
    return names
