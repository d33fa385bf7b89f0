"""One-shot search machinery that the one-shot searchers share: the DARTS architect
(:mod:`.architect`), ENAS's controller (:mod:`.controller`), the expected cost of a
mixture (:mod:`.cost`) and ProxylessNAS's binary-gate supernet and losses
(:mod:`.proxyless`). The supernets of the cell spaces live beside their spaces."""
