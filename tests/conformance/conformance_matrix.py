"""The conformance matrix's cases, generated from SPECS: nothing here names a field.

Why: tests that list fields by hand go stale the day a field is added. Here a case is derived from a spec's
table alone: sample values come from a table keyed by the value kind's CLASS (a new field of an existing kind
needs nothing; a new kind fails collection until it gets a row), and the objects around a field are found by a
small search that satisfies the spec's own validation and cross-field rules (``normalise_desired``,
``check_rules`` on ``effective``). So a new rule or a new field reshapes the cases by itself.

A :class:`Case` is one field of one spec: an object declaring the field at one value (``before``) and the same
object with the field at a second value (``after``). When the rules forbid changing that field alone (changing
``useMxRecord`` needs ``smartHosts`` to change with it), ``after`` also changes the fewest other fields the
search could find, and ``changed`` names them all: the update must then be one Set-* carrying exactly those.
"""

from __future__ import annotations

import heapq
import itertools
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterator, Mapping, Sequence

from o365_mailflow.specs import (
    SPECS,
    UNSET,
    Bool,
    Choice,
    Domain,
    Email,
    Field,
    Kind,
    ListOf,
    Mode,
    ResourceSpec,
    SenderDomain,
    SenderIp,
    SkipIp,
    SmartHost,
    Text,
    Timestamp,
    check_rules,
    effective,
    normalise_desired,
)

# Domains the conformance tenants verify: accepted domains can only be adopted, so a Domain sample that ends up
# as an accepted domain's identity must be one of them.
VERIFIED = ["contoso.com", "fabrikam.com", "sales.contoso.com"]

# Two or more valid raw values per kind class, in preference order (the first is the one a minimal object uses).
# Keyed by class and looked up along the MRO, so a subclass of an existing kind inherits its row.
SAMPLES: dict[type[Kind], list[Any]] = {
    Bool: [False, True],
    Text: ["conformance one", "conformance two"],
    Domain: ["contoso.com", "fabrikam.com"],
    SenderDomain: ["partner.example.com", "*.partner.example.com"],
    SenderIp: ["203.0.113.10", "198.51.100.0/28"],
    SkipIp: ["192.0.2.1", "10.1.2.0/24"],
    SmartHost: ["mail.contoso.com", "198.51.100.25"],
    Email: ["admin@contoso.com", "ops@fabrikam.com"],
    Timestamp: ["2026-07-24T18:59:12Z", "2026-08-01T06:30:00Z"],
}


def samples(kind: Kind) -> list[Any]:
    """Valid raw values of ``kind``: its enumeration for a Choice, [] and one-item lists for a ListOf."""
    if isinstance(kind, ListOf):
        items = [[v] for v in samples(kind.item)]
        return items if kind.non_empty else [[], *items]
    if isinstance(kind, Choice):
        return [*kind.values, *([None] if kind.nullable else [])]
    for cls in type(kind).__mro__:
        if cls in SAMPLES:
            values = list(SAMPLES[cls])
            return values + [None] if getattr(kind, "nullable", False) else values
    raise LookupError(f"no conformance samples for value kind {type(kind).__name__}: add a row to SAMPLES")


def norm(fld: Field, raw: Any) -> Any:
    return fld.kind.parse(raw)


# ---------------------------------------------------------------------------------------------------- validity

_WORD = re.compile(r"[A-Za-z]+")


@lru_cache(maxsize=None)
def _problems(type_name: str, frozen: tuple[tuple[str, Any], ...]) -> tuple[tuple[str, frozenset[str]], ...]:
    """The spec's verdict on one raw object: (code, field names the diagnostic mentions) per problem."""
    spec = SPECS[type_name]
    raw = {k: _thaw(v) for k, v in frozen}
    normalised, diags = normalise_desired(spec, raw)
    if not diags:
        # Accepted domains too: what they do not declare is read from the tenant, whose seed holds the defaults.
        merged = effective(spec, normalised)
        diags = check_rules(spec, merged)
    out = []
    for d in diags:
        text = " ".join(str(x) for x in (d.summary, getattr(d, "allowed", "") or "", *d.path))
        out.append((d.code, frozenset(w for w in _WORD.findall(text) if spec.has_field(w))))
    return tuple(out)


def _freeze(obj: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in obj.items()))


def _thaw(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def problems(spec: ResourceSpec, obj: Mapping[str, Any]) -> tuple[tuple[str, frozenset[str]], ...]:
    return _problems(spec.type_name, _freeze(obj))


def valid(spec: ResourceSpec, obj: Mapping[str, Any]) -> bool:
    return not problems(spec, obj)


def _repair(spec: ResourceSpec, start: dict[str, Any], fixed: Mapping[str, Any], also: Sequence[dict[str, Any]] = (),
            budget: int = 200) -> dict[str, Any] | None:
    """The closest object to ``start`` (fewest fields changed) that keeps ``fixed`` and is valid, and stays valid
    with each of ``also`` laid over it. Best-first on (problems, changes), moving only fields that a problem's
    diagnostic names (then any field, if that finds nothing)."""
    def score(obj: dict[str, Any]) -> tuple[int, set[str]]:
        found = [p for o in [obj, *({**obj, **a} for a in also)] for p in problems(spec, o)]
        return len(found), set().union(*(names for _, names in found)) if found else set()

    for widen, left in ((False, budget), (True, budget // 10)):
        seen: set[tuple[tuple[str, Any], ...]] = set()
        counter = itertools.count()
        first = {**start, **fixed}
        n, names = score(first)
        queue = [(n, 0, next(counter), first, names)]
        while queue and left > 0:
            n, moves, _, obj, names = heapq.heappop(queue)
            if n == 0:
                return obj
            left -= 1
            movable = names if not widen else set(spec.names)
            for name in sorted(movable - set(fixed) - {spec.identity_field}):
                fld = spec.field(name)
                if fld.mode is Mode.READ_ONLY:
                    continue
                for value in samples(fld.kind):
                    nxt = {**obj, name: value}
                    key = _freeze(nxt)
                    if key in seen:
                        continue
                    seen.add(key)
                    m, nxt_names = score(nxt)
                    heapq.heappush(queue, (m, moves + 1, next(counter), nxt, nxt_names))
    return None


# ---------------------------------------------------------------------------------------------------- cases


@dataclass(frozen=True)
class Case:
    spec: ResourceSpec
    field: Field
    before: dict[str, Any]  # raw stack values, the field at its first value
    after: dict[str, Any]  # the field at a second value (plus companions the rules require)

    @property
    def id(self) -> str:
        return f"{self.spec.type_name}.{self.field.name}"

    @property
    def changed(self) -> set[str]:
        """Every field whose normalised value differs between ``before`` and ``after``."""
        names = set(self.before) | set(self.after)
        return {n for n in names if _value(self.spec, self.before, n) != _value(self.spec, self.after, n)}

    def params(self) -> set[str]:
        return {self.spec.field(n).param for n in self.changed}


def _value(spec: ResourceSpec, obj: Mapping[str, Any], name: str) -> Any:
    fld = spec.field(name)
    if name in obj:
        return norm(fld, obj[name])
    return None if fld.default is UNSET else fld.default


def identity_value(spec: ResourceSpec, label: str) -> Any:
    """A case's own identity: a connector name made from the case (so cases never meet), or a verified domain."""
    fld = spec.field(spec.identity_field)
    if isinstance(fld.kind, Text):
        return f"cf {label}"[: fld.kind.max_length]
    return samples(fld.kind)[0]


def minimal(spec: ResourceSpec, label: str = "minimal") -> dict[str, Any]:
    """The smallest valid object: identity, the fields New-* requires, then whatever the rules ask for."""
    start = {spec.identity_field: identity_value(spec, label)}
    for fld in spec.fields:
        if fld.required_on_create and fld.name != spec.identity_field and spec.creatable:
            start[fld.name] = samples(fld.kind)[0]
    found = _repair(spec, start, {spec.identity_field: start[spec.identity_field]})
    if found is None:
        raise AssertionError(f"no valid minimal {spec.type_name} from the samples: {problems(spec, start)}")
    return found


def _pairs(fld: Field) -> Iterator[tuple[Any, Any]]:
    values = samples(fld.kind)
    # From the service default first (the commonest real change), then any two distinct values.
    default = fld.default
    ordered = sorted(values, key=lambda v: 0 if default is not UNSET and norm(fld, v) == default else 1)
    for a, b in itertools.permutations(ordered, 2):
        if norm(fld, a) != norm(fld, b):
            yield a, b


def case_for(type_name: str, field_name: str) -> Case:
    """The update case of one field (cached: both front ends and the export test ask for the same ones)."""
    return _case(type_name, field_name)


@lru_cache(maxsize=None)
def _case(type_name: str, field_name: str) -> Case:
    spec = SPECS[type_name]
    return update_case(spec, spec.field(field_name))


def update_case(spec: ResourceSpec, fld: Field) -> Case:
    """Before/after objects for a change of ``fld``: alone if any pair of values allows it, else with the fewest
    companions."""
    ident = spec.identity_field
    label = f"{spec.type_name[:3]} {fld.name}"
    base = minimal(spec, label)
    if fld.mode is Mode.READ_ONLY and fld.name != ident:  # not declarable: the case is the refused declaration
        declared = {**base, fld.name: samples(fld.kind)[0]}
        return Case(spec, fld, declared, declared)
    if fld.name == ident:  # a rename (connectors) or another object (accepted domains)
        others = [v for v in samples(fld.kind) if norm(fld, v) != norm(fld, base[ident])]
        second = f"{base[ident]} renamed" if spec.renamable else others[0]
        return Case(spec, fld, base, {**base, ident: second})
    fallback: Case | None = None
    for a, b in _pairs(fld):
        joint = _repair(spec, {**base, fld.name: a}, {ident: base[ident], fld.name: a}, also=[{fld.name: b}])
        if joint is not None:
            return Case(spec, fld, joint, {**joint, fld.name: b})
        before = _repair(spec, {**base, fld.name: a}, {ident: base[ident], fld.name: a})
        if before is None:
            continue
        after = _repair(spec, {**before, fld.name: b}, {ident: base[ident], fld.name: b})
        if after is not None:
            case = Case(spec, fld, before, after)
            if fallback is None or len(case.changed) < len(fallback.changed):
                fallback = case
    if fallback is None:
        raise AssertionError(f"no valid pair of {spec.type_name} objects differing in {fld.name}")
    return fallback


def rich_variants(spec: ResourceSpec) -> list[dict[str, Any]]:
    """Objects that between them hold a non-default value of every writable field (the rules exclude some
    combinations, e.g. the two restrictDomainsTo* flags, so one object cannot)."""
    out: list[dict[str, Any]] = []
    covered: set[str] = set()
    for fld in spec.fields:
        if fld.mode is Mode.READ_ONLY or fld.name in covered:
            continue
        case = case_for(spec.type_name, fld.name)
        pick = case.after if _value(spec, case.after, fld.name) != fld.default else case.before
        obj = dict(pick)
        obj[spec.identity_field] = identity_value(spec, f"{spec.type_name[:3]} x {fld.name}")
        # Fill the rest with non-default values the rules allow.
        for other in spec.fields:
            if other.name in obj or other.mode is Mode.READ_ONLY:
                continue
            for value in samples(other.kind):
                if other.default is not UNSET and norm(other, value) == other.default:
                    continue
                if valid(spec, {**obj, other.name: value}):
                    obj[other.name] = value
                    break
        out.append(obj)
        covered |= {n for n in obj if _value(spec, obj, n) != spec.field(n).default}
        if not spec.renamable:
            break  # an accepted domain is one object per verified domain: one variant is all the tenant has
    return out


def field_params() -> list[tuple[str, str]]:
    """Every (type name, field name) of every spec: the matrix's parametrization."""
    return [(spec.type_name, fld.name) for spec in SPECS.values() for fld in spec.fields]
