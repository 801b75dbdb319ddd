"""Regular expressions for the editor schema (``docs/stack.schema.json``), generated rather than written by hand.

Why this module exists: the JSON Schema must refuse what ``mailflow validate`` refuses, and several of the value
rules (public IPv4 only, CIDR prefix bounds, any letter case for enumerations) are sets that a hand-written regex
would get subtly wrong and that would drift from the Python rule. So each pattern is built from the same data the
validator uses (the reserved IPv4 networks, the enumeration values) by the small generators below.

The output is meant to be portable across JSON Schema validators: ECMA-262 syntax that Python's ``re`` reads the
same way, with no inline flags (``(?i)`` is not ECMA-262), no look-behind, no ``\\d`` (Python's matches every
Unicode digit) and no escapes that ECMA-262's unicode mode refuses.
"""

from __future__ import annotations

import ipaddress
from typing import Iterable, Sequence

__all__ = [
    "any_case",
    "literal",
    "padded",
    "number_range",
    "IPV4",
    "IPV6",
    "ipv4_prefix",
    "ipv4_overlapping",
]

_SPECIAL = set("\\^$.|?*+()[]{}/")


def literal(text: str) -> str:
    """``text`` matched exactly (only the characters that are special in a pattern are escaped)."""
    return "".join("\\" + ch if ch in _SPECIAL else ch for ch in text)


def any_case(text: str) -> str:
    """``text`` in any letter case, spelled with character classes (``[Tt][Rr][Uu][Ee]``): JSON Schema patterns
    have no portable case-insensitive flag."""
    return "".join(f"[{ch.upper()}{ch.lower()}]" if ch.upper() != ch.lower() else literal(ch) for ch in text)


def padded(core: str) -> str:
    """A whole-value pattern that, like the validator (which strips every value first), allows white space around."""
    return rf"^\s*(?:{core})\s*$"


def _group(regex: str) -> str:
    return f"(?:{regex})" if "|" in regex else regex


def _digit_class(low: str, high: str) -> str:
    return low if low == high else f"[{low}-{high}]"


def _same_length(low: str, high: str) -> str:
    """The decimal numbers from ``low`` to ``high``, both written with the same number of digits."""
    if low == high:
        return low
    if len(low) == 1:
        return _digit_class(low, high)
    if low[0] == high[0]:
        return low[0] + _group(_same_length(low[1:], high[1:]))
    rest = len(low) - 1
    parts: list[str] = []
    first_full, last_full = int(low[0]), int(high[0])
    if low[1:] != "0" * rest:
        parts.append(low[0] + _group(_same_length(low[1:], "9" * rest)))
        first_full += 1
    tail = None
    if high[1:] != "9" * rest:
        tail = high[0] + _group(_same_length("0" * rest, high[1:]))
        last_full -= 1
    if first_full <= last_full:
        parts.append(_digit_class(str(first_full), str(last_full)) + ("[0-9]" if rest == 1 else f"[0-9]{{{rest}}}"))
    if tail:
        parts.append(tail)
    return "|".join(parts)


def number_range(low: int, high: int) -> str:
    """The decimal numbers from ``low`` to ``high`` (inclusive), written without leading zeros."""
    parts: list[str] = []
    for digits in range(1, len(str(high)) + 1):
        first = max(low, 0 if digits == 1 else 10 ** (digits - 1))
        last = min(high, 10**digits - 1)
        if first <= last:
            parts.append(_same_length(str(first), str(last)))
    return "|".join(parts)


_OCTET = f"(?:{number_range(0, 255)})"
IPV4 = rf"{_OCTET}(?:\.{_OCTET}){{3}}"

_HEX = "[0-9A-Fa-f]{1,4}"


def _ipv6() -> str:
    """Every spelling Python's ``ipaddress`` reads as IPv6: eight groups, ``::`` standing for one or more groups,
    and a dotted IPv4 address in place of the last two groups."""
    forms = [f"(?:{_HEX}:){{7}}{_HEX}", f"(?:{_HEX}:){{6}}{IPV4}"]
    for left in range(8):  # groups before the ::, which stands for at least one group
        head = "" if left == 0 else f"(?:{_HEX}:){{{left - 1}}}{_HEX}" if left > 1 else _HEX
        room = 7 - left  # groups the right side may still have
        right = "" if room == 0 else f"(?:{_HEX}(?::{_HEX}){{0,{room - 1}}})?" if room > 1 else f"(?:{_HEX})?"
        forms.append(f"{head}::{right}")
        if left <= 5:
            mixed_room = 5 - left
            middle = "" if mixed_room == 0 else f"(?:{_HEX}:){{0,{mixed_room}}}"
            forms.append(f"{head}::{middle}{IPV4}")
    return "(?:" + "|".join(forms) + ")"


IPV6 = _ipv6()


def ipv4_prefix(low: int, high: int) -> str:
    """A CIDR prefix length from ``low`` to ``high`` after the slash (Python accepts leading zeros: ``/024``)."""
    return f"0*(?:{number_range(low, high)})"


def _octets(low: int, high: int) -> str:
    return "[0-9]+" if (low, high) == (0, 255) else _group(number_range(low, high))


def _interval(low: int, high: int, octets: int = 4) -> str:
    """Dotted-decimal text of the addresses from ``low`` to ``high`` (integers), over the last ``octets`` octets.

    Meant for a look-ahead in front of :data:`IPV4`, which checks the syntax: an octet that may take any value is
    therefore written ``[0-9]+``, which keeps the generated patterns short.
    """
    if octets == 1:
        return _octets(low, high)
    size = 256 ** (octets - 1)
    first, last = divmod(low, size), divmod(high, size)
    anything = r"\.".join(["[0-9]+"] * (octets - 1))
    if first[0] == last[0]:
        return f"{first[0]}\\.{_interval(first[1], last[1], octets - 1)}"
    parts: list[str] = []
    full_first, full_last = first[0], last[0]
    if first[1] != 0:
        parts.append(f"{first[0]}\\.{_interval(first[1], size - 1, octets - 1)}")
        full_first += 1
    tail = None
    if last[1] != size - 1:
        tail = f"{last[0]}\\.{_interval(0, last[1], octets - 1)}"
        full_last -= 1
    if full_first <= full_last:
        parts.append(f"{_octets(full_first, full_last)}\\.{anything}")
    if tail:
        parts.append(tail)
    return "(?:" + "|".join(parts) + ")"


def _merged(intervals: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for low, high in sorted(intervals):
        if out and low <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], high))
        else:
            out.append((low, high))
    return out


def ipv4_overlapping(networks: Sequence[ipaddress.IPv4Network], prefixes: range) -> str:
    """Text ``a.b.c.d`` or ``a.b.c.d/p`` (``p`` in ``prefixes``; no prefix means /32) whose network overlaps one of
    ``networks``, as Python's ``IPv4Network(text, strict=False).overlaps(...)`` decides it. Anchored at the end.

    Two networks overlap when one holds the other, i.e. when their first ``min(p, q)`` bits agree. So for each
    prefix length ``p`` the refused addresses are the union of the networks cut to ``min(p, q)`` bits, and prefix
    lengths with the same union share one alternative.
    """
    by_addresses: dict[tuple[tuple[int, int], ...], list[int]] = {}
    for prefix in prefixes:
        blocks = []
        for net in networks:
            bits = min(prefix, net.prefixlen)
            start = int(net.network_address) >> (32 - bits) << (32 - bits)
            blocks.append((start, start + 2 ** (32 - bits) - 1))
        by_addresses.setdefault(tuple(_merged(blocks)), []).append(prefix)
    alternatives = []
    for merged, lengths in by_addresses.items():
        addresses = "|".join(_interval(low, high) for low, high in merged)
        lengths_text = "|".join(number_range(a, b) for a, b in _merged((n, n) for n in lengths))
        slash = rf"/0*(?:{lengths_text})"
        if 32 in lengths:
            slash = f"(?:{slash})?"
        alternatives.append(f"(?:{addresses}){slash}")
    return "(?:" + "|".join(alternatives) + r")\s*$"
