"""Stack files: ``stacks/<stack>.yaml`` -> a validated :class:`Stack` of desired objects with line numbers.

Why this module exists: a mail admin must learn everything wrong with a stack file at once, each problem
pointing at ``FILE:LINE`` and the field path, before anything talks to the tenant. So the YAML is read into
nodes by a custom pyyaml loader that remembers the line of every key and list item, refuses duplicate keys
(plain pyyaml keeps the last one silently) and reads YAML 1.2 booleans only (``yes``/``on`` stay text and are
then refused by the boolean value kind instead of silently becoming ``true``). Field validation itself is
driven by the spec tables in :mod:`o365_mailflow.specs`; this module only knows the file's outer shape
(``tenant``, ``prune`` and one list per resource type).
"""

from __future__ import annotations

import dataclasses
import itertools
import re
import uuid
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence
from urllib.parse import urlsplit

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .errors import Diagnostic, Severity, StackError
from .shapes import Fields
from .specs import (
    RENAMED_FROM,
    SPECS,
    Bool,
    Choice,
    Domain,
    Kind,
    ResourceSpec,
    adopt_of,
    check_rules,
    did_you_mean,
    effective,
    name_key,
    normalise_desired,
    renamed_from_of,
    spec_for_stack_key,
)
from .tenant import CLOUD_NAMES, INITIAL_DOMAIN_SUFFIXES, TenantConfig, is_initial_domain

__all__ = [
    "DesiredObject",
    "Stack",
    "stack_path",
    "load_stack",
    "load_stack_text",
    "validate_stack",
    "top_level_keys",
    "TENANT_KEYS",
    "TENANT_KINDS",
    "SECRET_KEYS",
]

Path_ = tuple[str | int, ...]

# The outer shape of a stack file. Resource lists come from the spec tables (one key per ResourceSpec).
TENANT_KEYS: dict[str, str] = {
    "emulator": "true to use the local emulated tenant",
    "id": "the tenant GUID",
    "initialDomain": "the tenant's initial domain, e.g. contoso.onmicrosoft.com",
    "cloud": "commercial, gcchigh, dod or china",
    "endpoint": "admin API base URL override (https://...)",
    "authority": "token authority host override (https://...)",
    "caFile": "an extra CA certificate file to trust (path relative to the stack file)",
}
# Value kinds of the tenant keys that have one (docgen writes the editor schema from these same objects).
TENANT_KINDS: dict[str, Kind] = {"emulator": Bool(), "initialDomain": Domain(), "cloud": Choice(CLOUD_NAMES)}


def top_level_keys() -> tuple[str, ...]:
    """The keys of a stack file: tenant, prune and one list per registered resource type."""
    return ("tenant", "prune", *(spec.stack_key for spec in SPECS.values()))


# Keys that would put a credential in version control, compared case-insensitively and without - or _. Broad
# words such as "certificate" or "key" are left out on purpose: they are more likely a misspelt field name.
# Credentials come from the environment (azure-identity's names) or Pulumi config secrets, never the stack file.
SECRET_KEYS: frozenset[str] = frozenset({
    "clientsecret", "secret", "password", "certificatepassword", "privatekey", "certificatepath", "certificatethumbprint", "thumbprint", "token", "accesstoken", "refreshtoken",
    "federatedtoken", "federatedtokenfile", "clientid", "appid", "applicationid", "credential", "credentials",
    "clientassertion", "apikey",
})
_CREDENTIALS_HINT = (
    "credentials never go in a stack file (it is committed to git): set AZURE_CLIENT_ID with AZURE_CLIENT_SECRET "
    "or AZURE_CLIENT_CERTIFICATE_PATH in the environment, or use Pulumi config secrets "
    "(pulumi config set --secret o365-mailflow:clientSecret ...)"
)


@dataclass(frozen=True)
class DesiredObject:
    """One object a stack declares: its declared fields only (normalised), and where it was written."""

    spec: ResourceSpec
    name: str  # the identity: connector name or accepted domain name (normalised)
    fields: Fields  # declared fields, normalised by the spec kinds
    adopt: bool
    file: str
    line: int
    field_lines: dict[str, int]
    renamed_from: str | None = None  # a connector's previous name (renamedFrom): plan renames that object in place

    @cached_property
    def key(self) -> str:
        """The name as Exchange compares names (:func:`~o365_mailflow.specs.name_key`), worked out once: a plan
        of thousands of objects looks each one up several times."""
        return name_key(self.name)


@dataclass(frozen=True)
class Stack:
    """A validated stack file."""

    name: str
    path: Path
    tenant: TenantConfig
    prune: bool
    objects: tuple[DesiredObject, ...]

    def of_type(self, type_name: str) -> tuple[DesiredObject, ...]:
        return self._by_type.get(type_name, ())

    @cached_property
    def _by_type(self) -> dict[str, tuple[DesiredObject, ...]]:
        """The objects grouped by type once: a plan asks for each type's objects about ten times, and each
        scan of a stack of thousands of objects costs as much as the lookups it serves."""
        grouped: dict[str, list[DesiredObject]] = {}
        for obj in self.objects:
            grouped.setdefault(obj.spec.type_name, []).append(obj)
        return {name: tuple(objs) for name, objs in grouped.items()}


# ---------------------------------------------------------------------------------------------------------------------
# YAML with line numbers
# ---------------------------------------------------------------------------------------------------------------------

_BOOL_TAG = "tag:yaml.org,2002:bool"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_STR_TAG = "tag:yaml.org,2002:str"
# Key tags that SafeConstructor.flatten_mapping rewrites: merge keys (<<) and the rare value key (=).
_FLATTENED_TAGS = frozenset({"tag:yaml.org,2002:merge", "tag:yaml.org,2002:value"})


def _yaml12(base: Any) -> Any:
    """``base`` (a pyyaml loader class) with YAML 1.2 booleans (only true/false) and no implicit timestamps (they
    stay text, which the timestamp value kind parses itself)."""
    loader: Any = type(f"_YAML12{base.__name__}", (base,), {})
    loader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag not in (_BOOL_TAG, _TIMESTAMP_TAG)]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    loader.add_implicit_resolver(_BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
    if not loader.yaml_path_resolvers:
        loader.resolve = _resolver(loader)
    return loader


def _resolver(loader: Any) -> Callable[[Any, Any, Any, Any], str | None]:
    """``loader``'s BaseResolver.resolve (which it has no path resolvers for), with each first character's implicit
    resolvers joined to the wildcard ones once: the composer, libyaml's too, calls it for every node of the file,
    and pyyaml's builds that list again for every scalar. (The table is read here: our loaders add no resolver
    later.)"""
    table: dict[str | None, list[tuple[str, re.Pattern[str]]]] = loader.yaml_implicit_resolvers
    wildcard = tuple(table.get(None, ()))
    by_first = {first: tuple(resolvers) + wildcard for first, resolvers in table.items() if first is not None}
    scalar_tag: str = loader.DEFAULT_SCALAR_TAG
    sequence_tag: str = loader.DEFAULT_SEQUENCE_TAG
    mapping_tag: str = loader.DEFAULT_MAPPING_TAG

    def resolve(self: Any, kind: Any, value: Any, implicit: Any) -> str | None:
        if kind is ScalarNode:
            if implicit[0]:
                for tag, regexp in by_first.get(value[:1], wildcard):  # value[:1] is "" for "", as pyyaml keys it
                    if regexp.match(value):
                        return tag
            return scalar_tag
        if kind is SequenceNode:
            return sequence_tag
        return mapping_tag if kind is MappingNode else None

    return resolve


# libyaml's parser when pyyaml was built with it: ten times faster on stacks with thousands of objects, and the
# nodes carry the same line marks. The resolvers are Python either way. The pure-Python parser stays at hand: it
# has no limits of its own, so it tells whether a file libyaml gave up on breaks one of ours (see _check_structure).
_PyLoader: Any = _yaml12(yaml.SafeLoader)
_Loader: Any = _yaml12(yaml.CSafeLoader) if hasattr(yaml, "CSafeLoader") else _PyLoader


def _short_tag(tag: str) -> str:
    """``tag:yaml.org,2002:int`` as its author wrote it, ``!!int``; other tags as they are."""
    return "!!" + tag[len("tag:yaml.org,2002:"):] if tag.startswith("tag:yaml.org,2002:") else tag


def _shown(node: Node) -> str:
    """A scalar's text as the author wrote it (the first 60 characters)."""
    return repr(node.value[:60]) if isinstance(node, ScalarNode) else "this value"


class _Reader:
    """Turns a composed node tree into plain Python values, recording the line of every path: a mapping key's in
    ``key_lines`` (each mapping's key -> line, by the mapping's path: a stack object's field lines are then one
    look-up, and no path is built per key), any other path's (list items, the root) in ``lines``."""

    def __init__(self, loader: Any, file: str) -> None:
        self.loader = loader
        self.file = file
        self.lines: dict[Path_, int] = {}
        self.key_lines: dict[Path_, dict[str, int]] = {}
        self.diags: list[Diagnostic] = []

    def error(self, path: Path_, line: int, summary: str, *, allowed: str | None = None, code: str = "") -> None:
        self.diags.append(Diagnostic(Severity.ERROR, path, summary, allowed=allowed, file=self.file, line=line,
                                     code=code))

    def read(self, node: Node, path: Path_) -> Any:
        self.lines.setdefault(path, node.start_mark.line + 1)
        return self._value(node, path)

    def _value(self, node: Node, path: Path_) -> Any:
        """``node`` as a value, its own line already recorded. Text scalars (most of a stack) are read inline by
        the callers below: a stack of thousands of objects has hundreds of thousands of them."""
        if isinstance(node, MappingNode):
            return self._mapping(node, path)
        if isinstance(node, SequenceNode):
            return self._sequence(node, path)
        if node.tag == _STR_TAG:
            return node.value  # what the constructor would return, without its per-node bookkeeping
        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.YAMLError as exc:
            self.error(path, node.start_mark.line + 1, f"cannot read this value: {getattr(exc, 'problem', exc)}",
                       code="yaml.value")
            return None
        except (ValueError, TypeError, KeyError, OverflowError):
            # An explicit tag the text does not fit (`!!int x`, `!!bool maybe`, `!!timestamp 2020-13-45`): pyyaml's
            # constructors raise plain Python errors for these, not YAMLError.
            tag = _short_tag(node.tag)
            self.error(path, node.start_mark.line + 1,
                       f"cannot read {_shown(node)} as {tag}: remove the {tag} tag or write a value of that type",
                       code="yaml.value")
            return None

    def _sequence(self, node: SequenceNode, path: Path_) -> list[Any]:
        lines = self.lines
        out: list[Any] = []
        for index, item in enumerate(node.value):
            where = path + (index,)
            if where not in lines:
                lines[where] = item.start_mark.line + 1
            if item.__class__ is MappingNode:  # a resource list's objects, straight to the mapping reader
                out.append(self._mapping(item, where))
            else:
                out.append(item.value if item.tag == _STR_TAG and isinstance(item, ScalarNode)
                           else self._value(item, where))
        return out

    def _mapping(self, node: MappingNode, path: Path_) -> dict[str, Any]:
        for key_node, _ in node.value:
            if key_node.tag in _FLATTENED_TAGS:
                break
        else:
            return self._plain_mapping(node, path)
        explicit = {id(key) for key, _ in node.value}
        try:
            self.loader.flatten_mapping(node)  # YAML merge keys (<<: *anchor); explicit keys win over merged ones
        except yaml.YAMLError as exc:
            self.error(path, node.start_mark.line + 1, f"bad merge key: {getattr(exc, 'problem', exc)}",
                       code="yaml.merge")
        keys = [key_node.value if key_node.tag == _STR_TAG and isinstance(key_node, ScalarNode)
                else self._key(key_node, path) for key_node, _ in node.value]
        # A merged key that an explicit one overrides is never read, so its lines are never recorded (forgetting
        # them afterwards meant scanning every recorded path: quadratic in the file's size).
        overridden = {k for k, (key_node, _) in zip(keys, node.value) if id(key_node) in explicit}
        out: dict[str, Any] = {}
        key_lines = self.key_lines[path] = {}
        seen: dict[str, int] = {}
        explicit_seen: set[str] = set()
        for key, (key_node, value_node) in zip(keys, node.value):
            line = key_node.start_mark.line + 1
            if not isinstance(key, str):
                self.error(path, line, f"keys must be text, got {key!r}", code="yaml.key")
                continue
            is_explicit = id(key_node) in explicit
            if not is_explicit and key in overridden:
                continue
            if key in seen:
                if not is_explicit:  # merged keys never override
                    continue
                if key in explicit_seen:
                    self.error(path + (key,), line, f"duplicate key {key!r} (first at line {seen[key]}); YAML would "
                               "silently keep only the last", code="yaml.duplicate-key")
                    continue
            seen[key] = line
            if is_explicit:
                explicit_seen.add(key)
            key_lines[key] = line  # the key's line, as in _plain_mapping
            out[key] = (value_node.value if value_node.tag == _STR_TAG and isinstance(value_node, ScalarNode)
                        else self._value(value_node, path + (key,)))
        return out

    def _plain_mapping(self, node: MappingNode, path: Path_) -> dict[str, Any]:
        """:meth:`_mapping` of a mapping without merge keys (nothing to flatten: every key is explicit)."""
        keys = [key_node.value if key_node.tag == _STR_TAG and isinstance(key_node, ScalarNode)
                else self._key(key_node, path) for key_node, _ in node.value]
        out: dict[str, Any] = {}
        key_lines = self.key_lines[path] = {}
        for key, (key_node, value_node) in zip(keys, node.value):
            line = key_node.start_mark.line + 1
            if not isinstance(key, str):
                self.error(path, line, f"keys must be text, got {key!r}", code="yaml.key")
                continue
            if key in out:  # read before, so its line is recorded
                self.error(path + (key,), line, f"duplicate key {key!r} (first at line {key_lines[key]}); YAML would "
                           "silently keep only the last", code="yaml.duplicate-key")
                continue
            key_lines[key] = line  # the key's line: the value's own line is never recorded over it
            out[key] = (value_node.value if value_node.tag == _STR_TAG and isinstance(value_node, ScalarNode)
                        else self._value(value_node, path + (key,)))
        return out

    def _key(self, key_node: Node, path: Path_) -> Any:
        if not isinstance(key_node, ScalarNode):
            return None
        if key_node.tag == _STR_TAG:
            return key_node.value
        key = self.read(key_node, path + ("<key>",))
        self.lines.pop(path + ("<key>",), None)
        return key


# Bounds on what a small file may make the loader build. Anchors and aliases are shared nodes, and the reader
# below walks (and copies) an aliased value once per use, so ten aliases per level over a few levels ("billion
# laughs") would take minutes or exhaust memory; a self-referencing alias would never end. Real stacks use a
# handful of aliases for shared settings, and nest about six levels deep: both limits are far above that.
MAX_ALIAS_EXPANSION = 100_000  # values that aliases (and << merges of them) may add to one file
MAX_NESTING = 200  # lists and mappings inside each other; the reader recurses per level


def _too_deep(file: str, mark: Any) -> list[Diagnostic]:
    return [Diagnostic(Severity.ERROR, (), f"lists and mappings are nested more than {MAX_NESTING} levels deep here "
                       f"(column {mark.column + 1}); a stack file needs only a few levels", file=file,
                       line=mark.line + 1, code="yaml.too-deep")]


def _check_events(text: str, file: str, loader_class: Any = None) -> list[Diagnostic]:
    """The limits of :func:`_check_structure`, checked on the parser's events instead of composed nodes.

    Used only when composing failed: the parser is not recursive (unlike pyyaml's pure-Python composer), so it
    can walk a file nested thousands of levels deep. Syntax errors are left to the caller, which reports the
    composer's with their line.

    libyaml has limits of its own that it may reach before ours: PyYAML 6.0.4's stops at 1,000 nesting levels,
    and on ``[[[[...`` its scanner reads that far ahead (each ``[`` might open an implicit key) before the parser
    hands us the 201st level. So when libyaml gives up, the pure-Python parser (no such limit, same events) walks
    the file again: a file that breaks one of our limits gets our diagnostic whichever layer noticed first, and
    only a real syntax error goes on to the composer.
    """
    def diag(mark: Any, summary: str, code: str) -> list[Diagnostic]:
        return [Diagnostic(Severity.ERROR, (), summary, file=file, line=mark.line + 1, code=code)]

    sizes: dict[str, int] = {}  # anchor -> values its node expands to
    open_nodes: list[list[Any]] = [[None, 0]]  # [anchor, values so far] of each unfinished collection
    added = 0
    try:
        for event in yaml.parse(text, Loader=loader_class or _Loader):
            if isinstance(event, yaml.AliasEvent):
                if any(anchor == event.anchor for anchor, _ in open_nodes):
                    return diag(event.start_mark, f"the alias *{event.anchor} refers to the value that contains "
                                "it, which would never end; copy the settings instead", "yaml.alias-cycle")
                size = sizes.get(event.anchor, 1) if event.anchor is not None else 1  # an unknown anchor is reported by the composer
                added += size
                if added > MAX_ALIAS_EXPANSION:
                    return diag(event.start_mark, f"the alias *{event.anchor} makes the file expand to more than "
                                f"{MAX_ALIAS_EXPANSION:,} values (aliases of aliases multiply); write the values "
                                "out or use fewer nested aliases", "yaml.alias-expansion")
                open_nodes[-1][1] += size
            elif isinstance(event, yaml.ScalarEvent):
                if event.anchor is not None:
                    sizes[event.anchor] = 1
                open_nodes[-1][1] += 1
            elif isinstance(event, yaml.CollectionStartEvent):
                if len(open_nodes) > MAX_NESTING:
                    return _too_deep(file, event.start_mark)
                open_nodes.append([event.anchor, 0])
            elif isinstance(event, yaml.CollectionEndEvent) and len(open_nodes) > 1:
                anchor, size = open_nodes.pop()
                if anchor is not None:
                    sizes[anchor] = size + 1
                open_nodes[-1][1] += size + 1
    except yaml.YAMLError:
        if (loader_class or _Loader) is _PyLoader:
            return []
        return _check_events(text, file, _PyLoader)
    return []



class _Refused(Exception):
    """Carries :func:`_check_structure`'s diagnostic out of its walk."""

    def __init__(self, diags: list[Diagnostic]) -> None:
        super().__init__()
        self.diags = diags


def _check_structure(root: Node, file: str) -> list[Diagnostic]:
    """Refuse self-referencing aliases, too much alias expansion and too deep nesting, before reading the nodes.

    One pass over the composed nodes, which share one node per anchor however often it is aliased (so the pass
    is linear in the file whatever the aliases do): a node met a second time is an alias (or a merge key) and adds
    its whole expanded size. It runs on the node tree that is read afterwards, so the file is parsed once. The
    walk recurses at most MAX_NESTING levels (deeper is refused first); the composer (libyaml's when available) is
    not recursive in Python.
    """
    def diag(node: Node, summary: str, code: str) -> list[Diagnostic]:
        return [Diagnostic(Severity.ERROR, (), summary, file=file, line=node.start_mark.line + 1, code=code)]

    sizes: dict[int, int] = {}  # node -> values it expands to, once it has been read
    on_path: set[int] = set()
    added = 0

    def walk(node: Node, depth: int) -> int:
        """The values ``node`` (a collection ``depth`` levels deep) expands to: 1, one per scalar (aliased or
        not, a scalar adds one value) and each nested collection's size."""
        nonlocal added
        on_path.add(id(node))
        size = 1
        children = itertools.chain.from_iterable(node.value) if isinstance(node, MappingNode) else node.value
        for child in children:
            if isinstance(child, ScalarNode):
                size += 1
                continue
            known = sizes.get(id(child))
            if id(child) in on_path:
                raise _Refused(diag(node, "an alias here refers to the value that contains it, which would never "
                                    "end; copy the settings instead", "yaml.alias-cycle"))
            if known is not None:
                added += known
                if added > MAX_ALIAS_EXPANSION:
                    raise _Refused(diag(node, f"an alias here makes the file expand to more than "
                                        f"{MAX_ALIAS_EXPANSION:,} values (aliases of aliases multiply); write the "
                                        "values out or use fewer nested aliases", "yaml.alias-expansion"))
                size += known
            elif depth >= MAX_NESTING:  # child would be collection number MAX_NESTING + 1
                raise _Refused(_too_deep(file, child.start_mark))
            else:
                size += walk(child, depth + 1)
        on_path.discard(id(node))
        sizes[id(node)] = size
        return size

    if not isinstance(root, (MappingNode, SequenceNode)):
        return []
    try:
        walk(root, 1)
    except _Refused as refused:
        return refused.diags
    return []


# What YAML lets a stream hold (YAML 1.1 section 5.1, enforced by pyyaml and libyaml alike): tab, line breaks
# and printable characters. Checked here first so that a binary file or a stray NUL is named by line and column
# instead of the parser's character offset into "<unicode string>". pyyaml's own compiled pattern: the very set
# it enforces, and compiling that class again would cost every process ~10 ms of start-up.
_NOT_PRINTABLE: re.Pattern[str] = yaml.reader.Reader.NON_PRINTABLE


def _check_characters(text: str, file: str) -> list[Diagnostic]:
    """A NUL anywhere (the mark of a binary file), else the first character YAML does not allow."""
    at = text.find("\x00")
    if at < 0:
        found = _NOT_PRINTABLE.search(text)
        if found is None:
            return []
        at = found.start()
    line = text.count("\n", 0, at) + 1
    column = at - text.rfind("\n", 0, at)
    where = f"line {line}, column {column}"
    if text[at] == "\x00":
        summary = (f"the stack file holds a NUL byte at {where}: it looks like a binary file, not YAML text; "
                   "save the stack as plain UTF-8 text")
        code = "stack.binary"
    else:
        summary = (f"the stack file holds the character U+{ord(text[at]):04X} at {where}, a control character "
                   "YAML does not allow; delete it (editors may show it as a box, or ^ and a letter)")
        code = "stack.control-character"
    return [Diagnostic(Severity.ERROR, (), summary, file=file, line=line, code=code)]


def _syntax_problem(text: str, exc: yaml.MarkedYAMLError) -> str:
    """pyyaml's wording, except for a tab where indentation belongs: libyaml says only "found character that
    cannot start any token", which does not tell an admin that the editor inserted a tab."""
    mark = exc.problem_mark or exc.context_mark
    if mark is not None:
        lines = text.splitlines()
        row = lines[mark.line] if 0 <= mark.line < len(lines) else ""
        if row[mark.column:mark.column + 1] == "\t" or (mark.column >= len(row) and "\t" in row):
            return (f"a tab at line {mark.line + 1}, column {mark.column + 1}: tabs are not allowed for "
                    "indentation in YAML; use spaces")
    return " ".join(str(p) for p in (exc.context, exc.problem) if p)


def _parse_yaml(text: str, file: str) -> tuple[Any, dict[Path_, int], dict[Path_, dict[str, int]], list[Diagnostic]]:
    refused = _check_characters(text, file)
    if refused:
        return None, {}, {}, refused
    loader = _Loader(text)
    reader = _Reader(loader, file)
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            # libyaml has limits of its own (PyYAML 6.0.4's stops at 1,000 nesting levels): a file that breaks one
            # of ours gets our diagnostic, whichever layer noticed first; only a real syntax error is reported as one.
            refused = _check_events(text, file, _PyLoader)
            if refused:
                return None, {}, {}, refused
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark else None
            return None, {}, {}, [Diagnostic(Severity.ERROR, (), f"not valid YAML: {_syntax_problem(text, exc)}",
                                             file=file, line=line, code="yaml.syntax")]
        except yaml.YAMLError as exc:
            return None, {}, {}, [Diagnostic(Severity.ERROR, (), f"not valid YAML: {exc}", file=file,
                                             code="yaml.syntax")]
        except RecursionError:  # the pure-Python composer (no libyaml) on thousands of nesting levels
            return None, {}, {}, _check_events(text, file, _PyLoader) or [Diagnostic(
                Severity.ERROR, (), f"lists and mappings are nested more than {MAX_NESTING} levels deep",
                file=file, code="yaml.too-deep")]
        if node is None:
            return None, {}, {}, [Diagnostic(Severity.ERROR, (), "the stack file is empty; it needs at least a "
                                             "tenant: section", file=file, line=1, code="stack.empty")]
        refused = _check_structure(node, file)
        if refused:
            return None, {}, {}, refused
        try:
            data = reader.read(node, ())
        except RecursionError:  # _check_structure refuses what could get here; this keeps a crash a diagnostic
            return None, {}, {}, _too_deep(file, node.start_mark)
    finally:
        loader.dispose()
    return data, reader.lines, reader.key_lines, reader.diags


# ---------------------------------------------------------------------------------------------------------------------
# Validation of the outer shape
# ---------------------------------------------------------------------------------------------------------------------


class _Context:
    """Collects diagnostics and locates them in the file."""

    def __init__(self, file: str, lines: Mapping[Path_, int], key_lines: Mapping[Path_, dict[str, int]]) -> None:
        self.file = file
        self.lines = lines
        self.key_lines = key_lines
        self.diags: list[Diagnostic] = []

    def line_at(self, path: Path_) -> int | None:
        """The recorded line of ``path`` itself (a mapping key's in the key lines of its mapping)."""
        line = self.lines.get(path)
        if line is None and path and isinstance(path[-1], str):
            keys = self.key_lines.get(path[:-1])
            if keys is not None:
                line = keys.get(path[-1])
        return line

    def line_of(self, path: Path_) -> int | None:
        """The line of ``path``, or of its closest ancestor the file has (a missing key points at its parent)."""
        for end in range(len(path), -1, -1):
            line = self.line_at(path[:end])
            if line is not None:
                return line
        return None

    def locate(self, diag: Diagnostic) -> Diagnostic:
        if diag.file:
            return diag
        return dataclasses.replace(diag, file=self.file, line=self.line_of(diag.path))

    def add(self, diags: Iterable[Diagnostic]) -> None:
        self.diags.extend(self.locate(d) for d in diags)

    def error(self, path: Path_, summary: str, *, allowed: str | None = None, code: str = "") -> None:
        self.add([Diagnostic(Severity.ERROR, path, summary, allowed=allowed, code=code)])

    def check(self, kind: Kind, raw: Any, path: Path_, code: str, *, allowed: str | None = None) -> tuple[Any, bool]:
        """One outer-shape value checked by a value kind: ``(normalised, ok)``, its problems reported at ``path``."""
        value, problems = kind.validate(raw)
        for p in problems:
            self.error(path, p.message, allowed=allowed or p.allowed, code=code)
        return value, not problems


def _normal_key(key: str) -> str:
    return key.replace("-", "").replace("_", "").lower()


def _check_keys(ctx: _Context, data: Mapping[str, Any], allowed: Iterable[str], path: Path_, where: str) -> None:
    """Unknown keys (with a "did you mean") and credentials at this level."""
    names = list(allowed)
    for key in data:
        if key in names:
            continue
        if _normal_key(key) in SECRET_KEYS:
            ctx.error(path + (key,), f"{key} looks like a credential; {_CREDENTIALS_HINT}", code="stack.secret")
            continue
        ctx.error(path + (key,), f"unknown key {key!r} in {where}{did_you_mean(key, names)}",
                  allowed=", ".join(names), code="stack.unknown-key")


_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def _https_url(ctx: _Context, path: Path_, value: Any) -> str | None:
    if not isinstance(value, str) or urlsplit(value.strip()).scheme != "https" or not urlsplit(value.strip()).hostname:
        ctx.error(path, f"expected an https:// URL, got {value!r}; TLS verification is never turned off",
                  allowed="https://host[:port]", code="tenant.url")
        return None
    return value.strip().rstrip("/")


def _tenant(ctx: _Context, raw: Any, base_dir: Path | None) -> TenantConfig | None:
    path: Path_ = ("tenant",)
    if raw is None:
        ctx.error(path, "a tenant: section is required (emulator: true, or id / initialDomain of the tenant)",
                  allowed=", ".join(TENANT_KEYS), code="tenant.missing")
        return None
    if not isinstance(raw, Mapping):
        ctx.error(path, f"tenant must be a mapping, got {raw!r}", allowed=", ".join(TENANT_KEYS), code="tenant.shape")
        return None
    _check_keys(ctx, raw, TENANT_KEYS, path, "the tenant section")
    ok = True
    emulator = False
    if "emulator" in raw:
        value, good = ctx.check(TENANT_KINDS["emulator"], raw["emulator"], path + ("emulator",), "tenant.emulator")
        ok &= good
        emulator = bool(value)
    tenant_id = None
    if raw.get("id") is not None:
        text = str(raw["id"]).strip()
        if _GUID.match(text):
            tenant_id = str(uuid.UUID(text))
        else:
            ok = False
            ctx.error(path + ("id",), f"{raw['id']!r} is not a tenant GUID (find it in the Entra admin center, "
                      "Overview, Tenant ID)", allowed="GUID such as 6f1c2d3e-4b5a-4c7d-8e9f-0a1b2c3d4e5f",
                      code="tenant.id")
    initial_domain = None
    if raw.get("initialDomain") is not None:
        initial_domain, good = ctx.check(TENANT_KINDS["initialDomain"], raw["initialDomain"], path + ("initialDomain",),
                                         "tenant.initial-domain", allowed="domain such as contoso.onmicrosoft.com")
        ok &= good
        if good and initial_domain and not is_initial_domain(initial_domain):
            ok = False
            ctx.error(path + ("initialDomain",),
                      f"{initial_domain} is not the tenant's initial domain: Exchange Online routes app-only calls "
                      "by the initial domain or the tenant id, never a custom domain. Use the .onmicrosoft.com "
                      "domain (Microsoft 365 admin center, Settings, Domains), or remove initialDomain and set id",
                      allowed=", ".join(f"<name>{s}" for s in INITIAL_DOMAIN_SUFFIXES),
                      code="tenant.initial-domain-not-initial")
    cloud = "commercial"
    if "cloud" in raw:
        value, good = ctx.check(TENANT_KINDS["cloud"], raw["cloud"], path + ("cloud",), "tenant.cloud")
        ok &= good
        cloud = value or cloud
    endpoint = authority = None
    if raw.get("endpoint") is not None:
        endpoint = _https_url(ctx, path + ("endpoint",), raw["endpoint"])
        ok &= endpoint is not None
    if raw.get("authority") is not None:
        authority = _https_url(ctx, path + ("authority",), raw["authority"])
        ok &= authority is not None
    ca_file = None
    if raw.get("caFile") is not None:
        if not isinstance(raw["caFile"], str) or not raw["caFile"].strip():
            ok = False
            ctx.error(path + ("caFile",), f"expected a file path, got {raw['caFile']!r}", code="tenant.ca-file")
        else:
            ca = Path(raw["caFile"].strip()).expanduser()
            if not ca.is_absolute() and base_dir is not None:
                ca = base_dir / ca  # relative to the stack file, not to wherever mailflow runs
            ca_file = str(ca)
    if ok and not emulator and not tenant_id and not initial_domain:
        ok = False
        ctx.error(path, "the tenant section must say which tenant: id (GUID) or initialDomain, or emulator: true",
                  allowed=", ".join(TENANT_KEYS), code="tenant.which")
    if not ok:
        return None
    return TenantConfig(emulator=emulator, tenant_id=tenant_id, initial_domain=initial_domain, cloud=cloud,
                        endpoint=endpoint, authority=authority, ca_file=ca_file)


def _objects(ctx: _Context, spec: ResourceSpec, raw: Any) -> list[DesiredObject]:
    key = spec.stack_key
    if raw is None:
        return []
    if not isinstance(raw, list):
        ctx.error((key,), f"{key} must be a list of {spec.type_name} objects (each item starting with -)",
                  code="stack.shape")
        return []
    out: list[DesiredObject] = []
    indexes: list[int] = []  # each object's index in the file's list (invalid items are left out of ``out``)
    first_seen: dict[str, tuple[int, int | None]] = {}
    known = spec.by_name
    lines_get = ctx.lines.get
    for index, item in enumerate(raw):
        path: Path_ = (key, index)
        if item.__class__ is not dict and not isinstance(item, Mapping):  # the reader's dicts skip the ABC check
            ctx.error(path, f"each item of {key} must be a mapping of fields, got {item!r}", code="stack.shape")
            continue
        # The spec's own field names are never credentials: only the other keys are worth normalising.
        secrets = [k for k in item if k not in known and _normal_key(k) in SECRET_KEYS]
        for field_key in secrets:
            ctx.error(path + (field_key,), f"{field_key} looks like a credential; {_CREDENTIALS_HINT}",
                      code="stack.secret")
        clean = {k: v for k, v in item.items() if k not in secrets} if secrets else item
        fields, diags = normalise_desired(spec, clean, path)
        if diags:
            ctx.add(diags)
        adopt = adopt_of(item)
        # Rules run on what is known: a created object takes the service defaults for undeclared fields; an
        # adopted one (or an accepted domain, which always exists) is unknown beyond what it declares. A field
        # whose value was refused above is left out, so the rules that read it are skipped, not misfired.
        # (fields holds keys of clean only, so when it has as many, none failed.)
        failed = [k for k in clean if k not in fields] if len(fields) != len(clean) else ()
        merged = effective(spec, fields) if spec.creatable and not adopt else dict(fields)
        for name in failed:
            merged.pop(name, None)
        broken = check_rules(spec, merged, path, declared=fields.keys())
        if broken:
            ctx.add(broken)
        identity = fields.get(spec.identity_field)
        if not isinstance(identity, str):
            continue
        folded = identity.casefold()
        line = lines_get(path) or ctx.line_of(path) or 0  # the item's own line, which the reader records
        if folded in first_seen:
            first_index, first_line = first_seen[folded]
            what = "connector name" if spec.identity_field == "name" else "domain"
            ctx.error(path + (spec.identity_field,),
                      f"duplicate {what} {identity!r}: {key}[{first_index}] (line {first_line}) already declares it "
                      f"(names are compared case-insensitively)", code="stack.duplicate")
            continue
        first_seen[folded] = (index, line)
        field_lines = ctx.key_lines[path]  # the reader records every mapping's key lines (nothing changes them later)
        out.append(DesiredObject(spec=spec, name=identity, fields=fields, adopt=adopt, file=ctx.file, line=line,
                                 field_lines=field_lines, renamed_from=renamed_from_of(spec, item)))
        indexes.append(index)
    _check_renames(ctx, spec, out, indexes)
    return out


def _check_renames(ctx: _Context, spec: ResourceSpec, objects: list[DesiredObject], indexes: list[int]) -> None:
    """renamedFrom across the objects of one type: the old name must be free, and claimed by one object only.

    Otherwise the plan could not tell which connector is which: renaming A to B while another object keeps (or
    becomes) A, or two objects both taking over A, would reuse one Guid twice or chain renames in one apply.
    """
    key = spec.stack_key
    names = {o.name.casefold(): i for i, o in zip(indexes, objects)}
    claimed: dict[str, int] = {}
    for index, obj in zip(indexes, objects):
        old = obj.renamed_from
        if old is None:
            continue
        where = (key, index, RENAMED_FROM)
        folded = old.casefold()
        if folded in names and names[folded] != index:  # a case-only rename names itself: allowed
            other = names[folded]
            line = ctx.line_of((key, other))
            ctx.error(where, f"{RENAMED_FROM} {old!r} is the name of {key}[{other}] (line {line}), "
                             f"which this stack still declares: a connector cannot take over a name another one keeps. "
                             f"Rename one connector per apply, or remove {RENAMED_FROM}", code="stack.renamed-from")
        elif folded in claimed:
            first = claimed[folded]
            ctx.error(where, f"{RENAMED_FROM} {old!r} is already claimed by {key}[{first}] "
                             f"(line {ctx.line_of((key, first))}): only one connector can be renamed from a name",
                      code="stack.renamed-from")
        else:
            claimed[folded] = index


def _build(data: Any, lines: Mapping[Path_, int], file: str, name: str, path: Path, yaml_diags: list[Diagnostic],
           key_lines: Mapping[Path_, dict[str, int]]) -> tuple[Stack | None, list[Diagnostic]]:
    ctx = _Context(file, lines, key_lines)
    ctx.diags.extend(yaml_diags)
    if data is None and yaml_diags:
        return None, ctx.diags
    if not isinstance(data, Mapping):
        ctx.error((), "a stack file must be a mapping with tenant:, prune: and the resource lists",
                  allowed=", ".join(top_level_keys()), code="stack.shape")
        return None, ctx.diags
    _check_keys(ctx, data, top_level_keys(), (), "the stack file")
    tenant = _tenant(ctx, data.get("tenant"), path.parent if str(path) else None)
    prune = False
    if "prune" in data:
        value, _ = ctx.check(Bool(), data["prune"], ("prune",), "stack.prune")
        prune = bool(value)
    objects: list[DesiredObject] = []
    for spec in SPECS.values():
        objects.extend(_objects(ctx, spec, data.get(spec.stack_key)))
    ctx.diags.sort(key=lambda d: d.line or 0)  # in file order (stable: same line keeps discovery order)
    errors = [d for d in ctx.diags if d.severity is Severity.ERROR]
    if errors or tenant is None:
        return None, ctx.diags
    return Stack(name=name, path=path, tenant=tenant, prune=prune, objects=tuple(objects)), ctx.diags


def _parse(text: str, *, file: str, name: str, path: Path) -> tuple[Stack | None, list[Diagnostic]]:
    data, lines, key_lines, yaml_diags = _parse_yaml(text, file)
    return _build(data, lines, file, name, path, yaml_diags, key_lines)


# ---------------------------------------------------------------------------------------------------------------------
# Public entry points
# ---------------------------------------------------------------------------------------------------------------------


def _looks_like_file(name_or_file: str) -> bool:
    return name_or_file.endswith((".yaml", ".yml")) or "/" in name_or_file or "\\" in name_or_file


def stack_path(name_or_file: str, root: Path | None = None) -> Path:
    """``"dev"`` -> ``<root>/stacks/dev.yaml``; a path (or anything ending in .yaml/.yml) is returned as is.

    Without ``root`` the current directory and its parents are searched for ``stacks/<name>.yaml`` so the
    command works from a subdirectory of the project; if none has it, ``./stacks/<name>.yaml`` is returned.
    """
    if _looks_like_file(name_or_file) or (root is None and Path(name_or_file).is_file()):
        return Path(name_or_file)
    if root is not None:
        return root / "stacks" / f"{name_or_file}.yaml"
    cwd = Path.cwd()
    relative = Path("stacks") / f"{name_or_file}.yaml"  # messages then show stacks/dev.yaml, as the user thinks of it
    if relative.is_file():
        return relative
    for directory in cwd.parents:
        candidate = directory / relative
        if candidate.is_file():
            return candidate
    return relative


def _stack_name(path: Path) -> str:
    return path.stem


def load_stack_text(text: str, *, file: str, name: str) -> Stack:
    """Load a stack from text (a baseline from git, a test). Raises :class:`StackError` with every error."""
    stack, diags = _parse(text, file=file, name=name, path=Path(file))
    if stack is None:
        raise StackError(tuple(diags))
    return stack


def _load_file(path: Path, name: str | None) -> tuple[Stack | None, list[Diagnostic]]:
    file = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None, [Diagnostic(Severity.ERROR, (), "the stack file does not exist", file=file, code="stack.missing")]
    except OSError as exc:
        return None, [Diagnostic(Severity.ERROR, (), f"cannot read the stack file: {exc}", file=file,
                                 code="stack.unreadable")]
    if b"\x00" in raw:  # a binary file: say so, rather than name whichever of its bytes is not UTF-8
        return None, _check_characters(raw.decode("utf-8", errors="replace"), file)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, [_not_utf8(raw, exc, file)]
    return _parse(text, file=file, name=name or _stack_name(path), path=path)


def _not_utf8(raw: bytes, exc: UnicodeDecodeError, file: str) -> Diagnostic:
    """Where the first byte that is not UTF-8 sits, as a line and column (a byte offset means nothing to an
    admin looking at the file in an editor)."""
    line_start = raw.rfind(b"\n", 0, exc.start) + 1
    line = raw.count(b"\n", 0, exc.start) + 1
    column = len(raw[line_start:exc.start].decode("utf-8", errors="replace")) + 1
    return Diagnostic(Severity.ERROR, (), f"the stack file is not UTF-8 text: byte 0x{raw[exc.start]:02x} at line "
                      f"{line}, column {column} cannot be read; save the file as UTF-8", file=file, line=line,
                      code="stack.encoding")


def load_stack(path: Path, *, name: str | None = None) -> Stack:
    """Load and validate ``path``. Raises :class:`StackError` carrying every error (not only the first)."""
    stack, diags = _load_file(Path(path), name)
    if stack is None:
        raise StackError(tuple(diags))
    return stack


def _locate_by_objects(stack: Stack, diags: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Give diagnostics that lack a location the file and line of the object and field they name."""
    out: list[Diagnostic] = []
    by_type: dict[str, tuple[DesiredObject, ...]] = {}  # each type listed once, not once per diagnostic
    for diag in diags:
        if diag.file or len(diag.path) < 2 or not isinstance(diag.path[1], int):
            out.append(diag if diag.file else dataclasses.replace(diag, file=str(stack.path)))
            continue
        spec = spec_for_stack_key(str(diag.path[0]))
        if spec and spec.type_name not in by_type:
            by_type[spec.type_name] = stack.of_type(spec.type_name)
        objects = by_type[spec.type_name] if spec else ()
        index = diag.path[1]
        if not 0 <= index < len(objects):
            out.append(dataclasses.replace(diag, file=str(stack.path)))
            continue
        obj = objects[index]
        line = obj.field_lines.get(diag.path[2], obj.line) if len(diag.path) > 2 and isinstance(
            diag.path[2], str) else obj.line
        out.append(dataclasses.replace(diag, file=obj.file, line=line))
    return out


StackCheck = Callable[[Stack], Iterable[Diagnostic]]


def validate_stack(path: Path | str, *, checks: Sequence[StackCheck] = ()) -> tuple[Stack | None, list[Diagnostic]]:
    """Every error and warning for a stack file, without raising. Makes no network call.

    ``checks`` run on a file without errors and their diagnostics are located at the objects they name: the
    layer above passes the hybrid routing checks (:func:`o365_mailflow.routing.check_stack`), which build on
    this module and so cannot be called from it.
    """
    stack, diags = _load_file(Path(path), None)
    if stack is None:
        return None, diags
    found = [diag for check in checks for diag in check(stack)]
    return stack, diags + _locate_by_objects(stack, found)
