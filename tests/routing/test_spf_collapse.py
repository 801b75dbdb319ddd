"""The SPF record's int-based network merge equals ipaddress.collapse_addresses (the slow path it replaces)."""

import ipaddress
import random

import pytest

from o365_mailflow.routing import collapse_v4


def _random_net(rng: random.Random) -> ipaddress.IPv4Network:
    prefix = rng.choice([0, 1, 8, 16, 23, 24, 25, 28, 30, 31, 32, 32, 32])
    # Few distinct high bits so that nets nest, repeat and touch each other often.
    base = rng.choice([0, 0xFFFFFFFF, 0xC0A80000, 0xCB007100]) + rng.randrange(0, 1 << 10)
    return ipaddress.IPv4Network((base & 0xFFFFFFFF, prefix), strict=False)


@pytest.mark.parametrize("seed", range(300))
def test_collapse_v4_equals_collapse_addresses(seed: int) -> None:
    rng = random.Random(seed)
    nets = [_random_net(rng) for _ in range(rng.randrange(0, 60))]
    assert collapse_v4(nets) == list(ipaddress.collapse_addresses(nets))


@pytest.mark.parametrize(
    "texts",
    [
        [],
        ["0.0.0.0/0"],
        ["0.0.0.0/32", "255.255.255.255/32"],
        ["0.0.0.0/1", "128.0.0.0/1"],  # neighbours making the whole space
        ["203.0.113.10/32", "203.0.113.11/32"],  # neighbours -> /31
        ["203.0.113.9/32", "203.0.113.10/32"],  # neighbours not aligned: stay two
        ["10.0.0.0/8", "10.1.2.3/32", "10.0.0.0/8"],  # nested and duplicated
        ["10.0.0.1/32", "10.0.0.2/31", "10.0.0.4/30", "10.0.0.8/29"],  # a span cut into several blocks
        ["255.255.255.254/31", "255.255.255.255/32"],
    ],
)
def test_collapse_v4_edges(texts: list[str]) -> None:
    nets = [ipaddress.IPv4Network(t) for t in texts]
    assert collapse_v4(nets) == list(ipaddress.collapse_addresses(nets))
