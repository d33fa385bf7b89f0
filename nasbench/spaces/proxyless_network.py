"""The derived ProxylessNAS network: stem, first block, the chosen candidate of every
searchable block and the head, each module built by the op registry from the same op
instances the LUT measures (so the LUT keys of :func:`ProxylessNetwork.instances` are
exactly the modules that run)."""

from __future__ import annotations

from torch import nn

from nasbench.spaces.base import OpInstance
from nasbench.spaces.proxyless_blocks import ProxylessDeployConfig, arch_instances


class ProxylessNetwork(nn.Module):
    """A discrete ProxylessNAS network. ``layers`` runs in order: ``px_stem``,
    ``mb_k3_e1``, one module per block (an MBConv with its identity shortcut, or the
    ``zero`` pass-through), ``px_feature_mix``, ``gap_linear``; ``forward`` returns
    logits [batch x classes]."""

    def __init__(self, arch, deploy: ProxylessDeployConfig):
        super().__init__()
        self.arch, self.deploy = arch, deploy
        try:
            self._instances = arch_instances(deploy, list(arch.blocks))
        except ValueError as e:
            raise ValueError(f"architecture does not fit the network: {e}") from None
        self.layers = nn.ModuleList(inst.build() for inst in self._instances)

    def instances(self) -> list[OpInstance]:
        """Returns the op instance of every module of ``layers`` (their LUT keys)."""
        return list(self._instances)

    def forward(self, x):
        for m in self.layers:
            x = m(x)
        return x


def build_proxyless_network(arch, deploy: ProxylessDeployConfig) -> ProxylessNetwork:
    """Returns the derived network of ``arch`` (a ProxylessArch) for ``deploy``."""
    return ProxylessNetwork(arch, deploy)


__all__ = ["ProxylessNetwork", "build_proxyless_network"]
