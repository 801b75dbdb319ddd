"""Pulumi dynamic resources and providers for Exchange Online mail flow.

Import the resources from here in any Pulumi Python program; ``__main__.py`` at the project root declares one
resource per object of ``stacks/<pulumi stack>.yaml`` (see :mod:`o365_mailflow.providers.program`). Importing
this package loads the Pulumi SDK, so nothing below ``providers`` imports it (see docs/architecture.md).
"""

from __future__ import annotations

from .base import AcceptedDomainProvider, InboundConnectorProvider, MailflowProvider, OutboundConnectorProvider
from .config import CONFIG_KEYS, CONFIG_NAMESPACE, SECRET_KEYS
from .resources import (
    AcceptedDomain,
    AcceptedDomainArgs,
    InboundConnector,
    InboundConnectorArgs,
    OutboundConnector,
    OutboundConnectorArgs,
)

__all__ = [
    "AcceptedDomain",
    "AcceptedDomainArgs",
    "AcceptedDomainProvider",
    "CONFIG_KEYS",
    "CONFIG_NAMESPACE",
    "InboundConnector",
    "InboundConnectorArgs",
    "InboundConnectorProvider",
    "MailflowProvider",
    "OutboundConnector",
    "OutboundConnectorArgs",
    "OutboundConnectorProvider",
    "SECRET_KEYS",
]
