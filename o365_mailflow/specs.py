"""Resource specs: every Exchange Online field this project manages, declared once, as data.

Why this module exists: validation of a stack file, normalisation of what ``Get-*`` returns, the
``New-*``/``Set-*`` parameters, the plan's diff and the generated docs must all agree on what a field is.
Each resource type is therefore one table of :class:`Field` rows (stack name, Exchange parameter, value
kind, service default, create/set mode, risky flag), and every function below is driven by that table.
Adding a field to a table is enough for validation, normalisation, parameter building and docs to see it.

Sources: ``exo-cmdlets.md`` tables 2.1 (inbound), 4.1 (outbound), 6.2 (accepted domains), the object rules
in §2.2 and §4.2, and the accept/reject table in §12. Facts tagged [X] in that reference come from old
decompiled Exchange code and [I] ones are inferences; code comments below keep those tags where a choice
depends on them.

Deliberately left out (internal Microsoft use or undocumented, see §2.1 and §4.1): ``EFTestMode``,
``EFSkipMailGateway``, ``ScanAndDropRecipients``, ``ClientHostNames`` (inbound) and
``LinkForModifiedConnector`` (outbound). They are not validated, not read and never sent.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from dataclasses import dataclass
from dataclasses import field as dc_field
from datetime import datetime, timezone
from enum import Enum
from functools import cached_property
from typing import Any, Callable, Collection, Iterable, Mapping, Sequence

from . import patterns as rx
from .errors import Diagnostic, Severity

__all__ = [
    "UNSET",
    "META_KEYS",
    "Mode",
    "Problem",
    "Kind",
    "Bool",
    "Text",
    "Choice",
    "Domain",
    "SenderDomain",
    "SenderIp",
    "SkipIp",
    "SmartHost",
    "Email",
    "Timestamp",
    "ListOf",
    "Field",
    "ResourceSpec",
    "Cond",
    "Is",
    "IsSet",
    "Has",
    "StartsWith",
    "Not",
    "AllOf",
    "AnyOf",
    "adopting_schema",
    "rule_schemas",
    "SPECS",
    "INBOUND",
    "OUTBOUND",
    "ACCEPTED_DOMAIN",
    "spec_for_stack_key",
    "suggest",
    "did_you_mean",
    "normalise_desired",
    "check_rules",
    "effective",
    "normalise_live",
    "to_parameters",
    "split_create",
    "adopt_of",
    "RENAMED_FROM",
    "renamed_from_of",
    "reserved_reason",
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
        if any(ord(ch) < 32 and ch not in "\n\r\t" for ch in text):
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


def _check_domain(text: str) -> str:
    """Lower-case an SMTP domain (no wildcard) or raise KindError saying why it is not one."""
    name = text.strip().lower()
    if name.endswith("."):
        name = name[:-1]
    if not name:
        raise KindError("is empty")
    if any(ch.isspace() for ch in name):
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
        try:
            return _net_text(ipaddress.IPv4Network(str(value).strip(), strict=False))
        except ValueError:
            return str(value).strip()

    def sort_key(self, value: Any) -> Any:
        return _ip_sort_key(value)


def _ip_sort_key(value: Any) -> Any:
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
# the days of each month, but not leap years: 29 February of other years is left to fromisoformat).
_TIMESTAMP = re.compile(
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
            if not _TIMESTAMP.match(text):
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
        return {"type": ["string", "null"], "format": "date-time", "pattern": rx.padded(_TIMESTAMP.pattern[1:-1]),
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
        for index, item in enumerate(value):
            normalised, item_problems = self.item.validate(item)
            problems.extend(Problem(p.message, p.allowed, (index,) + p.subpath) for p in item_problems)
            if not item_problems:
                out.append(normalised)
        if self.non_empty and not value:
            problems.append(Problem("must not be empty", self.allowed))
        if problems:
            return None, problems
        return self._canonical(out), []

    def parse(self, value: Any) -> Any:
        normalised, problems = self.validate(value)
        if problems:
            raise KindError(problems[0].message, problems[0].allowed)
        return normalised

    def live(self, value: Any) -> Any:
        if value is None:
            return []
        if isinstance(value, str):
            value = [value]
        return self._canonical([self.item.live(v) for v in value])

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


# ---------------------------------------------------------------------------------------------------------------------
# Field tables
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    name: str  # camelCase stack/Pulumi key
    param: str  # Exchange parameter and Get-* property name
    kind: Kind = dc_field(hash=False)
    default: Any = dc_field(default=UNSET, hash=False)  # the service default, normalised (UNSET if none)
    mode: Mode = Mode.CREATE_AND_SET
    risky: bool = False  # flagged in PR previews
    required_on_create: bool = False
    description: str = ""


@dataclass(frozen=True)
class ResourceSpec:
    type_name: str
    stack_key: str
    noun: str
    identity_field: str
    fields: tuple[Field, ...]
    creatable: bool = True
    deletable: bool = True
    label: str = ""  # what a mail admin calls one ("inbound connector"), in messages; the type name when empty

    @property
    def what(self) -> str:
        return self.label or self.type_name

    @cached_property
    def _by_name(self) -> dict[str, Field]:
        # A dict, not a scan of the table: plans and loaders ask for fields hundreds of thousands of times.
        return {f.name: f for f in self.fields}

    def field(self, name: str) -> Field:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"{self.type_name} has no field {name!r}") from None

    def has_field(self, name: str) -> bool:
        return name in self._by_name

    @property
    def renamable(self) -> bool:
        """Whether a stack may declare ``renamedFrom``: only connectors (an accepted domain is its own name)."""
        return self.identity_field == "name"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @cached_property
    def _defaults(self) -> tuple[tuple[str, Any], ...]:
        return tuple((f.name, f.default) for f in self.fields if f.default is not UNSET)

    @cached_property
    def _live_key_cache(self) -> dict[tuple[Any, ...], tuple[tuple[Field, Any], ...]]:
        return {}

    @cached_property
    def _by_param(self) -> dict[str, Field]:
        return {f.param.lower(): f for f in reversed(self.fields)}  # reversed: the first of a repeated param wins

    def by_param(self, param: str) -> Field:
        try:
            return self._by_param[param.lower()]
        except KeyError:
            raise KeyError(f"{self.type_name} has no parameter {param!r}") from None


_C, _CO, _S, _R = Mode.CREATE_AND_SET, Mode.CREATE_ONLY, Mode.SET_ONLY, Mode.READ_ONLY
# Columns of a row: name, param, kind, default, mode, risky, required_on_create, description. "risky" marks the
# fields whose change can stop, reject or misroute mail (which connector applies, where mail goes, TLS), so PR
# previews call them out; comments and bookkeeping fields are not risky.

_CONNECTOR_TYPE = Choice(["OnPremises", "Partner"])
# Get-* returns AdminUI for connectors made in the admin center, and old objects may have no source at all;
# both read as Default, as Microsoft365DSC does ([L] S7, [M] S5).
_CONNECTOR_SOURCE = Choice(
    ["Default", "HybridWizard", "Migrated"],
    refused={"AdminUI": "Get-* reports AdminUI for connectors made in the admin center; write Default"},
    live_aliases={"AdminUI": "Default", "": "Default"},
)
_NAME = Text(64, min_length=1, what="a connector name")
_COMMENT = Text(1024, single_line=False, what="a comment")

# Fields both connector types share, declared once (same parameter, kind, default and meaning on both cmdlets).
_CONNECTOR_NAME = Field(
    "name", "Name", _NAME, UNSET, _C, False, True,
    "Unique connector name (case-insensitive), at most 64 characters. To rename, change it and set "
    "renamedFrom to the old name: the plan is then an update of the same connector (same Guid).")
_CONNECTOR_ENABLED = Field("enabled", "Enabled", Bool(), True, _C, True, False, "Whether the connector is used.")
_CONNECTOR_SOURCE_FIELD = Field(
    "connectorSource", "ConnectorSource", _CONNECTOR_SOURCE, "Default", _C, False, False,
    "How the connector was made; Microsoft says not to change it. AdminUI reads as Default.")
_CONNECTOR_COMMENT = Field("comment", "Comment", _COMMENT, "", _C, False, False, "Free text, at most 1024 characters.")

INBOUND = ResourceSpec(
    type_name="InboundConnector",
    stack_key="inboundConnectors",
    noun="InboundConnector",
    identity_field="name",
    label="inbound connector",
    fields=(
        _CONNECTOR_NAME,
        _CONNECTOR_ENABLED,
        Field("connectorType", "ConnectorType", _CONNECTOR_TYPE, "Partner", _C, True, False,
              "OnPremises for your own servers and devices (relay, hybrid); Partner for other organisations."),
        _CONNECTOR_SOURCE_FIELD,
        _CONNECTOR_COMMENT,
        Field("senderDomains", "SenderDomains", ListOf(SenderDomain(), non_empty=True), UNSET, _C, True, True,
              "Sender domains the connector applies to: contoso.com, *.contoso.com, or * for all. Required."),
        Field("senderIpAddresses", "SenderIPAddresses", ListOf(SenderIp()), [], _C, True, False,
              "Public IPv4 addresses or CIDR /24-/32 that identify the sending servers (no private, loopback, "
              "link-local, multicast or reserved ranges; the RFC 5737 TEST-NET ranges count as public)."),
        Field("restrictDomainsToIpAddresses", "RestrictDomainsToIPAddresses", Bool(), False, _C, True, False,
              "Partner: reject mail from the sender domains unless it comes from senderIpAddresses."),
        Field("restrictDomainsToCertificate", "RestrictDomainsToCertificate", Bool(), False, _C, True, False,
              "Partner: reject mail from the sender domains unless it presents tlsSenderCertificateName."),
        # Default conflicts between sources (§8: current docs say true, older docs, Microsoft365DSC and an
        # EAC-made connector say false). Project choice, shared with the emulator: false [I].
        Field("requireTls", "RequireTls", Bool(), False, _C, True, False,
              "Require TLS for mail received through this connector; needed with tlsSenderCertificateName."),
        Field("tlsSenderCertificateName", "TlsSenderCertificateName", Domain(wildcard=True, nullable=True), None, _C,
              True, False, "Subject or SAN domain of the sending server's TLS certificate (*.contoso.com allowed)."),
        Field("cloudServicesMailEnabled", "CloudServicesMailEnabled", Bool(), False, _C, False, False,
              "OnPremises hybrid: keep internal cross-premises headers (the Hybrid wizard sets it)."),
        Field("treatMessagesAsInternal", "TreatMessagesAsInternal", Bool(), False, _C, False, False,
              "OnPremises only: treat mail from on-premises as internal to the organisation."),
        Field("associatedAcceptedDomains", "AssociatedAcceptedDomains", ListOf(Domain(wildcard=True)), [], _C, False,
              False, "Accepted domains this connector is limited to (Microsoft advises it only for testing)."),
        Field("trustedOrganizations", "TrustedOrganizations", ListOf(Domain()), [], _C, False, False,
              "Other Microsoft 365 organisations trusted as mail sources (Microsoft 365 to Microsoft 365 only)."),
        Field("efSkipLastIp", "EFSkipLastIP", Bool(), False, _C, False, False,
              "Enhanced Filtering: skip the last hop. With false and no efSkipIps, Enhanced Filtering is off."),
        Field("efSkipIps", "EFSkipIPs", ListOf(SkipIp()), [], _C, False, False,
              "Enhanced Filtering: IP addresses, CIDR or ranges of your own hops to skip."),
        Field("efUsers", "EFUsers", ListOf(Email()), [], _C, False, False,
              "Enhanced Filtering applies only when every recipient is listed; empty means all recipients."),
    ),
)

_NONE_NOTE = "None is the word None (quote it if you like), not null"

OUTBOUND = ResourceSpec(
    type_name="OutboundConnector",
    stack_key="outboundConnectors",
    noun="OutboundConnector",
    identity_field="name",
    label="outbound connector",
    fields=(
        _CONNECTOR_NAME,
        _CONNECTOR_ENABLED,
        Field("connectorType", "ConnectorType", _CONNECTOR_TYPE, "Partner", _C, True, False,
              "OnPremises to route to your own servers (hybrid); Partner for other organisations."),
        _CONNECTOR_SOURCE_FIELD,
        _CONNECTOR_COMMENT,
        Field("recipientDomains", "RecipientDomains", ListOf(Domain(wildcard=True, star=True)), [], _C, True, False,
              "Recipient domains routed through this connector: contoso.com, *.contoso.com, or *."),
        Field("allAcceptedDomains", "AllAcceptedDomains", Bool(), False, _C, True, False,
              "OnPremises only: use this connector for every accepted domain (hybrid)."),
        Field("isTransportRuleScoped", "IsTransportRuleScoped", Bool(), False, _C, False, False,
              "Used only when a mail flow rule redirects to it; then no recipientDomains/allAcceptedDomains."),
        Field("useMxRecord", "UseMXRecord", Bool(), True, _C, True, False,
              "Deliver by the recipient domain's MX records; false requires smartHosts."),
        Field("smartHosts", "SmartHosts", ListOf(SmartHost()), [], _C, True, False,
              "Host names or public IPv4 addresses to deliver to (port 25, no port syntax)."),
        Field("tlsSettings", "TlsSettings",
              Choice(["EncryptionOnly", "CertificateValidation", "DomainValidation"], nullable=True), None, _C, True,
              False, "TLS requirement towards the destination; null for opportunistic TLS."),
        Field("tlsDomain", "TlsDomain", Domain(wildcard=True, nullable=True), None, _C, True, False,
              "Domain the destination certificate must match; set if and only if tlsSettings is DomainValidation."),
        Field("routeAllMessagesViaOnPremises", "RouteAllMessagesViaOnPremises", Bool(), False, _C, True, False,
              "OnPremises only: centralized mail transport (all internet mail goes through on-premises)."),
        Field("cloudServicesMailEnabled", "CloudServicesMailEnabled", Bool(), False, _C, False, False,
              "OnPremises only: keep internal cross-premises headers (hybrid)."),
        Field("senderRewritingEnabled", "SenderRewritingEnabled", Bool(), False, _C, False, False,
              "OnPremises only: apply Sender Rewriting Scheme before routing to on-premises."),
        Field("testMode", "TestMode", Bool(), False, _C, False, False,
              "Test-mode connectors are hidden from a plain Get-OutboundConnector."),
        Field("mtaStsMode", "MtaStsMode", Choice(["Opportunistic", "None"]), "Opportunistic", _C, False, False,
              f"MTA-STS enforcement: Opportunistic or None ({_NONE_NOTE})."),
        # Only Opportunistic has been seen live; Mandatory and None come from the docs ([D], values [INF]).
        Field("smtpDaneMode", "SmtpDaneMode", Choice(["Opportunistic", "Mandatory", "None"]), "Opportunistic", _C,
              False, False, f"SMTP DANE enforcement: Opportunistic, Mandatory or None ({_NONE_NOTE})."),
        # Set-only (§4.1 [D]): a create sends these in a follow-up Set-OutboundConnector (split_create), as
        # Microsoft365DSC does for ValidationRecipients.
        Field("validationRecipients", "ValidationRecipients", ListOf(Email()), [], _S, False, False,
              "Addresses used by Validate-OutboundConnector. Set-only: applied right after creation."),
        Field("isValidated", "IsValidated", Bool(), False, _S, False, False,
              "Whether the connector was validated; Validate-OutboundConnector does not set it. Set-only."),
        Field("lastValidationTimestamp", "LastValidationTimestamp", Timestamp(), None, _S, False, False,
              "When the connector was last validated (UTC). Set-only."),
    ),
)

ACCEPTED_DOMAIN = ResourceSpec(
    type_name="AcceptedDomain",
    stack_key="acceptedDomains",
    noun="AcceptedDomain",
    identity_field="domainName",
    label="accepted domain",
    # New-/Remove-AcceptedDomain do not exist in Exchange Online (§6.1): domains are added and verified in the
    # Microsoft 365 admin center. The resource adopts an existing domain and only ever calls Set-AcceptedDomain,
    # so every settable field is SET_ONLY and the identity is READ_ONLY.
    creatable=False,
    deletable=False,
    fields=(
        Field("domainName", "DomainName", Domain(wildcard=True), UNSET, _R, False, False,
              "The verified domain (identity); it must already exist in the tenant."),
        Field("domainType", "DomainType", Choice(
            ["Authoritative", "InternalRelay"],
            refused={"ExternalRelay": "ExternalRelay is on-premises only; Exchange Online refuses it (§6.2)"},
        ), "Authoritative", _S, True, False,
              "Authoritative (unknown recipients rejected) or InternalRelay (relayed on-premises)."),
        Field("matchSubDomains", "MatchSubDomains", Bool(), False, _S, True, False,
              "InternalRelay only: also accept mail for every subdomain."),
        Field("outboundOnly", "OutboundOnly", Bool(), False, _S, False, False,
              "For the on-premises organisation's domain when on-premises uses cloud email protection."),
        Field("sendingFromDomainDisabled", "SendingFromDomainDisabled", Bool(), False, _S, True, False,
              "Block sending from addresses in this domain (parked or legacy domains)."),
        Field("sendingToDomainDisabled", "SendingToDomainDisabled", Bool(), False, _S, True, False,
              "Block delivery to this domain (e.g. an unused MOERA domain)."),
        # Undocumented ([D] placeholders): no known default, so nothing is assumed when undeclared.
        Field("canHaveCloudCache", "CanHaveCloudCache", Bool(), UNSET, _S, False, False,
              "Undocumented by Microsoft."),
        Field("mailFlowRegion", "MailFlowRegion", Text(64, what="a region name"), UNSET, _S, False, False,
              "Undocumented by Microsoft."),
        Field("enableNego2Authentication", "EnableNego2Authentication", Bool(), UNSET, _S, False, False,
              "Internal use; cannot be combined with a wildcard domain."),
    ),
)

SPECS: dict[str, ResourceSpec] = {s.type_name: s for s in (INBOUND, OUTBOUND, ACCEPTED_DOMAIN)}


def spec_for_stack_key(stack_key: str) -> ResourceSpec | None:
    for spec in SPECS.values():
        if spec.stack_key == stack_key:
            return spec
    return None


# ---------------------------------------------------------------------------------------------------------------------
# Desired values
# ---------------------------------------------------------------------------------------------------------------------


def suggest(word: str, candidates: Iterable[str]) -> str | None:
    """The closest candidate to a misspelt key or value (case-insensitive), or None."""
    options = list(candidates)
    lowered = {c.lower(): c for c in options}
    if word.lower() in lowered:
        return lowered[word.lower()]
    match = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[match[0]] if match else None


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """``"; did you mean X?"`` for the closest candidate (see :func:`suggest`), or ``""`` when none is close."""
    close = suggest(word, candidates)
    return f"; did you mean {close}?" if close else ""


def _error(path: tuple[str | int, ...], summary: str, *, allowed: str | None = None, code: str = "") -> Diagnostic:
    return Diagnostic(Severity.ERROR, path, summary, allowed=allowed, code=code)


def adopt_of(raw: Mapping[str, Any]) -> bool:
    """The ``adopt`` meta key of a raw desired object (validated by :func:`normalise_desired`)."""
    return Bool().validate(raw.get("adopt"))[0] is True


def renamed_from_of(spec: ResourceSpec, raw: Mapping[str, Any]) -> str | None:
    """The ``renamedFrom`` meta key of a raw connector (normalised), or None when absent or invalid.

    :func:`normalise_desired` reports why a value is refused; this only reads a valid one.
    """
    if RENAMED_FROM not in raw or _renamed_from_problems(spec, raw, ()):
        return None
    return str(spec.field(spec.identity_field).kind.parse(raw[RENAMED_FROM]))


def _renamed_from_problems(spec: ResourceSpec, raw: Mapping[str, Any], path: tuple[str | int, ...]) -> list[Diagnostic]:
    """What is wrong with one object's ``renamedFrom`` on its own (the stack loader checks it across objects)."""
    where = path + (RENAMED_FROM,)
    if not spec.renamable:
        return [_error(where, f"{RENAMED_FROM} is only for connectors: a {spec.type_name} is identified by "
                              f"{spec.identity_field} and cannot be renamed", code="field.renamed-from")]
    kind = spec.field(spec.identity_field).kind
    old, problems = kind.validate(raw[RENAMED_FROM])
    if problems:
        return [_error(where, f"{RENAMED_FROM}: {p.message}", allowed=f"the connector's previous name ({kind.allowed})",
                       code="value.renamedFrom") for p in problems]
    new, name_problems = kind.validate(raw.get(spec.identity_field))
    if not name_problems and str(new).casefold() == str(old).casefold():
        return [_error(where, f"{RENAMED_FROM} {old!r} is the same as name {new!r} (names are compared "
                              f"case-insensitively): give the connector's previous name, or remove {RENAMED_FROM}",
                       code="value.renamedFrom")]
    return []


def normalise_desired(
    spec: ResourceSpec, raw: Mapping[str, Any], path: tuple[str | int, ...] = ()
) -> tuple[dict[str, Any], list[Diagnostic]]:
    """Validate and normalise one desired object's declared fields.

    Returns the normalised declared fields (meta keys such as ``adopt`` and ``renamedFrom`` are validated but
    not returned; read them with :func:`adopt_of` and :func:`renamed_from_of`) and every problem found. Unknown
    keys get a "did you mean" suggestion. The identity field is always required; fields required by New-* are
    required unless ``adopt: true`` (the object then already exists and only its declared fields are managed).
    """
    out: dict[str, Any] = {}
    diags: list[Diagnostic] = []
    known = {f.name: f for f in spec.fields}
    for key, value in raw.items():
        if key == RENAMED_FROM:
            diags.extend(_renamed_from_problems(spec, raw, path))
            continue
        if key in META_KEYS:
            _, problems = Bool().validate(value)
            diags.extend(_error(path + (key,), p.message, allowed=p.allowed, code="value.adopt") for p in problems)
            continue
        fld = known.get(key)
        if fld is None:
            meta = list(META_KEYS) + ([RENAMED_FROM] if spec.renamable else [])
            hint = did_you_mean(str(key), list(known) + meta)
            diags.append(_error(path + (str(key),), f"unknown field {key!r} for {spec.type_name}{hint}",
                                allowed=", ".join(list(known) + meta), code="field.unknown"))
            continue
        if fld.mode is Mode.READ_ONLY and fld.name != spec.identity_field:
            diags.append(_error(path + (key,), f"{key} is read-only and cannot be declared", code="field.read-only"))
            continue
        normalised, problems = fld.kind.validate(value)
        for p in problems:
            diags.append(_error(path + (key,) + p.subpath, p.message, allowed=p.allowed, code=f"value.{key}"))
        if not problems:
            out[key] = normalised
    adopting = adopt_of(raw)
    for fld in spec.fields:
        if fld.name in raw:
            continue
        if fld.name == spec.identity_field:
            diags.append(_error(path + (fld.name,), f"{fld.name} is required", allowed=fld.kind.allowed,
                                code="field.required"))
        elif fld.required_on_create and spec.creatable and not adopting:
            diags.append(_error(
                path + (fld.name,),
                f"{fld.name} is required to create the {spec.type_name}; declare it, or set adopt: true to "
                f"manage only the declared fields of an existing one",
                allowed=fld.kind.allowed, code="field.required"))
    return out, diags


def effective(spec: ResourceSpec, declared: Mapping[str, Any]) -> dict[str, Any]:
    """Declared values over the service defaults (fields without a known default are left out).

    Used for offline rule checks of an object that will be created: what is not declared takes the service
    default. For an existing (adopted) object undeclared fields are unknown until the tenant is read.
    """
    out = {name: list(value) if isinstance(value, list) else value for name, value in spec._defaults}
    names = spec._by_name
    for key, value in declared.items():
        if key in names:
            out[key] = value
    return out


# ---------------------------------------------------------------------------------------------------------------------
# Cross-field rules (on a merged object, as the service validates the merged state, §2.2 / §4.2)
# ---------------------------------------------------------------------------------------------------------------------


class Cond:
    """A condition on one object's fields, declared once and read two ways: :meth:`test` on a merged, normalised
    object (what ``mailflow validate``, plan and the Pulumi providers check) and :meth:`json_schema` on the raw
    values of a stack file (the editor schema, built by docgen). Keeping both readings in one class is what keeps
    the editor and the CLI from disagreeing about a rule."""

    def fields(self) -> tuple[str, ...]:
        raise NotImplementedError

    def test(self, obj: Mapping[str, Any]) -> bool:
        raise NotImplementedError

    def json_schema(self, spec: ResourceSpec) -> dict[str, Any]:
        """JSON Schema that a raw object meets exactly when :meth:`test` holds for it, an undeclared field reading as
        its service default (the caller makes sure every field is declared or has one, see :func:`rule_schemas`)."""
        raise NotImplementedError


@dataclass(frozen=True)
class _FieldCond(Cond):
    field: str

    def fields(self) -> tuple[str, ...]:
        return (self.field,)

    def value_schema(self, kind: Kind) -> dict[str, Any]:
        raise NotImplementedError

    def json_schema(self, spec: ResourceSpec) -> dict[str, Any]:
        fld = spec.field(self.field)
        schema: dict[str, Any] = {"properties": {self.field: self.value_schema(fld.kind)}}
        # "properties" holds when the key is absent, which is right exactly when the default meets the condition.
        if fld.default is UNSET or not self.test({self.field: fld.default}):
            schema["required"] = [self.field]
        return schema


@dataclass(frozen=True)
class Is(_FieldCond):
    """The field's normalised value is ``value`` (True, False, None or an enumeration's canonical name)."""

    value: Any

    def test(self, obj: Mapping[str, Any]) -> bool:
        return bool(obj[self.field] == self.value) and type(obj[self.field]) is type(self.value)

    def value_schema(self, kind: Kind) -> dict[str, Any]:
        return kind.matching(self.value)


@dataclass(frozen=True)
class IsSet(_FieldCond):
    """The field is true, a non-empty list, or a domain or text that is set."""

    def test(self, obj: Mapping[str, Any]) -> bool:
        return bool(obj[self.field])

    def value_schema(self, kind: Kind) -> dict[str, Any]:
        return kind.truthy()


@dataclass(frozen=True)
class Has(_FieldCond):
    """The list field holds ``item`` (normalised, e.g. ``*``)."""

    item: Any

    def test(self, obj: Mapping[str, Any]) -> bool:
        return self.item in obj[self.field]

    def value_schema(self, kind: Kind) -> dict[str, Any]:
        if not isinstance(kind, ListOf):
            raise TypeError(f"Has({self.field!r}) needs a list field")
        return kind.containing(self.item)


@dataclass(frozen=True)
class StartsWith(_FieldCond):
    """The field's normalised text starts with ``prefix`` (which has no letters, so case does not matter)."""

    prefix: str

    def test(self, obj: Mapping[str, Any]) -> bool:
        return str(obj[self.field]).startswith(self.prefix)

    def value_schema(self, kind: Kind) -> dict[str, Any]:
        return {"type": "string", "pattern": rf"^\s*{rx.literal(self.prefix)}"}


@dataclass(frozen=True)
class Not(Cond):
    cond: Cond

    def fields(self) -> tuple[str, ...]:
        return self.cond.fields()

    def test(self, obj: Mapping[str, Any]) -> bool:
        return not self.cond.test(obj)

    def json_schema(self, spec: ResourceSpec) -> dict[str, Any]:
        return {"not": self.cond.json_schema(spec)}


class AllOf(Cond):
    def __init__(self, *conds: Cond) -> None:
        self.conds = conds

    def fields(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(name for cond in self.conds for name in cond.fields()))

    def test(self, obj: Mapping[str, Any]) -> bool:
        return all(cond.test(obj) for cond in self.conds)

    def json_schema(self, spec: ResourceSpec) -> dict[str, Any]:
        return {"allOf": [cond.json_schema(spec) for cond in self.conds]}


class AnyOf(AllOf):
    def test(self, obj: Mapping[str, Any]) -> bool:
        return any(cond.test(obj) for cond in self.conds)

    def json_schema(self, spec: ResourceSpec) -> dict[str, Any]:
        return {"anyOf": [cond.json_schema(spec) for cond in self.conds]}


@dataclass(frozen=True)
class _Rule:
    code: str
    broken: Cond  # holds when the object breaks the rule; its fields are the ones the rule reads
    at: tuple[str, ...]  # where to point, in preference order (the first one the stack declared)
    message: str
    allowed: str | None = None

    @property
    def needs(self) -> tuple[str, ...]:
        """Fields the rule reads; a rule whose fields are not all known is skipped."""
        return self.broken.fields()


_ON_PREM = Is("connectorType", "OnPremises")


_RULES: dict[str, tuple[_Rule, ...]] = {
    "InboundConnector": (
        # §2.2 rule 1, §12 (InboundConnectorMissingTlsCertificateOrSenderIP) [X]
        _Rule("inbound.onpremises-needs-ip-or-cert",
              AllOf(_ON_PREM, Not(IsSet("senderIpAddresses")), Not(IsSet("tlsSenderCertificateName"))),
              ("connectorType", "senderIpAddresses", "tlsSenderCertificateName"),
              "an OnPremises inbound connector needs senderIpAddresses or tlsSenderCertificateName",
              "declare senderIpAddresses or tlsSenderCertificateName"),
        # §2.2 rule 2, §12 (InboundConnectorRequiredTlsSettingsInvalid) [X]
        _Rule("inbound.certificate-needs-require-tls", AllOf(IsSet("tlsSenderCertificateName"), Not(IsSet("requireTls"))),
              ("requireTls", "tlsSenderCertificateName"),
              "requireTls must be true when tlsSenderCertificateName is set", "requireTls: true"),
        # §2.2 rule 3, §12 (InboundConnectorInvalidRestrictDomainsToIPAddresses) [X]
        _Rule("inbound.restrict-ip-needs-ips",
              AllOf(IsSet("restrictDomainsToIpAddresses"), Not(IsSet("senderIpAddresses"))),
              ("restrictDomainsToIpAddresses",),
              "restrictDomainsToIpAddresses needs senderIpAddresses", "declare senderIpAddresses, or false"),
        # §2.2 rule 4, §12 (InboundConnectorInvalidIPCertificateCombinations) [X]
        _Rule("inbound.restrict-ip-and-certificate",
              AllOf(IsSet("restrictDomainsToIpAddresses"), IsSet("restrictDomainsToCertificate")),
              ("restrictDomainsToCertificate", "restrictDomainsToIpAddresses"),
              "restrictDomainsToCertificate and restrictDomainsToIpAddresses cannot both be true",
              "at most one of them true; use two connectors"),
        # §2.2 rule 5, §12 (InboundConnectorInvalidRestrictDomainsToCertificate) [X]
        _Rule("inbound.restrict-certificate-needs-certificate",
              AllOf(IsSet("restrictDomainsToCertificate"), Not(IsSet("tlsSenderCertificateName"))),
              ("restrictDomainsToCertificate",),
              "restrictDomainsToCertificate needs tlsSenderCertificateName",
              "declare tlsSenderCertificateName, or false"),
        # §2.2 rule 6, §12 (InboundConnectorIncorrectCloudServicesMailEnabled) [X]
        _Rule("inbound.cloud-services-mail-needs-onpremises", AllOf(IsSet("cloudServicesMailEnabled"), Not(_ON_PREM)),
              ("cloudServicesMailEnabled", "connectorType"),
              "cloudServicesMailEnabled is only allowed on OnPremises connectors", "connectorType: OnPremises"),
        # §2.2 rule 7 and §2.1 TreatMessagesAsInternal [D]
        _Rule("inbound.treat-as-internal-needs-onpremises", AllOf(IsSet("treatMessagesAsInternal"), Not(_ON_PREM)),
              ("treatMessagesAsInternal", "connectorType"),
              "treatMessagesAsInternal is only allowed on OnPremises connectors", "connectorType: OnPremises"),
        _Rule("inbound.treat-as-internal-excludes-cloud-services-mail",
              AllOf(IsSet("treatMessagesAsInternal"), IsSet("cloudServicesMailEnabled")),
              ("treatMessagesAsInternal", "cloudServicesMailEnabled"),
              "treatMessagesAsInternal cannot be true while cloudServicesMailEnabled is true",
              "at most one of them true"),
    ),
    "OutboundConnector": (
        # §4.2 rule 1, §12 (OutboundConnectorIncorrectTransportRuleScopedParameters) [X]
        _Rule("outbound.rule-scoped-has-no-domains",
              AllOf(IsSet("isTransportRuleScoped"), AnyOf(IsSet("recipientDomains"), IsSet("allAcceptedDomains"))),
              ("recipientDomains", "allAcceptedDomains", "isTransportRuleScoped"),
              "a transport-rule-scoped connector cannot have recipientDomains or allAcceptedDomains",
              "isTransportRuleScoped: true with no domains, or domains with isTransportRuleScoped: false"),
        _Rule("outbound.needs-domains-or-rule-scope",
              AllOf(Not(IsSet("isTransportRuleScoped")), Not(IsSet("recipientDomains")),
                    Not(IsSet("allAcceptedDomains"))),
              ("recipientDomains", "allAcceptedDomains", "isTransportRuleScoped"),
              "an outbound connector needs recipientDomains or allAcceptedDomains: true, unless isTransportRuleScoped is true",
              "recipientDomains, allAcceptedDomains: true, or isTransportRuleScoped: true"),
        # §4.2 rule 2, §12 (…InvalidDomainValidationWithoutTlsDomain / …InvalidTlsDomainWithoutDomainValidation) [X]
        _Rule("outbound.domain-validation-needs-tls-domain",
              AllOf(Is("tlsSettings", "DomainValidation"), Not(IsSet("tlsDomain"))), ("tlsDomain", "tlsSettings"),
              "tlsSettings DomainValidation needs tlsDomain", "declare tlsDomain"),
        _Rule("outbound.tls-domain-needs-domain-validation",
              AllOf(IsSet("tlsDomain"), Not(Is("tlsSettings", "DomainValidation"))), ("tlsSettings", "tlsDomain"),
              "tlsDomain can only be set when tlsSettings is DomainValidation", "tlsSettings: DomainValidation"),
        # §4.2 rule 3, §12 (OutboundConnectorSmartHostShouldBePresentIfUseMXRecordFalse) [D][X]
        _Rule("outbound.no-mx-needs-smart-hosts", AllOf(Is("useMxRecord", False), Not(IsSet("smartHosts"))),
              ("smartHosts", "useMxRecord"),
              "useMxRecord false needs smartHosts", "declare smartHosts"),
        # §4.2 rule 3 (…UseMXRecordShouldBeFalseIfSmartHostsIsPresent) [X]: the service silently clears smart hosts
        # when UseMXRecord is true, so declaring both could never be reached.
        _Rule("outbound.mx-excludes-smart-hosts", AllOf(Is("useMxRecord", True), IsSet("smartHosts")),
              ("smartHosts", "useMxRecord"),
              "smartHosts are only used with useMxRecord: false (Exchange clears them when useMxRecord is true)",
              "useMxRecord: false"),
        # §4.2 rule 4, §12 (Partner + OnPremises-only flags) [D][X]
        *(
            _Rule(f"outbound.{flag}-needs-onpremises", AllOf(IsSet(flag), Not(_ON_PREM)), (flag, "connectorType"),
                  f"{flag} is only allowed on OnPremises connectors", "connectorType: OnPremises")
            for flag in ("routeAllMessagesViaOnPremises", "cloudServicesMailEnabled", "allAcceptedDomains",
                         "senderRewritingEnabled")
        ),
        # §4.2 rule 5, §12 (OnPremisesConnectorHasRouteUsingMX) [X]
        _Rule("outbound.onpremises-excludes-mx", AllOf(_ON_PREM, Is("useMxRecord", True)),
              ("useMxRecord", "connectorType"),
              "an OnPremises outbound connector must use smart hosts: set useMxRecord: false", "useMxRecord: false"),
        # §4.2 rule 5, §12 (RecipientDomainStarOnPremiseOutboundConnector) [X]
        _Rule("outbound.onpremises-star-needs-route-all",
              AllOf(_ON_PREM, Has("recipientDomains", "*"), Not(IsSet("routeAllMessagesViaOnPremises"))),
              ("recipientDomains", "routeAllMessagesViaOnPremises"),
              "recipientDomains * on an OnPremises connector needs routeAllMessagesViaOnPremises: true",
              "routeAllMessagesViaOnPremises: true, or list the domains"),
        # Not checked offline: RouteAllMessagesViaOnPremises needs an enabled OnPremises inbound connector without
        # AssociatedAcceptedDomains (§4.2 rule 5); the tenant may hold one that the stack does not manage.
    ),
    "AcceptedDomain": (
        # §6.2, §12 (MatchSubDomainsIsInternalRelayOnlyException) [C][X]
        _Rule("accepted-domain.match-subdomains-needs-internal-relay",
              AllOf(IsSet("matchSubDomains"), Not(Is("domainType", "InternalRelay"))),
              ("matchSubDomains", "domainType"),
              "matchSubDomains is only allowed on InternalRelay domains", "domainType: InternalRelay"),
        # §6.2 EnableNego2Authentication [X]: not with a wildcard domain name.
        _Rule("accepted-domain.nego2-excludes-wildcard",
              AllOf(IsSet("enableNego2Authentication"), StartsWith("domainName", "*")),
              ("enableNego2Authentication",),
              "enableNego2Authentication cannot be used with a wildcard domain", "false"),
        # ExternalRelay is refused by the domainType value kind itself (§6.2, §12).
    ),
}


def check_rules(
    spec: ResourceSpec,
    obj: Mapping[str, Any],
    path: tuple[str | int, ...] = (),
    *,
    declared: Collection[str] | None = None,
) -> list[Diagnostic]:
    """Cross-field rules on one merged, normalised object (see :func:`effective`).

    A rule whose fields are not all present in ``obj`` is skipped: absent means unknown (an adopted object's
    undeclared fields, before the tenant is read). Each diagnostic points at the first of the rule's fields
    that is in ``declared`` (default: the keys of ``obj``).
    """
    present = set(declared) if declared is not None else set(obj)
    diags: list[Diagnostic] = []
    for rule in _RULES.get(spec.type_name, ()):
        if any(name not in obj for name in rule.needs):
            continue
        if not rule.broken.test(obj):
            continue
        at = next((name for name in rule.at if name in present), rule.at[0])
        diags.append(_error(path + (at,), rule.message, allowed=rule.allowed, code=rule.code))
    return diags


def adopting_schema() -> dict[str, Any]:
    """JSON Schema of an object that says ``adopt: true`` (as :func:`adopt_of` reads it, "true" included)."""
    return {"properties": {"adopt": Bool().matching(True)}, "required": ["adopt"]}


def rule_schemas(spec: ResourceSpec) -> list[dict[str, Any]]:
    """The cross-field rules of ``spec`` as JSON Schema (for docgen's editor schema), one ``not`` per rule.

    A rule is checked only when every field it reads is known, as :func:`check_rules` is called by the stack
    loader: declared, or, for an object that will be created (creatable and not ``adopt: true``), taken from the
    service default (:func:`effective`). Fields without a default must be declared.
    """
    out: list[dict[str, Any]] = []
    for rule in _RULES.get(spec.type_name, ()):
        always = [n for n in rule.needs if spec.field(n).default is UNSET or not spec.creatable]
        defaulted = [n for n in rule.needs if n not in always]
        known: list[dict[str, Any]] = [{"required": always}] if always else []
        if defaulted:
            known.append({"anyOf": [{"not": adopting_schema()}, {"required": defaulted}]})
        out.append({"$comment": rule.code, "description": rule.message,
                    "not": {"allOf": known + [rule.broken.json_schema(spec)]}})
    return out


# ---------------------------------------------------------------------------------------------------------------------
# Live values and parameters
# ---------------------------------------------------------------------------------------------------------------------


def normalise_live(spec: ResourceSpec, record: Mapping[str, Any]) -> dict[str, Any]:
    """A Get-* record (PascalCase properties) -> every field of the spec, normalised like a desired value.

    ``smtp:x;1`` sender domains become ``x``, ``null`` lists become ``[]``, ``AdminUI`` reads as ``Default``,
    enums take their canonical case, domains are lower-cased and sets sorted. Property names are matched
    case-insensitively; a property the record does not carry takes the field's default (None if it has none).
    """
    out: dict[str, Any] = {}
    for fld, key in _live_keys(spec, tuple(record)):
        if key is not None:
            out[fld.name] = fld.kind.live(record[key])
        elif fld.default is not UNSET:
            out[fld.name] = list(fld.default) if isinstance(fld.default, list) else fld.default
        else:
            out[fld.name] = None
    return out


def name_key(name: str) -> str:
    """How Exchange compares object names: .NET's StringComparer.OrdinalIgnoreCase (exo-cmdlets.md, [X] uniqueness
    check), i.e. each character upper-cased on its own by simple case mapping. Unlike ``str.casefold()`` this
    keeps 'ß' apart from 'SS' (casefold maps both to 'ss'), as the service does."""
    # Upper-case per character (simple mapping), then back to lower case so ASCII keys read naturally.
    return "".join(_simple_lower(u) if len(u := c.upper()) == 1 else c for c in name)


def _simple_lower(c: str) -> str:
    low = c.lower()
    return low if len(low) == 1 else c


def _live_keys(spec: ResourceSpec, keys: tuple[Any, ...]) -> tuple[tuple[Field, Any], ...]:
    """Each field and the record key that holds it (matched case-insensitively), per shape of record: every
    record of a listing has the same keys, so a snapshot of thousands of objects matches them once. (Cached on
    the spec by the keys alone: hashing the spec itself would walk its whole field table every time.)"""
    cache = spec._live_key_cache
    found = cache.get(keys)
    if found is None:
        lowered = {str(k).lower(): k for k in keys if "@" not in str(k)}
        found = cache[keys] = tuple((fld, lowered.get(fld.param.lower())) for fld in spec.fields)
        if len(cache) > 64:  # records of unusual shapes: keep the cache small
            cache.pop(next(iter(cache)))
    return found


def to_parameters(spec: ResourceSpec, values: Mapping[str, Any], *, create: bool) -> dict[str, Any]:
    """Normalised camelCase values -> cmdlet parameters (``{"SenderIPAddresses": [...], ...}``).

    With ``create=True`` (New-*), SET_ONLY fields are left out: use :func:`split_create` to get them as a
    follow-up Set-*. With ``create=False`` (Set-*), a CREATE_ONLY field raises ValueError (it needs a replace).
    READ_ONLY fields and meta keys are never sent; an unknown key raises KeyError.
    """
    params: dict[str, Any] = {}
    for key, value in values.items():
        if key in META_KEYS or key == RENAMED_FROM:
            continue
        fld = spec.field(key)
        if fld.mode is Mode.READ_ONLY:
            continue
        if create and fld.mode is Mode.SET_ONLY:
            continue
        if not create and fld.mode is Mode.CREATE_ONLY:
            raise ValueError(f"{spec.type_name}.{key} can only be set when the object is created")
        params[fld.param] = fld.kind.to_param(value)
    return params


def split_create(spec: ResourceSpec, values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Parameters for New-* and for the follow-up Set-* that carries the SET_ONLY fields (may be empty)."""
    new_params = to_parameters(spec, values, create=True)
    followup = {
        fld.param: fld.kind.to_param(values[fld.name])
        for fld in spec.fields
        if fld.name in values and fld.mode is Mode.SET_ONLY
    }
    return new_params, followup
