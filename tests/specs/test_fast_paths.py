"""Fast paths of desired-value validation give exactly what the full checks give.

Matrix: sender IPs, smart hosts, domains (plain, wildcard, star, nullable, sender domains), email addresses, the
IP sort key and one-item lists, each over generated values including the edges of the fast paths (octets and
prefixes at their limits, leading zeros, the bounds of every reserved range, labels of 63 characters, names of
253, trailing dots, upper case, white space, a trailing line break): the result and every problem (message,
allowed, subpath) are compared with the fast paths switched off.
"""

from __future__ import annotations

import random
import re
from typing import Any, Callable

import pytest

from o365_mailflow.specs import Domain, Email, ListOf, SenderDomain, SenderIp, SkipIp, SmartHost, kinds

_NEVER = re.compile(r"(?!)")  # matches nothing: every value takes the full path


def _ints_to_v4(number: int) -> str:
    return ".".join(str(number >> shift & 255) for shift in (24, 16, 8, 0))


def _ip_values() -> list[Any]:
    rng = random.Random(16)
    octets = ["0", "1", "9", "10", "99", "100", "199", "200", "249", "250", "255", "256", "300", "01", "00", "010",
              "1000", "", "a", "٣"]
    prefixes = ["", "/0", "/1", "/8", "/16", "/23", "/24", "/25", "/31", "/32", "/33", "/024", "/-1", "/", "/ 24",
                "/4a"]
    values: list[Any] = [None, 5, 1.5, True, [], "", " ", "1.2.3", "1.2.3.4.5", "::1", "2001:db8::/32", "1.2.3.4:25",
                         "1.2.3.4-1.2.3.9", "[1.2.3.4]", "1..2.3", "1.2.3.4\n", "\t8.8.8.8 ", "8.8.8.8/32",
                         "mail.contoso.com", "8.8.8.8/255.255.255.0"]
    for net, _ in kinds._RESERVED_V4:  # every reserved range's bounds, and the addresses next to them
        start, end = int(net.network_address), int(net.broadcast_address)
        for number in (start - 1, start, end, end + 1):
            if 0 <= number < 2 ** 32:
                values += [_ints_to_v4(number) + p for p in ("", "/24", "/28", "/32", "/8", "/0")]
    for _ in range(3000):
        quad = ".".join(rng.choice(octets) if rng.random() < 0.3 else str(rng.randrange(256)) for _ in range(4))
        values.append(rng.choice(["", "", " "]) + quad + rng.choice(prefixes) + rng.choice(["", "", " ", "\n"]))
    return values


def _domain_values() -> list[Any]:
    rng = random.Random(17)
    alphabet = "abcxyz0189-" * 4 + "ABZ_.* @:é\n\t;"
    longest = ".".join(["a" * 63] * 3) + "." + "b" * 61  # 253 characters
    values: list[Any] = [None, 5, True, "", "*", "*.", "*.*", "*.contoso.com", "*.Contoso.com", "a.*.com", "contoso",
                         "contoso.com.", "contoso.com..", ".contoso.com", "a..com", "-a.com", "a-.com", "a.b-",
                         "1.2.3.4", "a.123", "123.com", "a.1b", "xn--bcher-kva.example", "smtp:contoso.com;1",
                         "SMTP:*;1", "smtp:*.a.com", "user@contoso.com", "a.com\n", " a.com", "a.com ", "A.COM",
                         "a" * 63 + ".com", "a" * 64 + ".com", longest, longest + "b", longest + ".", "*." + longest,
                         ".".join(["a" * 63] * 4)]
    for _ in range(4000):
        labels = [
            "".join(rng.choice(alphabet) for _ in range(rng.choice([1, 2, 3, 8, 62, 63, 64])))
            if rng.random() < 0.4 else rng.choice(["contoso", "mail", "a", "b-c", "x1", "0", "99", "co"])
            for _ in range(rng.choice([1, 2, 2, 3, 5]))
        ]
        values.append(rng.choice(["", "", "", "*.", "*", " "]) + ".".join(labels) + rng.choice(["", "", "", ".", " "]))
    return values


def _compare(monkeypatch: pytest.MonkeyPatch, check: Callable[[Any], Any], values: list[Any]) -> None:
    fast = [check(v) for v in values]
    with monkeypatch.context() as slow_only:
        slow_only.setattr(kinds, "_PLAIN_V4", _NEVER)
        slow_only.setattr(kinds, "_NORMAL_DOMAIN", _NEVER)
        slow = [check(v) for v in values]
    assert fast == slow
    assert sum(1 for problems in fast if isinstance(problems, tuple) and not problems[1]) > 10  # some valid ones


def _validate(kind: Any) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        normalised, problems = kind.validate(value)
        return normalised, [(p.message, p.allowed, p.subpath) for p in problems]
    return check


@pytest.mark.parametrize("kind", [SenderIp(), SmartHost(), ListOf(SenderIp())], ids=["sender-ip", "smart-host", "list"])
def test_ip_fast_paths_match_the_full_parse(monkeypatch: pytest.MonkeyPatch, kind: Any) -> None:
    values = _ip_values()
    if isinstance(kind, ListOf):
        values = [values[i:i + n] for n in (1, 2, 3) for i in range(0, len(values) - n, 7)]
    _compare(monkeypatch, _validate(kind), values)


def test_ip_sort_key_fast_path_matches_ipaddress(monkeypatch: pytest.MonkeyPatch) -> None:
    values = [v for v in _ip_values() if isinstance(v, str)] + ["1.2.3.4-1.2.3.9", "::1", "2001:db8::/32"]
    fast = [kinds._ip_sort_key(v) for v in values]
    with monkeypatch.context() as slow_only:
        slow_only.setattr(kinds, "_PLAIN_V4", _NEVER)
        assert fast == [kinds._ip_sort_key(v) for v in values]
    assert sorted(values, key=SkipIp().sort_key)  # still a total order


@pytest.mark.parametrize("kind", [Domain(), Domain(wildcard=True), Domain(star=True), Domain(nullable=True),
                                  SenderDomain(), SmartHost(), Email(), ListOf(SenderDomain())],
                         ids=["domain", "wildcard", "star", "nullable", "sender-domain", "smart-host", "email", "list"])
def test_domain_fast_paths_match_the_full_checks(monkeypatch: pytest.MonkeyPatch, kind: Any) -> None:
    values = _domain_values()
    if isinstance(kind, Email):
        values = [f"user.{i}@{v}" if isinstance(v, str) else v for i, v in enumerate(values)]
    if isinstance(kind, ListOf):
        values = [values[i:i + n] for n in (1, 2) for i in range(0, len(values) - n, 5)]
    _compare(monkeypatch, _validate(kind), values)


def test_one_item_lists_are_what_sorting_gives() -> None:
    for kind in (ListOf(SenderIp()), ListOf(SenderDomain()), ListOf(SmartHost(), as_set=False)):
        for value in (["203.0.113.7/24"], ["Contoso.com."], ["mail.contoso.com"], [], None):
            normalised, problems = kind.validate(value)
            if problems:
                continue
            assert normalised == kind._canonical(list(normalised))


def test_stack_loader_resolves_tags_as_pyyaml_does() -> None:
    """The stack loaders' resolve (first-character table joined once) against pyyaml's own, over scalars that
    start with every character a resolver is registered for, and every kind of node and implicit flag."""
    import yaml
    from yaml.nodes import MappingNode, ScalarNode, SequenceNode

    from o365_mailflow import stack

    words = ["", "~", "null", "Null", "NULL", "nul", "true", "True", "TRUE", "tRue", "false", "False", "yes", "no",
             "on", "off", "y", "n", "1", "-1", "+1", "0x1F", "0o17", "0b1", "1_000", "1:20", "1.5", "-.5", ".inf",
             "-.INF", ".NaN", ".", "1e3", "<<", "<", "=", "==", "!", "&a", "*a", "2001-12-14", "2001-12-14t21:59:43.10",
             "abc", "name", "Inbound 00001", "198.0.0.0/28", "*", "-", "- a", "tenant", "\n", " ", "é", "0", "00"]
    for loader_class in (stack._Loader, stack._PyLoader):
        loader = loader_class("")
        try:
            for word in words:
                for implicit in ((True, False), (False, True), (False, False), (True, True)):
                    for kind in (ScalarNode, SequenceNode, MappingNode):
                        value = word if kind is ScalarNode else None
                        assert loader.resolve(kind, value, implicit) == yaml.resolver.BaseResolver.resolve(
                            loader, kind, value, implicit), (word, implicit, kind)
        finally:
            loader.dispose()
