"""Fixtures of the provider tests: an engine driver bound to a fresh emulated tenant, and an offline host."""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from .host import Host, Pulumi, provider_config


@pytest.fixture
def pulumi(emulator_tenant: Any) -> Iterator[Pulumi]:
    driver = Pulumi(provider_config(emulator_tenant))
    try:
        yield driver
    finally:
        driver.close()


@pytest.fixture(scope="module")
def offline_host() -> Iterator[Host]:
    """A host configured for the emulated tenant that Check never contacts (Check is offline)."""
    host = Host()
    host.configure({"emulator": "true"})
    yield host
    host.close()
