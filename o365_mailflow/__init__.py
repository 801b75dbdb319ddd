"""o365-mailflow: Exchange Online connectors and accepted domains as code.

The package is layered: ``specs`` (one table per resource type) -> ``client`` (the admin API) ->
``plan`` (diff desired against live) -> ``cli`` and ``providers`` (the two front doors). The
``emulator`` subpackage is a stand-alone Exchange Online tenant and imports nothing from the rest.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
