"""The plan as a terminal reads it: one line per object, indented ``before -> after`` per field (list fields
item by item: ``+ added``, ``- removed``).

Why its own layout rather than a generic dict diff: reviewers scan for the symbol at the start of each line
(``+`` create, ``~`` update and restore, ``-`` delete, ``<=`` adopt), for drift (changed in the tenant, not in
the stack) and for risky fields (smart hosts, sender IPs, TLS) that can stop mail. Colour is added only when the
caller says the output is a terminal; the text is identical otherwise.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from ..errors import Diagnostic, Severity
from ..plan import Action, FieldChange, Plan, ResourceChange
from ..shapes import Json

if TYPE_CHECKING:  # pragma: no cover - typing only
    from ..impact import Impact

__all__ = ["render_text", "impact_lines", "format_value", "SYMBOLS"]

SYMBOLS: dict[Action, str] = {
    Action.CREATE: "+",
    Action.UPDATE: "~",
    Action.DELETE: "-",
    Action.ADOPT: "<=",
    Action.RESTORE: "~",
    Action.REPLACE: "-/+",
    Action.NOOP: " ",
}
_COLOURS: dict[Action, str] = {
    Action.CREATE: "green",
    Action.UPDATE: "yellow",
    Action.DELETE: "red",
    Action.ADOPT: "cyan",
    Action.RESTORE: "yellow",
    Action.REPLACE: "magenta",
    Action.NOOP: "white",
}


def format_value(value: Json) -> str:
    """A normalised value as JSON (``true``, ``null``, ``["a", "b"]``, ``"text"``)."""
    return json.dumps(value, ensure_ascii=False)


def _notes(change: FieldChange, action: Action, color: bool) -> str:
    notes = []
    if change.drift:
        notes.append(click.style("drift: changed in the tenant", fg="magenta") if color else "drift: changed in the tenant")
    if change.risky and action is not Action.CREATE:
        notes.append(click.style("risky", fg="red") if color else "risky")
    return "   (" + ", ".join(notes) + ")" if notes else ""


def _is_list_change(change: FieldChange, action: Action) -> bool:
    return (action is not Action.CREATE
            and isinstance(change.before, (list, type(None))) and isinstance(change.after, (list, type(None)))
            and (change.before is not None or change.after is not None))


def _list_lines(change: FieldChange, action: Action, color: bool) -> list[str]:
    """A list change item by item (``+ 203.0.113.12``, ``- 203.0.113.10``), as the markdown renderer shows it:
    one changed address out of sixty is two short lines, not the whole list twice."""
    # _is_list_change admits only lists and None here
    before = list(change.before) if isinstance(change.before, list) else []
    after = list(change.after) if isinstance(change.after, list) else []
    b_keys = {json.dumps(v, sort_keys=True) for v in before}
    a_keys = {json.dumps(v, sort_keys=True) for v in after}
    added = [v for v in after if json.dumps(v, sort_keys=True) not in b_keys]
    removed = [v for v in before if json.dumps(v, sort_keys=True) not in a_keys]
    kept = len(before) - len(removed)
    what = f"{len(added)} added, {len(removed)} removed" + (f", {kept} unchanged" if kept else "")
    if change.after is None:
        what += "; cleared"
    lines = [f"      {change.field}: ({what}){_notes(change, action, color)}"]
    for sign, items, colour in (("+", added, "green"), ("-", removed, "red")):
        for item in items:
            text = f"          {sign} {item if isinstance(item, str) else format_value(item)}"
            lines.append(click.style(text, fg=colour) if color else text)
    return lines


def _field_lines(change: FieldChange, action: Action, color: bool) -> list[str]:
    if _is_list_change(change, action):
        return _list_lines(change, action, color)
    before = format_value(change.before)
    after = format_value(change.after)
    if action is Action.CREATE:
        text = f"{change.field}: {after}"
    else:
        text = f"{change.field}: {before} -> {after}"
    return ["      " + text + _notes(change, action, color)]


def _identity_field(type_name: str) -> str | None:
    from ..specs import SPECS

    spec = SPECS.get(type_name)
    return spec.identity_field if spec is not None else None


def _diag_line(diag: Diagnostic, indent: str) -> str:
    # Diagnostic.format() already says "warning:" for warnings; errors in a plan are unusual, so say it.
    text = diag.format()
    return f"{indent}{text}" if diag.severity is Severity.WARNING else f"{indent}error: {text}"


def _change_lines(change: ResourceChange, color: bool) -> list[str]:
    symbol = SYMBOLS[change.action]
    head = f"  {symbol} {change.action.value} {change.type_name} '{change.name}'"
    if color:
        head = click.style(head, fg=_COLOURS[change.action], bold=change.action is Action.DELETE)
    lines = [head]
    if change.reason and change.action is not Action.CREATE:
        lines.append(f"      # {change.reason}")
    identity = _identity_field(change.type_name)
    for c in change.changes:
        if not (change.action is Action.CREATE and c.field == identity):  # already in the header line
            lines.extend(_field_lines(c, change.action, color))
    lines.extend(_diag_line(w, "      ") for w in change.warnings)
    return lines


def _summary_line(plan: Plan) -> str:
    counts = plan.summary
    parts = [
        f"{counts[Action.CREATE.value]} to create",
        f"{counts[Action.UPDATE.value]} to update",
        f"{counts[Action.DELETE.value]} to delete",
    ]
    if counts[Action.ADOPT.value]:
        parts.append(f"{counts[Action.ADOPT.value]} to adopt")
    if counts[Action.RESTORE.value]:
        parts.append(f"{counts[Action.RESTORE.value]} to restore")
    parts.append(f"{counts[Action.NOOP.value]} unchanged")
    return "Plan: " + ", ".join(parts) + "."


def _guidance_lines(plan: Plan) -> list[str]:
    """Where devices should send (the MX endpoints) and the SPF record to publish, when the plan knows them."""
    lines: list[str] = []
    if plan.guidance.mx_endpoints:
        lines.append("MX endpoints (the smart host devices and apps use for each accepted domain):")
        lines.extend(f"  {domain}: {host}" for domain, host in plan.guidance.mx_endpoints.items())
    if plan.guidance.spf_record:
        strings = plan.guidance.spf_strings or (plan.guidance.spf_record,)
        if len(strings) == 1:
            lines.append(f"SPF record to publish: {plan.guidance.spf_record}")
        else:
            # A TXT value longer than 255 bytes must be given as several strings, which receivers join.
            lines.append(f"SPF record to publish (one TXT record of {len(strings)} strings of at most 255 bytes):")
            lines.extend(f'  "{text}"' for text in strings)
    return lines + [""] if lines else lines


def impact_lines(impact: Impact | None) -> list[str]:
    """The mail-flow impact: one sentence per route that changes (empty when none changes)."""
    if impact is None or not impact.rows:
        return []
    lines = ["Mail flow after this plan (routes that change):"]
    lines.extend(f"  * {row.sentence}" for row in impact.rows)
    return lines + [""]


def render_text(plan: Plan, *, color: bool = False, impact: Impact | None = None) -> str:
    """The whole plan as text for a terminal or a log; ``impact`` (see :mod:`o365_mailflow.impact`) goes first,
    since where mail goes is what a reviewer must judge."""
    lines = [f"Stack '{plan.stack}' on {plan.tenant}", ""]
    lines.extend(impact_lines(impact))
    changed = [c for c in plan.changes if c.action is not Action.NOOP]
    if changed:
        for change in changed:
            lines.extend(_change_lines(change, color))
        lines.append("")
    deletes = plan.count(Action.DELETE)
    if deletes:
        banner = f"WARNING: this plan deletes {deletes} connector{'s' if deletes != 1 else ''} (prune: true)."
        lines.append(click.style(banner, fg="red", bold=True) if color else banner)
        lines.append("")
    drifted = plan.drift
    if drifted:
        lines.append("Drift (changed in the tenant outside the stack; apply puts the stack's values back):")
        for change in drifted:
            fields = ", ".join(c.field for c in change.changes if c.drift)
            lines.append(f"  {change.type_name} '{change.name}': {fields}")
        lines.append("")
    if plan.unmanaged:
        hint = "left alone" if not plan.prune else (
            "left alone: accepted domains are never deleted, and are restored only if apply changed them"
        )
        lines.append(f"Unmanaged (in the tenant, not in the stack; {hint}):")
        for u in plan.unmanaged:
            lines.append(f"  {u.type_name} '{u.name}'")
        lines.append("")
    if plan.warnings:
        lines.append("Warnings:")
        lines.extend(_diag_line(w, "  ") for w in plan.warnings)
        lines.append("")
    lines.extend(_guidance_lines(plan))
    if plan.has_changes:
        lines.append(_summary_line(plan))
    else:
        lines.append(f"No changes. The tenant matches the stack ({plan.count(Action.NOOP)} objects unchanged).")
    return "\n".join(lines) + "\n"
