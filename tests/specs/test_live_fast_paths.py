"""The live side reads canonical domains, address spaces and IPv4 addresses/CIDRs with a regex and int() instead
of the full parse (Get-* returns them in that form, thousands per snapshot). Each fast path must give what the
full parse gives, for every value: compared here over generated values and the edge cases of each form (case,
white space, trailing dots, wildcards, label and name lengths, leading zeros, out-of-range octets and prefixes,
netmasks, IPv6, IPv4-mapped IPv6, scoped addresses, non-ASCII digits, address-space costs, non-strings)."""

from __future__ import annotations

import random
from typing import Any

from o365_mailflow.specs.kinds import Domain, ListOf, SenderDomain, SenderIp, SkipIp, SmartHost, _ip_sort_key, \
    _ip_sort_key_parsed

EDGE_HOSTS = [
    "contoso.com", "Contoso.com", "contoso.com.", " contoso.com", "contoso.com ", "contoso.com\n", "a.b", "a.1",
    "1.2.3.4", "1.2.3.400", "a-.com", "-a.com", "a--b.com", "xn--bcher-kva.example", "a" * 63 + ".com",
    "a" * 64 + ".com", ".".join(["a" * 61] * 4) + ".co", ".".join(["a" * 61] * 4) + ".com", "*.contoso.com", "*",
    "a.*.com", "user@contoso.com", "contoso", "", "  ", "bücher.example", "contoso..com", "contoso.c_m",
    "contoso.com/24", "mail.contoso.com:25", "٣.com", "a.٣",
    ".".join(["a" * 63] * 3) + "." + "b" * 61, ".".join(["a" * 63] * 3) + "." + "b" * 62,  # 253 and 254 characters
    ".".join(["a" * 63] * 3) + "." + "b" * 61 + ".",
]
EDGE_IPS = [
    "203.0.113.7", "203.0.113.7/24", "203.0.113.7/32", "203.0.113.7/0", "0.0.0.0", "255.255.255.255",
    "255.255.255.255/31", "256.1.1.1", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1.2.3.04", "1.2.3.4/024", "1.2.3.4/33",
    "1.2.3.4/", "1.2.3.4/255.255.255.0", "1.2.3.4/0.0.0.255", " 1.2.3.4", "1.2.3.4 ", "1.2.3.4\n", "::1",
    "::ffff:1.2.3.4", "fe80::1%eth0", "1.2.3.4%eth0", "1.2.3.4-1.2.3.9", "١.٢.٣.٤", "1.2.3.٤", "1.2.3.4/٣٢",
    "+1.2.3.4", "1.2.3.4/+8", "1.2.3.4/ 8",
]
NON_STRINGS: list[Any] = [None, 0, 1, True, False, 3.5, ["contoso.com"], {"a": 1}]


def _random_host(rng: random.Random) -> str:
    alphabet = "abcxyz0189-_.AZ *@é"
    labels = ["".join(rng.choice(alphabet[:10] if rng.random() < 0.8 else alphabet) for _ in range(rng.choice(
        (1, 2, 5, 61, 62, 63, 64)))) for _ in range(rng.randint(1, 5))]
    text = ".".join(labels)
    if rng.random() < 0.1:
        text += "."
    if rng.random() < 0.1:
        text = text.upper()
    return text


def _random_ip(rng: random.Random) -> str:
    octets = [str(rng.choice((0, 1, 9, 10, 99, 100, 199, 200, 249, 250, 255, 256, 299, rng.randint(0, 255))))
              for _ in range(4)]
    if rng.random() < 0.1:
        octets[rng.randrange(4)] = "0" + octets[0]
    text = ".".join(octets)
    if rng.random() < 0.6:
        prefix = str(rng.choice((0, 1, 8, 9, 10, 19, 20, 24, 28, 29, 30, 31, 32, 33, 40, rng.randint(0, 32))))
        text += "/" + ("0" + prefix if rng.random() < 0.05 else prefix)
    return text


def _values(rng: random.Random) -> list[Any]:
    hosts = EDGE_HOSTS + [_random_host(rng) for _ in range(3000)]
    ips = EDGE_IPS + [_random_ip(rng) for _ in range(3000)]
    spaces = [f"{prefix}{h}{cost}" for h in hosts[:200] + EDGE_HOSTS for prefix in ("smtp:", "SMTP:", " smtp:")
              for cost in ("", ";1", ";10", ";", ";x", ";1 ")]
    return hosts + ips + spaces + NON_STRINGS


def test_each_fast_path_gives_what_the_full_parse_gives() -> None:
    values = _values(random.Random(16))
    kinds = [Domain(), Domain(nullable=True), Domain(wildcard=True, star=True), SmartHost(), SenderIp()]
    for kind in kinds:
        for value in values:
            assert kind.live(value) == kind._live_parsed(value), (type(kind).__name__, value)
    sender = SenderDomain()
    for value in values:
        assert sender.live(value) == Domain._live_parsed(sender, value), value


def test_the_fast_paths_take_the_canonical_forms() -> None:
    # The forms Get-* returns must not fall through to the full parse (else the fast paths would cost, not save).
    from o365_mailflow.specs import kinds

    assert kinds._NORMAL_DOMAIN.fullmatch("partner1.example.com")
    assert kinds._CANONICAL_ADDRESS_SPACE.fullmatch("smtp:partner1.example.com;1")
    assert kinds._canonical_v4("198.0.4.7/28") == "198.0.4.0/28"
    assert kinds._canonical_v4("203.0.113.7") == "203.0.113.7"


def test_ip_sort_keys_and_one_item_lists_agree_with_the_full_path() -> None:
    values = _values(random.Random(17))
    for value in values:
        assert _ip_sort_key(value) == _ip_sort_key_parsed(value), value
    for item in (SenderIp(), SmartHost(), SkipIp(), SenderDomain(), Domain()):
        kind = ListOf(item)
        for value in values:
            if isinstance(value, str):
                # The full path: every item normalised, then sorted and merged as a set.
                assert kind.live([value]) == kind._canonical([item.live(value)]), value
