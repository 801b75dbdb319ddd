"""Value kinds: how one field's value is validated and normalised, desired (stack file, Pulumi inputs) and live (Get-*).

Also the small vocabulary every other part of the specs package uses: :data:`UNSET` (no service default),
:class:`Mode` (when a field can be sent), the meta keys of a desired object, and the "did you mean" helpers that
messages share. Facts tagged [X], [I], [D] come from /work/shared/reference/exo-cmdlets.md (see the package doc).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Iterable, Mapping, Sequence

from .. import patterns as rx

__all__ = [
    "UNSET", "META_KEYS", "RENAMED_FROM", "Mode", "Problem", "KindError", "Kind", "Bool", "Text", "Choice", "Domain",
    "SenderDomain", "SenderIp", "SkipIp", "SmartHost", "Email", "Timestamp", "ListOf", "reserved_reason", "suggest",
    "did_you_mean",
]


class _Unset:
    """The "no service default" marker (e.g. ``senderDomains``, which New-InboundConnector requires)."""

    _instance: _Unset | None = None

    def __new__(cls) -> _Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:  # pickles (Pulumi state) keep the singleton
        return "UNSET"


UNSET: Any = _Unset()

# Keys accepted on every desired object that are not service fields. They are booleans and are also arguments of
# the Pulumi resources (providers/resources.py builds the Args classes from this tuple).
META_KEYS = ("adopt",)

# The meta key of a renamed connector in a stack file: its previous name. ``plan`` then updates the old object
# (one Set-*Connector with Name, same Guid) instead of creating the new name, and the Pulumi program turns it into
# an alias. It is kept out of META_KEYS on purpose: it is not a boolean and never reaches a resource or Exchange.
RENAMED_FROM = "renamedFrom"


class Mode(Enum):
    """When a field can be sent to Exchange."""

    CREATE_AND_SET = "create-and-set"  # New-* and Set-*
    CREATE_ONLY = "create-only"  # New-* only: changing it means replacing the object
    SET_ONLY = "set-only"  # Set-* only: a create sends it in a follow-up Set-* (see split_create)
    READ_ONLY = "read-only"  # never sent (e.g. an accepted domain's DomainName, its identity)


# ---------------------------------------------------------------------------------------------------------------------
# Value kinds
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a value; ``subpath`` is relative to the field (list index for list items)."""

    message: str
    allowed: str | None = None
    subpath: tuple[str | int, ...] = ()


class KindError(ValueError):
    def __init__(self, message: str, allowed: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.allowed = allowed


def _show(value: Any) -> str:
    """A value as it would be written in YAML, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value) if value == "" or value != value.strip() else value
    return repr(value)


class Kind:
    """A value kind: validates and normalises a desired value, normalises a live (Get-*) value.

    Subclasses implement :meth:`parse` (desired value -> normalised, raising :class:`KindError`) and may
    override :meth:`live` (Get-* value -> normalised; never raises) and :meth:`to_param`.
    """

    json_type: str = "string"
    allowed: str = ""

    def parse(self, value: Any) -> Any:
        raise NotImplementedError

    def validate(self, value: Any) -> tuple[Any, list[Problem]]:
        """Normalise a desired value; on failure return ``(None, problems)``."""
        try:
            return self.parse(value), []
        except KindError as exc:
            return None, [Problem(exc.message, exc.allowed if exc.allowed is not None else self.allowed)]

    def live(self, value: Any) -> Any:
        """Normalise a value as Get-* returns it. Best effort: live data is never refused."""
        try:
            return self.parse(value)
        except KindError:
            return value.strip() if isinstance(value, str) else value

    def to_param(self, value: Any) -> Any:
        """A normalised value as the cmdlet parameter takes it."""
        return value

    def sort_key(self, value: Any) -> Any:
        return str(value)

    def describe(self) -> str:
        return self.allowed

    def json_schema(self) -> dict[str, Any]:
        """JSON Schema of every raw value that :meth:`parse` accepts (as far as JSON Schema can say it)."""
        return {"type": self.json_type, "description": self.describe()}

    def matching(self, value: Any) -> dict[str, Any]:
        """JSON Schema of the raw values that :meth:`parse` turns into ``value`` (used by cross-field rules)."""
        raise NotImplementedError(f"{type(self).__name__} cannot say which raw values mean {value!r}")

    def truthy(self) -> dict[str, Any]:
        """JSON Schema of the valid raw values whose normalised form is truthy (used by cross-field rules)."""
        raise NotImplementedError(f"{type(self).__name__} cannot say which raw values are set")


class Bool(Kind):
    """``true``/``false`` only. The stack loader reads YAML 1.2 booleans, so ``yes``/``on`` stay strings and
    land here as errors instead of silently becoming booleans; ``1``/``0`` are refused as ambiguous too."""

    json_type = "boolean"
    allowed = "true, false"

    def parse(self, value: Any) -> Any:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            # Pulumi config and environment values arrive as strings; these two spellings are unambiguous.
            return value.strip().lower() == "true"
        if isinstance(value, str) and value.strip().lower() in ("yes", "no", "y", "n", "on", "off"):
            raise KindError(f"{_show(value)} is ambiguous (YAML 1.1 reads it as a boolean, YAML 1.2 as text); write true or false")
        if isinstance(value, (int, float)):
            raise KindError(f"{_show(value)} is a number, not a boolean; write true or false")
        raise KindError(f"expected true or false, got {_show(value)}")

    def validate(self, value: Any) -> tuple[Any, list[Problem]]:
        if value.__class__ is bool:  # what parse() returns unchanged, without its try block
            return value, []
        return super().validate(value)

    def live(self, value: Any) -> Any:
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):  # bool("False") would be True
            return value.strip().lower() == "true"
        return bool(value)

    def json_schema(self) -> dict[str, Any]:
        # The text forms are accepted on purpose: the admin API itself takes "true"/"false" for boolean parameters
        # (exo-admin-api.md §2.1, §5 step 4) and Pulumi config arrives as text, so the editor must not flag what
        # the service and `mailflow validate` both take.
        words = "|".join(rx.any_case(w) for w in ("true", "false"))
        return {"type": ["boolean", "string"], "pattern": rx.padded(words), "description": self.describe()}

    def matching(self, value: Any) -> dict[str, Any]:
        word = "true" if value else "false"
        return {"anyOf": [{"const": bool(value)}, {"type": "string", "pattern": rx.padded(rx.any_case(word))}]}

    def truthy(self) -> dict[str, Any]:
        return self.matching(True)


# One regex search instead of a Python step per character (every text and domain value of a stack passes here).
# _CONTROL: code points below 32 other than tab, line feed and carriage return. _SPACE: what str.isspace() calls
# white space (re's Unicode \s uses the same test, non-ASCII spaces included).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_SPACE = re.compile(r"\s")


class Text(Kind):
    """A single-line (or free) string with a length limit. ``null`` means the empty string (Get-* shows "")."""

    def __init__(self, max_length: int, *, min_length: int = 0, single_line: bool = True, what: str = "text") -> None:
        self.max_length = max_length
        self.min_length = min_length
        self.single_line = single_line
        self.what = what
        self.allowed = f"{what} of {min_length} to {max_length} characters" + (", one line" if single_line else "")

    def parse(self, value: Any) -> Any:
        if value is None and self.min_length == 0:
            return ""
        if not isinstance(value, str):
            raise KindError(f"expected {self.what}, got {_show(value)}")
        text = value.strip()
        if self.single_line and ("\n" in text or "\r" in text):
            raise KindError("must be one line")
        if _CONTROL.search(text):
            raise KindError("contains control characters")
        if len(text) < self.min_length:
            raise KindError("must not be empty")
        if len(text) > self.max_length:
            raise KindError(f"is {len(text)} characters long, more than the {self.max_length} Exchange accepts")
        return text

    def json_schema(self) -> dict[str, Any]:
        # null is accepted (and means "") exactly when an empty string is: keep the schema and the loader in step.
        kind: Any = ["string", "null"] if self.min_length == 0 else "string"
        return {"type": kind, "pattern": self._pattern(), "description": self.describe()}

    def _pattern(self) -> str:
        """The length and character rules of :meth:`parse`, which apply to the text with white space stripped:
        so no maxLength (it would count the white space) but a first and last visible character around at most
        ``max_length - 2`` others, none of them a control character (nor a line break, for one line)."""
        if self.min_length > 1:  # pragma: no cover - no field needs it; the pattern below counts up to one
            raise NotImplementedError("a minimum length above 1")
        edge = r"[^\s\x00-\x1f]"
        inner = r"[^\x00-\x08\x0a-\x1f]" if self.single_line else r"[^\x00-\x08\x0b\x0c\x0e-\x1f]"
        body = f"{edge}(?:{inner}{{0,{self.max_length - 2}}}{edge})?"
        return rf"^\s*(?:{body}){'' if self.min_length else '?'}\s*$"

    def truthy(self) -> dict[str, Any]:
        return {"type": "string", "pattern": r"\S"}


class Choice(Kind):
    """An enum: case-insensitive input, canonical output. ``refused`` gives a reason for known-bad values;
    ``live_aliases`` maps what Get-* may return (e.g. ``AdminUI``) to a canonical value."""

    def __init__(
        self,
        values: Sequence[str],
        *,
        nullable: bool = False,
        refused: Mapping[str, str] | None = None,
        live_aliases: Mapping[str, str | None] | None = None,
    ) -> None:
        self.values = tuple(values)
        self.nullable = nullable
        self.refused = {k.lower(): v for k, v in (refused or {}).items()}
        self.live_aliases = {k.lower(): v for k, v in (live_aliases or {}).items()}
        self._by_lower = {v.lower(): v for v in self.values}
        self.allowed = ", ".join(self.values) + (", null" if nullable else "")
        # Values already in canonical form, for which parse() and live() return the value itself: most values
        # (Get-* always, stack files mostly) are written this way, so they skip the strip/lower/lookups.
        canonical = {v for v in self.values if v and v == v.strip() and self._by_lower[v.lower()] == v}
        self._desired_same = frozenset(v for v in canonical if v.lower() not in self.refused)
        self._live_same = frozenset(v for v in canonical if v.lower() not in self.live_aliases)

    def validate(self, value: Any) -> tuple[Any, list[Problem]]:
        if value.__class__ is str and value in self._desired_same:
            return value, []
        return super().validate(value)

    def parse(self, value: Any) -> Any:
        if value is None:
            if self.nullable:
                return None
            raise KindError("must not be null")
        if not isinstance(value, str):
            raise KindError(f"expected one of the allowed names, got {_show(value)}")
        key = value.strip().lower()
        if key in self.refused:
            raise KindError(f"{value.strip()} is not accepted: {self.refused[key]}")
        if key in self._by_lower:
            return self._by_lower[key]
        raise KindError(f"unknown value {_show(value)}{did_you_mean(value.strip(), self.values)}")

    def live(self, value: Any) -> Any:
        if value.__class__ is str and value in self._live_same:
            return value
        if value is None or (isinstance(value, str) and value.strip() == ""):
            if "" in self.live_aliases:
                return self.live_aliases[""]
            return None
        key = str(value).strip().lower()
        if key in self.live_aliases:
            return self.live_aliases[key]
        return self._by_lower.get(key, str(value))

    def json_schema(self) -> dict[str, Any]:
        # The enum lists the canonical spellings for completion; the pattern accepts the other letter cases that
        # parse() accepts, as PowerShell's enum conversion does (JSON Schema enums compare case-sensitively).
        values: list[Any] = list(self.values) + ([None] if self.nullable else [])
        any_case = rx.padded("|".join(rx.any_case(v) for v in self.values))
        return {"anyOf": [{"enum": values}, {"type": "string", "pattern": any_case}],
                "description": f"one of {self.allowed} (any case)"}

    def matching(self, value: Any) -> dict[str, Any]:
        if value is None:
            return {"type": "null"}
        return {"type": "string", "pattern": rx.padded(rx.any_case(self.parse(value)))}


_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
# A domain exactly as _check_domain returns it (lower case, no trailing dot, at most 253 characters, two labels or
# more that _LABEL takes, the last one not all digits): most domains of a stack are written so, and Get-* returns
# them so; one match tells.
_CANONICAL_LABEL = "[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"


def _canonical_domain(end: str) -> str:
    """That form as a pattern; ``end`` is what follows the domain (the look-aheads need it)."""
    return rf"(?=[a-z0-9.-]{{1,253}}{end})(?:{_CANONICAL_LABEL}\.)+(?![0-9]+{end}){_CANONICAL_LABEL}"


_NORMAL_DOMAIN = re.compile(_canonical_domain(r"\Z"))


def _check_domain(text: str) -> str:
    """Lower-case an SMTP domain (no wildcard) or raise KindError saying why it is not one."""
    if _NORMAL_DOMAIN.fullmatch(text) is not None:  # already normal: the checks below would return it unchanged
        return text
    name = text.strip().lower()
    if name.endswith("."):
        name = name[:-1]
    if not name:
        raise KindError("is empty")
    if _SPACE.search(name):
        raise KindError(f"{_show(text)} contains white space")
    if not name.isascii():
        raise KindError(f"{text} has non-ASCII characters; write the punycode form (xn--...)")
    if "@" in name:
        raise KindError(f"{text} is an email address, not a domain")
    if "*" in name:
        raise KindError(f"{text} has a wildcard where none is allowed")
    if len(name) > 253:
        raise KindError("is longer than 253 characters")
    labels = name.split(".")
    if len(labels) < 2:
        raise KindError(f"{text} is not a fully qualified domain name (it needs a dot)")
    for label in labels:
        if not _LABEL.match(label):
            raise KindError(f"{text} has an invalid label {label!r} (letters, digits and inner hyphens, 1 to 63 characters)")
    if labels[-1].isdigit():
        raise KindError(f"{text} looks like an IP address, not a domain name")
    return name


class Domain(Kind):
    """An SMTP domain, lower-cased. ``wildcard``: ``*.contoso.com`` (domain plus subdomains) is allowed;
    ``star``: bare ``*`` (everything) is allowed. An embedded wildcard (``a.*.contoso.com``) is never valid
    (§2.1 SenderDomains, §4.1 RecipientDomains/TlsDomain, §12)."""

    def __init__(self, *, wildcard: bool = False, star: bool = False, nullable: bool = False) -> None:
        self.wildcard = wildcard
        self.star = star
        self.nullable = nullable
        parts = ["domain name such as contoso.com"]
        if wildcard:
            parts.append("*.contoso.com for a domain and its subdomains")
        if star:
            parts.append("* for every domain")
        self.allowed = ", ".join(parts)

    def validate(self, value: Any) -> tuple[Any, list[Problem]]:
        # A normal domain (or *.domain where allowed) is what parse() returns unchanged (SenderDomain's address
        # spaces hold a ":", which no normal domain does): skip its try block and checks.
        if value.__class__ is str and (_NORMAL_DOMAIN.fullmatch(value) is not None or (
                self.wildcard and value.startswith("*.") and _NORMAL_DOMAIN.fullmatch(value, 2) is not None)):
            return value, []
        return super().validate(value)

    def parse(self, value: Any) -> Any:
        if value is None and self.nullable:
            return None
        if not isinstance(value, str):
            raise KindError(f"expected a domain name, got {_show(value)}")
        text = value.strip()
        if text == "*":
            if self.star:
                return "*"
            raise KindError("a bare * is not allowed here")
        if text.startswith("*."):
            if not self.wildcard:
                raise KindError(f"{text} has a wildcard where none is allowed")
            rest = text[2:]
            if "*" in rest:
                raise KindError(f"{text} has an embedded wildcard; only a leading *. is allowed")
            return "*." + _check_domain(rest)
        if "*" in text:
            raise KindError(
                f"{text} has an embedded wildcard; only a leading *. is allowed"
                if self.wildcard
                else f"{text} has a wildcard where none is allowed"
            )
        return _check_domain(text)

    def live(self, value: Any) -> Any:
        if value.__class__ is str and _NORMAL_DOMAIN.fullmatch(value):
            return value  # already what parse() makes of it (lower case, valid labels): Get-* returns domains so
        return self._live_parsed(value)

    def _live_parsed(self, value: Any) -> Any:
        """:meth:`live` without its fast path (tests compare the two)."""
        if self.nullable and (value is None or (isinstance(value, str) and not value.strip())):
            return None
        return super().live(value)

    def json_schema(self) -> dict[str, Any]:
        return {"type": ["string", "null"] if self.nullable else "string", "pattern": rx.padded(self._pattern()),
                "description": self.describe()}

    def _pattern(self, end: str = r"\s*$") -> str:
        """The domain forms :meth:`parse` accepts; ``end`` is what may follow the domain up to the end of the value."""
        forms = [r"\*"] if self.star else []
        forms.append((r"(?:\*\.)?" if self.wildcard else "") + _domain_pattern(end))
        return "|".join(forms)

    def matching(self, value: Any) -> dict[str, Any]:
        name = self.parse(value)
        if name is None:
            return {"type": "null"}
        return {"type": "string", "pattern": rx.padded(rx.literal(name) if name == "*" else rx.any_case(name) + r"\.?")}

    def truthy(self) -> dict[str, Any]:
        return {"type": "string"}


_LABEL_PATTERN = "[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"


def _domain_pattern(end: str = r"\s*$") -> str:
    """:func:`_check_domain` as a pattern: at most 253 characters (one trailing dot aside), two labels or more,
    each of letters, digits and inner hyphens, and a last label that is not all digits (that is an IP address).
    ``end`` is what may follow the domain up to the end of the value (the look-aheads need it)."""
    return (rf"(?=[A-Za-z0-9.-]{{1,253}}\.?{end})(?:{_LABEL_PATTERN}\.)+(?![0-9]+\.?{end}){_LABEL_PATTERN}\.?")


_ADDRESS_SPACE = re.compile(r"^\s*smtp:(?P<domain>[^;]*)(?:;(?P<cost>\d+))?\s*$", re.IGNORECASE)
_CANONICAL_ADDRESS_SPACE = re.compile("smtp:(" + _canonical_domain(r"(?:;|\Z)") + ")(?:;[0-9]+)?")


class SenderDomain(Domain):
    """Inbound ``SenderDomains``: a domain, ``*.domain`` or ``*``. Exchange stores it as an address space
    ``smtp:<domain>;1`` (§3, [L] S7); the normalised form is the bare domain, and the address-space form is
    accepted on input too."""

    def __init__(self) -> None:
        super().__init__(wildcard=True, star=True)
        self.allowed += " (smtp:contoso.com;1 is read as contoso.com)"

    def parse(self, value: Any) -> Any:
        if isinstance(value, str):
            match = _ADDRESS_SPACE.match(value)
            if match:
                value = match.group("domain")
        return super().parse(value)

    def live(self, value: Any) -> Any:
        # Get-InboundConnector's form, smtp:<domain>;<cost> with a canonical domain: the domain is the answer.
        match = _CANONICAL_ADDRESS_SPACE.fullmatch(value) if value.__class__ is str else None
        return match.group(1) if match else super().live(value)

    def json_schema(self) -> dict[str, Any]:
        cost = r"\s*(?:;[0-9]+)?\s*$"  # what may follow the domain of an address space smtp:<domain>;<cost>
        address_space = rf"{rx.any_case('smtp:')}\s*(?:{self._pattern(cost)})\s*(?:;[0-9]+)?"
        return {"type": "string", "pattern": rx.padded(f"{address_space}|{self._pattern()}"),
                "description": self.describe()}


# Reserved IPv4 space that the project refuses for sender IPs and smart hosts. The service refuses "reserved or
# private" addresses (IPRangeInConnectorContainsReservedIPAddresses, [X]) but its exact list is unknown. Project
# decision: refuse the ranges below and treat the TEST-NET documentation ranges (192.0.2.0/24, 198.51.100.0/24,
# 203.0.113.0/24) as public so that examples and tests can use them (Python's ipaddress calls them private).
_RESERVED_V4: tuple[tuple[ipaddress.IPv4Network, str], ...] = tuple(
    (ipaddress.IPv4Network(net), why)
    for net, why in (
        ("0.0.0.0/8", "in 0.0.0.0/8 ('this network')"),
        ("10.0.0.0/8", "a private address (RFC 1918)"),
        ("100.64.0.0/10", "a carrier-grade NAT address (100.64.0.0/10)"),
        ("127.0.0.0/8", "a loopback address"),
        ("169.254.0.0/16", "a link-local address"),
        ("172.16.0.0/12", "a private address (RFC 1918)"),
        ("192.168.0.0/16", "a private address (RFC 1918)"),
        ("224.0.0.0/4", "a multicast address"),
        ("240.0.0.0/4", "a reserved address (240.0.0.0/4, including the broadcast address)"),
    )
)


def _public_ipv4_pattern(prefixes: range) -> str:
    """An IPv4 address, or a CIDR with a prefix length in ``prefixes``, that overlaps none of ``_RESERVED_V4``:
    :func:`reserved_reason` as a pattern, generated from the same list."""
    overlapping = rx.ipv4_overlapping([net for net, _ in _RESERVED_V4], prefixes)
    return rf"(?!{overlapping}){rx.IPV4}(?:/{rx.ipv4_prefix(prefixes.start, prefixes.stop - 1)})?"


def reserved_reason(net: ipaddress.IPv4Network) -> str | None:
    """Why an IPv4 network is refused as a sender IP or smart host, or None if it is public (project list)."""
    for reserved, why in _RESERVED_V4:
        if net.overlaps(reserved):
            return why if net.prefixlen >= reserved.prefixlen else f"overlapping {reserved} ({why})"
    return None


_IPV4_LIKE = re.compile(r"^[0-9.]+(/\d+)?$")
# An IPv4 address written plainly (octets 0-255 without leading zeros) with an optional prefix length (0-32, no
# leading zero): ipaddress reads such text as the numbers it shows, so _plain_v4 can work them out itself.
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_PLAIN_V4 = re.compile(rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}(?:/(3[0-2]|[12]?[0-9]))?")
_RESERVED_SPANS: tuple[tuple[int, int], ...] = tuple(
    (int(net.network_address), int(net.broadcast_address)) for net, _ in _RESERVED_V4)


def _plain_v4(text: str) -> tuple[int, int] | None:
    """A plainly written IPv4 address or network (``_PLAIN_V4``) as (network number, prefix length), else None."""
    found = _PLAIN_V4.fullmatch(text)
    if found is None:
        return None
    a, b, c, d, prefix = found.groups()
    length = 32 if prefix is None else int(prefix)
    host_bits = 32 - length
    return (int(a) << 24 | int(b) << 16 | int(c) << 8 | int(d)) >> host_bits << host_bits, length


def _v4_text(first: int, length: int) -> str:
    """A network as :func:`_net_text` writes it: the address alone for a /32."""
    address = f"{first >> 24}.{first >> 16 & 255}.{first >> 8 & 255}.{first & 255}"
    return address if length == 32 else f"{address}/{length}"


def _plain_public_v4(text: str, min_prefix: int) -> str | None:
    """``text`` normalised as :func:`_net_text` writes it, when it is a plainly written IPv4 address or network of
    at least ``min_prefix`` bits that overlaps no reserved range; None for anything else, which the caller then
    parses in full (and words the refusal of). Sender IPs and smart hosts are mostly written so: this skips
    building an IPv4Network and nine overlap tests per value."""
    plain = _plain_v4(text)
    if plain is None or plain[1] < min_prefix:
        return None
    first, length = plain
    last = first | ((1 << (32 - length)) - 1)
    for start, end in _RESERVED_SPANS:
        if start <= last and first <= end:
            return None
    return _v4_text(first, length)


def _canonical_v4(value: Any) -> str | None:
    """What ``_net_text(IPv4Network(value, strict=False))`` gives for a canonical address or CIDR (the form Get-*
    returns), else None: read with int() instead of ipaddress, which costs ten times more per value."""
    plain = _plain_v4(value) if value.__class__ is str else None
    return None if plain is None else _v4_text(*plain)


def _v4_network(text: str) -> ipaddress.IPv4Network:
    """Parse an IPv4 address or CIDR (host bits allowed and cleared) or raise KindError."""
    try:
        return ipaddress.IPv4Network(text, strict=False)
    except (ValueError, TypeError):
        raise KindError(f"{text} is not a valid IPv4 address") from None


def _net_text(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str:
    """A /32 (or /128) is written as the bare address; other networks as address/prefix."""
    if net.prefixlen == net.max_prefixlen:
        return str(net.network_address)
    return str(net)


class SenderIp(Kind):
    """Inbound ``SenderIPAddresses``: public IPv4 address or CIDR /24–/32 (§2.1, §12). No IPv6, no ``a-b`` ranges.
    Normalised to the network address (``203.0.113.7/24`` -> ``203.0.113.0/24``, on both sides, so an entry
    typed with host bits never shows as a diff) and ``/32`` to the bare address. Refused ranges and why: see
    ``_RESERVED_V4``; the TEST-NET documentation ranges (RFC 5737) count as public so examples can use them."""

    allowed = "public IPv4 address or CIDR from /24 to /32"

    def parse(self, value: Any) -> Any:
        if not isinstance(value, str):
            raise KindError(f"expected an IPv4 address, got {_show(value)}")
        text = value.strip()
        plain = _plain_public_v4(text, 24)
        if plain is not None:
            return plain
        if ":" in text:
            raise KindError(f"{text} is IPv6; Exchange Online connectors accept only IPv4")
        if "-" in text:
            raise KindError(f"{text} is a range; connectors accept a single address or CIDR, not a-b ranges")
        if not _IPV4_LIKE.match(text):
            raise KindError(f"{text} is not an IPv4 address or CIDR")
        net = _v4_network(text)
        if net.prefixlen < 24:
            raise KindError(f"{text} is wider than /24; Exchange accepts CIDR prefixes from /24 to /32")
        why = reserved_reason(net)
        if why:
            raise KindError(f"{text} is {why}; Exchange refuses reserved and private addresses")
        return _net_text(net)

    def json_schema(self) -> dict[str, Any]:
        return {"type": "string", "pattern": rx.padded(_public_ipv4_pattern(range(24, 33))), "description": self.describe()}

    def live(self, value: Any) -> Any:
        fast = _canonical_v4(value)
        return fast if fast is not None else self._live_parsed(value)

    def _live_parsed(self, value: Any) -> Any:
        """:meth:`live` without its fast path (tests compare the two)."""
        try:
            return _net_text(ipaddress.IPv4Network(str(value).strip(), strict=False))
        except ValueError:
            return str(value).strip()

    def sort_key(self, value: Any) -> Any:
        return _ip_sort_key(value)


def _ip_sort_key(value: Any) -> Any:
    match = _PLAIN_V4.fullmatch(text := str(value))
    if match:  # a canonical IPv4 address or CIDR (the common case): its number without ipaddress
        a, b, c, d = (int(octet) for octet in match.groups()[:4])
        return (4, (a << 24) | (b << 16) | (c << 8) | d, text)
    return _ip_sort_key_parsed(value)


def _ip_sort_key_parsed(value: Any) -> Any:
    """:func:`_ip_sort_key` without its fast path (tests compare the two)."""
    text = str(value)
    first = text.split("-")[0].split("/")[0]
    try:
        addr = ipaddress.ip_address(first)
        return (addr.version, int(addr), text)
    except ValueError:
        return (9, 0, text)


class SkipIp(Kind):
    """Enhanced Filtering ``EFSkipIPs``: single address, CIDR or ``a-b`` range (§2.1, [D]). IPv6 entries are
    accepted: vendor automation sends IPv6 CIDRs ([I] S12). Private addresses are accepted: the portal calls
    them "not supported" but the cmdlet is not known to refuse them."""

    allowed = "IPv4/IPv6 address, CIDR, or range first-last"

    def parse(self, value: Any) -> Any:
        if not isinstance(value, str):
            raise KindError(f"expected an IP address, CIDR or range, got {_show(value)}")
        text = value.strip()
        if "-" not in text:
            try:
                return _net_text(ipaddress.ip_network(text, strict=False))
            except ValueError:
                raise KindError(f"{text} is not an IP address, CIDR or range") from None
        first_text, last_text = (part.strip() for part in text.split("-", 1))
        try:
            first = ipaddress.ip_address(first_text)
            last = ipaddress.ip_address(last_text)
        except ValueError:
            raise KindError(f"{text} is not an IP address, CIDR or range") from None
        # KindError subclasses ValueError: raised outside the try so it is not swallowed as "not an IP".
        if first.version != last.version:
            raise KindError(f"{text} mixes IPv4 and IPv6")
        if int(last) < int(first):
            raise KindError(f"{text} ends before it starts")
        return str(first) if first == last else f"{first}-{last}"

    def json_schema(self) -> dict[str, Any]:
        v4, v6 = rx.IPV4, rx.IPV6
        forms = [rf"{v4}(?:/{rx.ipv4_prefix(0, 32)})?", rf"{v6}(?:/{rx.ipv4_prefix(0, 128)})?",
                 rf"{v4}\s*-\s*{v4}", rf"{v6}\s*-\s*{v6}"]
        return {"type": "string", "pattern": rx.padded("|".join(forms)), "description": self.describe()}

    def sort_key(self, value: Any) -> Any:
        return _ip_sort_key(value)


class SmartHost(Kind):
    """Outbound ``SmartHosts``: an FQDN, a public IPv4 address or a CIDR range (New-OutboundConnector documents
    all three [D], issue #14); no port (Exchange always uses 25, S10 #5599), no IPv6, no reserved or private
    address ([X])."""

    allowed = "host name such as mail.contoso.com, a public IPv4 address, or an IPv4 CIDR range; no port"

    def parse(self, value: Any) -> Any:
        if not isinstance(value, str):
            raise KindError(f"expected a host name or IPv4 address, got {_show(value)}")
        text = value.strip()
        if text.startswith("[") or text.count(":") > 1:
            raise KindError(f"{text} is IPv6; smart hosts must be a host name or an IPv4 address")
        if ":" in text:
            raise KindError(f"{text} has a port; Exchange always delivers to port 25 and takes no port here")
        plain = _plain_public_v4(text, 0)
        if plain is not None:
            return plain
        if _IPV4_LIKE.match(text):
            net = _v4_network(text)
            why = reserved_reason(net)
            if why:
                raise KindError(f"{text} is {why}; Exchange refuses reserved and private smart hosts")
            return str(net.network_address) if net.prefixlen == 32 else str(net)
        return _check_domain(text)

    def json_schema(self) -> dict[str, Any]:
        # An all-digit last label is never a domain (see _check_domain), so the two forms cannot both match.
        pattern = rx.padded(f"{_public_ipv4_pattern(range(0, 33))}|{_domain_pattern()}")
        return {"type": "string", "pattern": pattern, "description": self.describe()}

    def live(self, value: Any) -> Any:
        if value.__class__ is str and _NORMAL_DOMAIN.fullmatch(value):
            return value  # a host name as Get-* returns it (its last label is not all digits: not an address)
        fast = _canonical_v4(value)
        return fast if fast is not None else self._live_parsed(value)

    def _live_parsed(self, value: Any) -> Any:
        """:meth:`live` without its fast paths (tests compare the two)."""
        text = str(value).strip()
        try:
            net = ipaddress.IPv4Network(text, strict=False)
        except ValueError:
            return text.lower().rstrip(".")
        return str(net.network_address) if net.prefixlen == 32 else str(net)


_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")


class Email(Kind):
    """An SMTP address, lower-cased (Exchange matches addresses case-insensitively)."""

    allowed = "email address such as user@contoso.com"

    def parse(self, value: Any) -> Any:
        if not isinstance(value, str):
            raise KindError(f"expected an email address, got {_show(value)}")
        text = value.strip()
        if text.lower().startswith("smtp:"):
            text = text[5:]
        local, at, domain = text.rpartition("@")
        if not at or not local:
            raise KindError(f"{text} is not an email address")
        if len(local) > 64 or not _LOCAL.match(local):
            raise KindError(f"{text} has an invalid part before the @")
        try:
            dom = _check_domain(domain)
        except KindError as exc:
            raise KindError(f"{text} has an invalid domain: {exc.message}") from None
        return f"{local.lower()}@{dom}"

    def json_schema(self) -> dict[str, Any]:
        local = f"(?=[^@]{{1,64}}@){_LOCAL.pattern[1:-1]}"  # the same local-part rule, at most 64 characters
        pattern = rx.padded(f"(?:{rx.any_case('smtp:')})?{local}@{_domain_pattern()}")
        return {"type": "string", "pattern": pattern, "description": self.describe()}


# The ISO 8601 forms a timestamp may be written in: the extended date, optionally a time (hours, minutes, seconds,
# any fraction) and a Z or an offset. datetime.fromisoformat alone would also take week dates, basic forms and any
# separator character; the editor schema uses this same pattern, so both accept the same spellings (the pattern knows
# the days of each month, but not leap years: 29 February of other years is left to fromisoformat). Kept as text and
# compiled by re's own cache on first use: most runs read no timestamp, and compiling it is a few ms of every start-up.
_TIMESTAMP = (
    r"^[0-9]{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
    r"|02-(?:0[1-9]|1[0-9]|2[0-9]))"
    r"(?:[T ](?:[01][0-9]|2[0-3])(?::[0-5][0-9](?::[0-5][0-9](?:[.,][0-9]+)?)?)?"
    r"(?:Z|[+-](?:[01][0-9]|2[0-3])(?::?[0-5][0-9])?)?)?$"
)


class Timestamp(Kind):
    """A date and time. Get-* returns some timestamps without an offset (``2026-07-24T18:59:12.0000000``,
    exo-admin-api §3.2); those are read as UTC [I]. Normalised to ``YYYY-MM-DDTHH:MM:SSZ``."""

    allowed = "ISO 8601 date and time such as 2026-07-24T18:59:12Z, or null"

    def parse(self, value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, datetime):
            moment = value
        elif isinstance(value, str):
            text = value.strip()
            if not re.match(_TIMESTAMP, text):
                raise KindError(f"{value} is not an ISO 8601 date and time such as 2026-07-24T18:59:12Z")
            if text.endswith("Z"):
                text = text[:-1] + "+00:00"
            try:
                moment = datetime.fromisoformat(text)
            except ValueError as exc:  # a day the month does not have
                raise KindError(f"{value} is not a valid date and time: {exc}") from None
        else:
            raise KindError(f"expected a date and time, got {_show(value)}")
        if moment.tzinfo is not None:
            moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
        return moment.replace(microsecond=0).isoformat() + "Z"

    def json_schema(self) -> dict[str, Any]:
        return {"type": ["string", "null"], "format": "date-time", "pattern": rx.padded(_TIMESTAMP[1:-1]),
                "description": self.describe()}


class ListOf(Kind):
    """A multi-valued property. ``as_set``: the service treats it as a set, so it is normalised sorted and
    de-duplicated (after each item is normalised, e.g. lower-cased), and order or case never makes a diff.
    ``null`` and a missing value both mean the empty list (Get-* returns ``[]`` for unset lists)."""

    json_type = "array"

    def __init__(self, item: Kind, *, as_set: bool = True, non_empty: bool = False) -> None:
        self.item = item
        self.as_set = as_set
        self.non_empty = non_empty
        self.allowed = f"list of: {item.allowed}"

    def validate(self, value: Any) -> tuple[Any, list[Problem]]:
        if value is None:
            value = []
        if isinstance(value, (str, int, float, bool)):
            return None, [Problem(f"expected a list, got {_show(value)}; write [{_show(value)}]", self.allowed)]
        if not isinstance(value, (list, tuple)):
            return None, [Problem(f"expected a list, got {type(value).__name__}", self.allowed)]
        out: list[Any] = []
        problems: list[Problem] = []
        validate = self.item.validate
        for index, item in enumerate(value):
            normalised, item_problems = validate(item)
            if item_problems:
                problems.extend(Problem(p.message, p.allowed, (index,) + p.subpath) for p in item_problems)
            else:
                out.append(normalised)
        if self.non_empty and not value:
            problems.append(Problem("must not be empty", self.allowed))
        if problems:
            return None, problems
        if len(out) < 2:  # one parsed (hashable) value or none: nothing to sort or de-duplicate
            return out, []
        return self._canonical(out), []

    def parse(self, value: Any) -> Any:
        normalised, problems = self.validate(value)
        if problems:
            raise KindError(problems[0].message, problems[0].allowed)
        return normalised

    def live(self, value: Any) -> Any:
        if value is None or (value.__class__ is list and not value):  # unset lists: the common case
            return []
        if isinstance(value, str):
            value = [value]
        live = self.item.live
        if value.__class__ is list and len(value) == 1 and (item := live(value[0])).__class__ is str:
            return [item]  # one text item: nothing to sort or merge (most lists of a listing hold one)
        return self._canonical([live(v) for v in value])

    def to_param(self, value: Any) -> Any:
        # An empty list is sent as null: only $null is known to clear a multi-valued property (exo-admin-api.md
        # §2.1: "[INF] an empty array probably does too; untested").
        if not value:
            return None
        return [self.item.to_param(v) for v in value]

    def _canonical(self, items: list[Any]) -> list[Any]:
        if not self.as_set:
            return items
        return sorted(set(items), key=self.item.sort_key)

    def describe(self) -> str:
        return f"list of {self.item.describe()}" + (" (a set: order, case and duplicates do not matter)" if self.as_set else "")

    def json_schema(self) -> dict[str, Any]:
        item = self.item.json_schema()
        # null means the empty list (see validate), so a list that must not be empty cannot be null either.
        kind: Any = "array" if self.non_empty else ["array", "null"]
        schema: dict[str, Any] = {"type": kind, "items": item, "description": self.describe()}
        if self.non_empty:
            schema["minItems"] = 1
        return schema

    def truthy(self) -> dict[str, Any]:
        return {"type": "array", "minItems": 1}

    def containing(self, item: Any) -> dict[str, Any]:
        """JSON Schema of the lists that hold an item normalised to ``item``."""
        return {"type": "array", "contains": self.item.matching(item)}



def suggest(word: str, candidates: Iterable[str]) -> str | None:
    """The closest candidate to a misspelt key or value (case-insensitive), or None."""
    options = list(candidates)
    lowered = {c.lower(): c for c in options}
    if word.lower() in lowered:
        return lowered[word.lower()]
    import difflib  # late: only a misspelt key or value needs it; every other run skips loading it

    match = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[match[0]] if match else None


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """``"; did you mean X?"`` for the closest candidate (see :func:`suggest`), or ``""`` when none is close."""
    close = suggest(word, candidates)
    return f"; did you mean {close}?" if close else ""
