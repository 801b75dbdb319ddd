"""Render a :class:`~o365_mailflow.plan.Plan` as one pull-request comment.

Why a renderer of its own: a reviewer of a mail-flow change needs, at a glance, which tenant and stack the
comment is about, how many objects change, and a loud warning when the change can break mail (a delete, or a
change to a field the spec tables mark risky: smart hosts, sender IPs, TLS settings, ...). Below that come the
per-object ``before -> after`` tables, drift (the tenant was changed outside this repository) in its own
section, warnings, and the full plan collapsed. The first line is a hidden marker so the workflow edits its
own comment in place instead of adding one per push.

GitHub refuses comments over 65,536 characters. The output is kept under ``limit`` by dropping detail
(the full plan first, then unmanaged objects and DNS guidance, then per-object tables, warnings and drift
rows, least important first) and saying what was left out; the summary (title, banner, counts) is never
trimmed. This module is a pure function of the plan: no I/O, no clock, no version string, so the output is
stable enough for golden tests.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from ..errors import Diagnostic, Severity
from ..plan import Action, FieldChange, Plan, ResourceChange
from ..shapes import Json, Value

if TYPE_CHECKING:  # pragma: no cover - typing only
    from ..impact import Impact

__all__ = ["render_markdown", "marker", "MIN_LIMIT", "DEFAULT_LIMIT"]

DEFAULT_LIMIT = 65000  # GitHub's hard limit is 65,536 characters per comment body
MIN_LIMIT = 3000  # the summary alone (title, capped banner, counts) always fits in this

_BANNER_ITEMS = 10  # risky objects listed by name in each banner; the rest are counted
_RESERVE = 1500  # room kept after the summary for the trim notes that may follow it
_LIST_FULL = 12  # lists up to this length are shown in full in a table cell; longer ones show the delta
_DETAILS_LIST = 50  # unmanaged objects listed before "and N more"
_IMPACT_ROWS = 60  # mail-flow sentences shown before "N more" (the JSON plan has all of them)

_ICON = {
    Action.CREATE: "➕",
    Action.UPDATE: "✏️",
    Action.DELETE: "🗑️",
    Action.ADOPT: "📥",
    Action.RESTORE: "↩️",
    Action.REPLACE: "♻️",
    Action.NOOP: "✔️",
}
_COUNT_LABEL = {
    Action.CREATE: "Create",
    Action.UPDATE: "Update",
    Action.DELETE: "Delete",
    Action.ADOPT: "Adopt",
    Action.RESTORE: "Restore",
    Action.REPLACE: "Replace",
    Action.NOOP: "Unchanged",
}
_DIFF_SIGN = {
    Action.CREATE: "+",
    Action.UPDATE: "!",
    Action.DELETE: "-",
    Action.ADOPT: "!",
    Action.RESTORE: "!",
    Action.REPLACE: "-",
    Action.NOOP: " ",
}


def marker(stack: str) -> str:
    """The hidden first line a workflow looks for to update its comment instead of posting a new one."""
    return f"<!-- o365-mailflow:plan:{_marker_safe(stack)} -->"


def render_markdown(plan: Plan, *, limit: int = DEFAULT_LIMIT, run_url: str | None = None,
                    impact: Impact | None = None, diagram: str | None = None, artifact: str | None = None) -> str:
    """The PR comment for ``plan``, at most ``limit`` characters, ending with a newline.

    ``impact`` (:func:`o365_mailflow.impact.compute_impact`) and ``diagram`` (Mermaid text of what the plan
    changes, :func:`o365_mailflow.graph.change_diagram`) make a **Mail flow** section before the field tables.
    ``artifact``: the name of the CI run's artifact that holds the whole plan (markdown and JSON); when the
    comment is trimmed, its notes send the reader there instead of to a job summary that is trimmed too.
    """
    if limit < MIN_LIMIT:
        raise ValueError(f"limit must be at least {MIN_LIMIT} characters, got {limit}")
    head = _head(plan, run_url)
    # The summary is never trimmed, but the banner's list of names shrinks if even it would not fit.
    items = _BANNER_ITEMS
    while len(head) > limit - _RESERVE and items > 0:
        items -= 1
        head = _head(plan, run_url, items)
    changes = [c for c in plan.changes if c.action is not Action.NOOP]
    drift_rows = [(rc, fc) for rc in plan.changes for fc in rc.changes if fc.drift]
    warnings = _all_warnings(plan)

    # Candidate detail. Each changed object is shown as a table (FULL), as one line (LINE) or only counted.
    resource_blocks = {id(rc): _resource_block(rc) for rc in changes}
    resource_lines = {id(rc): _resource_line(rc) for rc in changes}
    drift_lines = [_drift_row(rc, fc) for rc, fc in drift_rows]
    warning_lines = [_warning_line(w) for w in warnings]
    impact_lines = [f"- {_text(r.sentence)}" for r in impact.rows] if impact is not None else []
    diagram_block = _diagram_section(diagram)
    unmanaged = _unmanaged_section(plan)
    guidance = _guidance_section(plan)
    details = _details_section(plan)

    # Trimming order within objects: ordinary ones from the end first, then risky ones from the end.
    order = [id(rc) for rc in reversed(changes) if not rc.risky] + [id(rc) for rc in reversed(changes) if rc.risky]
    kept = _Kept(
        drift=len(drift_lines),
        warnings=len(warning_lines),
        impact=min(len(impact_lines), _IMPACT_ROWS),
        diagram=bool(diagram_block),
        level={id(rc): _FULL for rc in changes},
        unmanaged=bool(unmanaged),
        guidance=bool(guidance),
        details=bool(details),
    )

    def build() -> str:
        return _assemble(
            plan, head, changes, resource_blocks, resource_lines, drift_lines, warning_lines, unmanaged, guidance,
            details, kept, _Where(run_url, artifact), impact_lines, diagram_block,
        )

    text = build()
    if len(text) <= limit:
        return text

    # 1. the full plan, then the optional sections, each as a whole
    for attr in ("details", "unmanaged", "guidance", "diagram"):
        if getattr(kept, attr):
            setattr(kept, attr, False)
            text = build()
            if len(text) <= limit:
                return text

    # 2. tables become one-line entries, then entries are dropped (only counted). Sizes are added up
    #    arithmetically so trimming thousands of objects stays linear; the exact check follows.
    excess = len(text) - limit
    for rid in order:
        if excess <= 0:
            break
        kept.level[rid] = _LINE
        excess -= len(resource_blocks[rid]) - len(resource_lines[rid])
    text = build()
    excess = len(text) - limit
    for rid in order:
        if excess <= 0:
            break
        kept.level[rid] = _HIDDEN
        excess -= len(resource_lines[rid]) + 1
    text = build()

    # 3. warnings, then drift rows, then mail-flow rows, from the end
    while len(text) > limit and kept.warnings:
        kept.warnings = max(0, kept.warnings - max(1, (len(text) - limit) // 200))
        text = build()
    while len(text) > limit and kept.drift:
        kept.drift = max(0, kept.drift - max(1, (len(text) - limit) // 200))
        text = build()
    while len(text) > limit and kept.impact:
        kept.impact = max(0, kept.impact - max(1, (len(text) - limit) // 200))
        text = build()

    # Notes about what was left out change length with their counts; settle one item at a time.
    while len(text) > limit:
        shown = next((r for r in order if kept.level[r] != _HIDDEN), None)
        if shown is not None:
            kept.level[shown] -= 1
        elif kept.warnings:
            kept.warnings -= 1
        elif kept.drift:
            kept.drift -= 1
        elif kept.impact:
            kept.impact -= 1
        else:  # pragma: no cover - MIN_LIMIT and the banner cap make this unreachable
            raise AssertionError("plan summary does not fit in the comment limit")
        text = build()
    return text


_HIDDEN, _LINE, _FULL = 0, 1, 2


@dataclass
class _Kept:
    drift: int
    warnings: int
    impact: int
    diagram: bool
    level: dict[int, int]  # id(ResourceChange) -> _FULL | _LINE | _HIDDEN
    unmanaged: bool
    guidance: bool
    details: bool


# --------------------------------------------------------------------------------------------- summary


def _head(plan: Plan, run_url: str | None, banner_items: int = _BANNER_ITEMS) -> str:
    lines = [
        marker(plan.stack),
        f"### o365-mailflow plan: stack {_code(plan.stack)} on {_code(plan.tenant)}",
        "",
    ]
    banner = _banner(plan, banner_items)
    if banner:
        lines += banner + [""]
    if not plan.has_changes:
        lines += ["**No changes.** The tenant already matches the stack.", ""]
    lines += _counts(plan)
    facts = []
    drift = plan.drift
    if drift:
        n_fields = sum(1 for rc in drift for fc in rc.changes if fc.drift)
        facts.append(f"**Drift:** {_plural(n_fields, 'field')} on {_plural(len(drift), 'object')} (see below)")
    if plan.unmanaged:
        facts.append(f"**Not in the stack:** {_plural(len(plan.unmanaged), 'object')} in the tenant, not changed")
    if plan.engine == "pulumi":
        # prune does not apply: Pulumi deletes what its state holds and the stack no longer declares.
        facts.append("**Computed by:** `pulumi preview` with the deploy's state")
    else:
        facts.append(f"**Prune:** {'on' if plan.prune else 'off'}")
    if run_url:
        facts.append(f"[CI run]({_url(run_url)})")
    lines += ["", " · ".join(facts)]
    return "\n".join(lines)


def _counts(plan: Plan) -> list[str]:
    order: tuple[Action, ...] = (Action.CREATE, Action.UPDATE, Action.DELETE, Action.ADOPT, Action.RESTORE, Action.NOOP)
    if plan.count(Action.REPLACE):
        order = order[:3] + (Action.REPLACE,) + order[3:]
    header = "| " + " | ".join(f"{_ICON[a]} {_COUNT_LABEL[a]}" for a in order) + " |"
    rule = "|" + "---:|" * len(order)
    values = "| " + " | ".join(str(plan.count(a)) for a in order) + " |"
    return [header, rule, values]


def _banner(plan: Plan, items: int = _BANNER_ITEMS) -> list[str]:
    """The loud part: [!CAUTION] for deletes and risky changes to existing objects, [!WARNING] for new objects
    that set risky fields (a new connector routes mail as soon as it exists, but nothing that works today is
    taken away). Which fields are risky comes from the spec tables, through ``FieldChange.risky``."""
    caution = [
        rc for rc in plan.changes
        if rc.action is Action.DELETE or (rc.action is not Action.CREATE and _risky_params(rc))
    ]
    warning = [rc for rc in plan.changes if rc.action is Action.CREATE and _risky_params(rc)]
    lines: list[str] = []
    if caution:
        deletes = sum(1 for rc in caution if rc.action is Action.DELETE)
        changes = len(caution) - deletes
        parts = []
        if deletes:
            parts.append(f"deletes {_plural(deletes, 'object')}")
        if changes:
            parts.append(f"changes risky fields on {_plural(changes, 'existing object')}")
        lines += [
            "> [!CAUTION]",
            f"> **This plan {' and '.join(parts)}.** A mistake here can stop or misroute mail: "
            "check these before merging.",
        ]
        lines += _banner_items(caution, items, "more risky object")
    if warning:
        if lines:
            lines.append("")
        lines += [
            "> [!WARNING]",
            f"> **This plan creates {_plural(len(warning), 'object')} with risky fields.** "
            "New connectors take part in mail routing as soon as they exist.",
        ]
        lines += _banner_items(warning, items, "more new object")
    return lines


def _risky_params(rc: ResourceChange) -> list[str]:
    return sorted({fc.param for fc in rc.changes if fc.risky})


def _banner_items(risky: Sequence[ResourceChange], items: int, more: str) -> list[str]:
    lines = []
    for rc in risky[:items]:
        line = f"> - {_ICON[rc.action]} **{rc.action.value}** {rc.type_name} {_code(_short(rc.name, 80))}"
        params = _risky_params(rc)
        if params and rc.action is not Action.DELETE:
            shown = ", ".join(_code(p) for p in params[:8])
            if len(params) > 8:
                shown += f" and {len(params) - 8} more"
            line += f": {shown}"
        lines.append(line)
    if len(risky) > items:
        lines.append(f"> - and {_plural(len(risky) - items, more)}")
    return lines


# --------------------------------------------------------------------------------------------- detail


def _resource_block(rc: ResourceChange) -> str:
    """Heading and before/after table of one object's intended (non-drift) changes; '' when nothing to show."""
    intended = [fc for fc in rc.changes if not fc.drift]
    heading = f"##### {_ICON[rc.action]} {rc.action.value} {rc.type_name} {_code(rc.name)}"
    if rc.risky:
        heading += " ⚠️"
    lines = [heading]
    if rc.reason:
        lines += ["", _text(rc.reason)]
    if not intended:
        if rc.changes:  # only drift: shown in the drift section
            lines += ["", "Only drift: see **Drift** below."]
        return "\n".join(lines)
    lines.append("")
    if rc.action is Action.CREATE:
        lines += ["| Parameter | Stack key | Value |", "|---|---|---|"]
        for fc in intended:
            lines.append(f"| {_param_cell(fc)} | {_code(fc.field)} | {_value_cell(fc, fc.after)} |")
    elif rc.action is Action.DELETE:
        lines += ["| Parameter | Stack key | Value before delete |", "|---|---|---|"]
        for fc in intended:
            lines.append(f"| {_param_cell(fc)} | {_code(fc.field)} | {_value_cell(fc, fc.before)} |")
    else:
        lines += ["| Parameter | Stack key | Before | After |", "|---|---|---|---|"]
        for fc in intended:
            before, after = _before_after_cells(fc)
            lines.append(f"| {_param_cell(fc)} | {_code(fc.field)} | {before} | {after} |")
    for w in rc.warnings:
        lines.append(f"\n> [!WARNING]\n> {_diag(w)}")
    return "\n".join(lines)


def _resource_line(rc: ResourceChange) -> str:
    """One list entry for an object whose table was trimmed."""
    line = f"- {_ICON[rc.action]} {rc.action.value} {rc.type_name} {_code(_short(rc.name, 80))}"
    if rc.changes:
        line += f" ({_plural(len(rc.changes), 'field')})"
    risky = _risky_params(rc)
    if risky:
        line += " ⚠️ " + ", ".join(_code(p) for p in risky)
    elif rc.action is Action.DELETE:
        line += " ⚠️"
    return line


def _param_cell(fc: FieldChange) -> str:
    cell = _code(fc.param)
    if fc.risky:
        cell += " ⚠️"
    return cell


def _drift_row(rc: ResourceChange, fc: FieldChange) -> str:
    before, after = _before_after_cells(fc)
    risky = " ⚠️" if fc.risky else ""
    return f"| {rc.type_name} {_code(rc.name)} | {_code(fc.param)}{risky} | {before} | {after} |"


def _all_warnings(plan: Plan) -> list[tuple[ResourceChange | None, Diagnostic]]:
    out: list[tuple[ResourceChange | None, Diagnostic]] = [(None, w) for w in plan.warnings]
    out += [(rc, w) for rc in plan.changes for w in rc.warnings]
    return out


def _warning_line(item: tuple[ResourceChange | None, Diagnostic]) -> str:
    rc, w = item
    label = "error" if w.severity is Severity.ERROR else "warning"
    return f"- **{label}** {_diag(w, rc)}"


def _diag(w: Diagnostic, rc: ResourceChange | None = None) -> str:
    where = []
    if rc is not None:
        where.append(f"{rc.type_name} {_code(rc.name)}")
    if w.file:
        where.append(_code(f"{w.file}:{w.line}" if w.line else w.file))
    if w.path:
        where.append(_code(w.dotted_path))
    text = w.summary + (f" {w.detail}" if w.detail else "") + (f" (allowed: {w.allowed})" if w.allowed else "")
    return " ".join(where) + (": " if where else "") + _text(text)


def _unmanaged_section(plan: Plan) -> str:
    if not plan.unmanaged:
        return ""
    intro = "The tenant holds these objects that the stack does not declare; this plan does not change them."
    if plan.engine == "pulumi":
        # prune does not apply: Pulumi touches only what its state holds, and deletes it once undeclared.
        intro += (" Pulumi never touches objects its state does not hold (`prune:` applies only to"
                  " `mailflow apply`); to manage one, declare it with `adopt: true`.")
    elif not plan.prune:
        intro += " Set `prune: true` in the stack file to delete connectors that are not in the stack."
    items = [f"- {u.type_name} {_code(u.name)}" for u in plan.unmanaged[:_DETAILS_LIST]]
    if len(plan.unmanaged) > _DETAILS_LIST:
        items.append(f"- and {len(plan.unmanaged) - _DETAILS_LIST} more")
    return "\n".join(
        [
            f"<details><summary>Not in the stack ({len(plan.unmanaged)})</summary>",
            "",
            intro,
            "",
            *items,
            "",
            "</details>",
        ]
    )


def _guidance_section(plan: Plan) -> str:
    g = plan.guidance
    if not g.mx_endpoints and not g.spf_record:
        return ""
    lines = ["<details><summary>DNS guidance</summary>", ""]
    if g.mx_endpoints:
        lines += [
            "Devices and servers that relay through Microsoft 365 use these smart hosts:",
            "",
            "| Accepted domain | Smart host / MX |",
            "|---|---|",
        ]
        lines += [f"| {_code(d)} | {_code(mx)} |" for d, mx in sorted(g.mx_endpoints.items())]
        lines.append("")
    if g.spf_record:
        lines += ["SPF record to publish:", "", _fence(g.spf_record, "text"), ""]
    lines.append("</details>")
    return "\n".join(lines)


def _diagram_section(diagram: str | None) -> str:
    """The Mermaid diagram of what the plan changes (GitHub renders ```mermaid blocks), with its legend."""
    if not diagram:
        return ""
    legend = ("Diagram of the parts this plan changes: edges and boxes marked _added_ (green), _removed_ (red, "
              "dashed) or _changed_ (amber); unchanged connectors are counted, not drawn.")
    return legend + "\n\n" + _fence(diagram.rstrip("\n"), "mermaid")


def _details_section(plan: Plan) -> str:
    body = []
    for rc in plan.changes:
        sign = _DIFF_SIGN[rc.action]
        title = f"{sign} {rc.action.value} {rc.type_name} {json.dumps(rc.name, ensure_ascii=False)}"
        if rc.identity and rc.action is not Action.CREATE:
            title += f" ({rc.identity})"
        body.append(title)
        for fc in rc.changes:
            note = "  # " + ", ".join(n for n, on in (("risky", fc.risky), ("drift", fc.drift)) if on)
            note = note if fc.risky or fc.drift else ""
            if rc.action is Action.CREATE:
                body.append(f"+     {fc.param}: {_plain(fc, fc.after)}{note}")
            elif rc.action is Action.DELETE:
                body.append(f"-     {fc.param}: {_plain(fc, fc.before)}{note}")
            else:
                body.append(f"-     {fc.param}: {_plain(fc, fc.before)}{note}")
                body.append(f"+     {fc.param}: {_plain(fc, fc.after)}{note}")
    if not body:
        return ""
    return "\n".join(
        [
            f"<details><summary>Full plan ({_plural(len(plan.changes), 'object')})</summary>",
            "",
            _fence("\n".join(body), "diff"),
            "",
            "</details>",
        ]
    )


def _assemble(
    plan: Plan,
    head: str,
    changes: Sequence[ResourceChange],
    resource_blocks: dict[int, str],
    resource_lines: dict[int, str],
    drift_lines: Sequence[str],
    warning_lines: Sequence[str],
    unmanaged: str,
    guidance: str,
    details: str,
    kept: _Kept,
    where: "_Where",
    impact_lines: Sequence[str] = (),
    diagram: str = "",
) -> str:
    parts = [head]
    if impact_lines or diagram:
        parts.append("#### Mail flow")
        if impact_lines:
            parts.append("Routes that change when this plan is applied (from the routing simulator, on the tenant "
                         "as it is and as the plan leaves it):")
            parts += _listed(impact_lines, kept.impact, "more route change", plan, where)
        if diagram:
            parts.append(diagram if kept.diagram else _trim_note("The mail-flow diagram is omitted", plan, where))
    if changes:
        parts.append("#### Changes")
        parts += [resource_blocks[id(rc)] for rc in changes if kept.level[id(rc)] == _FULL]
        short = [resource_lines[id(rc)] for rc in changes if kept.level[id(rc)] == _LINE]
        if short:
            parts.append("_✂️ Without their tables, to fit the comment:_\n\n" + "\n".join(short))
        hidden = sum(1 for rc in changes if kept.level[id(rc)] == _HIDDEN)
        if hidden:
            parts.append(_trim_note(f"{_plural(hidden, 'more changed object')} not shown", plan, where))
    if drift_lines:
        parts.append("#### Drift")
        parts.append(
            "The tenant differs from what the stack file last described: these fields were changed outside "
            "this repository (for example in the Exchange admin center). Applying puts them back to the "
            "stack's values; to keep the tenant's value instead, change the stack file in this pull request."
        )
        table = ("| Object | Parameter | In the tenant now | Stack (after apply) |", "|---|---|---|---|")
        parts += _listed(drift_lines, kept.drift, "more drifted field", plan, where, header=table)
    if warning_lines:
        parts.append("#### Warnings")
        parts += _listed(warning_lines, kept.warnings, "more warning", plan, where)
    if unmanaged:
        if kept.unmanaged:
            parts.append(unmanaged)
        else:
            what = f"The list of {_plural(len(plan.unmanaged), 'object')} not in the stack is omitted"
            parts.append(_trim_note(what, plan, where))
    if guidance and kept.guidance:
        parts.append(guidance)
    if details:
        parts.append(details if kept.details else _trim_note("The full plan is omitted", plan, where))
    return "\n\n".join(parts) + "\n"


def _listed(lines: Sequence[str], shown: int, noun: str, plan: Plan, where: "_Where",
            header: Sequence[str] = ()) -> list[str]:
    """The first ``shown`` lines as one part (under ``header``), then a note counting the ``noun``s left out."""
    out = ["\n".join([*header, *lines[:shown]])] if shown else []
    if shown < len(lines):
        out.append(_trim_note(f"{_plural(len(lines) - shown, noun)} not shown", plan, where))
    return out


@dataclass(frozen=True)
class _Where:
    """Where the whole plan can be read when the comment is trimmed."""

    run_url: str | None
    artifact: str | None


def _trim_note(what: str, plan: Plan, where: _Where) -> str:
    command = f"`mailflow {'pulumi-preview' if plan.engine == 'pulumi' else 'plan'} --stack {plan.stack}`"
    if where.artifact:
        run = f" of the [CI run]({_url(where.run_url)})" if where.run_url else " of this CI run"
        tail = f"the whole plan (markdown and JSON) is in the artifact {_code(where.artifact)}{run}, or run {command}."
    elif where.run_url:
        tail = f"see the [CI run]({_url(where.run_url)}) or run {command} for all of it."
    else:
        tail = f"run {command} for all of it."
    return f"_✂️ {what} to fit GitHub's comment size limit; {tail}_"


# --------------------------------------------------------------------------------------------- values


def _before_after_cells(fc: FieldChange) -> tuple[str, str]:
    b, a = fc.before, fc.after
    if isinstance(b, list) and isinstance(a, list):
        return _list_delta_cells(b, a)
    return _value(b), _value(a)


def _value_cell(fc: FieldChange, value: Value) -> str:
    return _value(value)


def _value(value: Json) -> str:
    if value is None:
        return "_(not set)_"
    if isinstance(value, bool):
        return _code("true" if value else "false")
    if isinstance(value, str):
        return _code(value) if value else "_(empty)_"
    if isinstance(value, (list, tuple)):
        if not value:
            return "_(none)_"
        items = [_code(_scalar(v)) for v in value]
        if len(items) > _LIST_FULL:
            return "<br>".join(items[:_LIST_FULL]) + f"<br>_… {len(items) - _LIST_FULL} more_"
        return "<br>".join(items)
    return _code(_scalar(value))


def _list_delta_cells(before: list[str], after: list[str]) -> tuple[str, str]:
    """Both sides of a list change; removed items struck out, added items bold, long lists as a delta."""
    b_set = {json.dumps(v, sort_keys=True) for v in before}
    a_set = {json.dumps(v, sort_keys=True) for v in after}
    removed = [v for v in before if json.dumps(v, sort_keys=True) not in a_set]
    added = [v for v in after if json.dumps(v, sort_keys=True) not in b_set]
    if not before:
        return "_(none)_", _value(after)
    if not after:
        return _value(before), "_(none)_"
    if len(removed) == len(before) and max(len(before), len(after)) <= _LIST_FULL:  # nothing in common
        return _value(before), _value(after)
    if max(len(before), len(after)) <= _LIST_FULL:
        b_cell = "<br>".join(
            f"~~{_code(_scalar(v))}~~" if v in removed else _code(_scalar(v)) for v in before
        )
        a_cell = "<br>".join(f"**{_code(_scalar(v))}** (added)" if v in added else _code(_scalar(v)) for v in after)
        return b_cell, a_cell
    unchanged = len(before) - len(removed)
    b_cell = "<br>".join([f"~~{_code(_scalar(v))}~~" for v in removed[:_LIST_FULL]] + _more(removed))
    a_cell = "<br>".join([f"**{_code(_scalar(v))}** (added)" for v in added[:_LIST_FULL]] + _more(added))
    b_cell = (b_cell + "<br>" if b_cell else "") + f"_… and {unchanged} unchanged of {len(before)}_"
    a_cell = (a_cell + "<br>" if a_cell else "") + f"_… and {unchanged} unchanged of {len(after)}_"
    return b_cell, a_cell


def _more(items: Sequence[object]) -> list[str]:
    return [f"_… {len(items) - _LIST_FULL} more_"] if len(items) > _LIST_FULL else []


def _scalar(value: Json) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _plain(fc: FieldChange, value: Value) -> str:
    """A value in the fenced full plan: JSON, one line."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True)  # escapes newlines itself: one line


# --------------------------------------------------------------------------------------------- escaping

_NEWLINES = re.compile(r"\r\n|\r|\n")
_TEXT_SPECIAL = re.compile(r"([\\`*_\[\]|~])")
_LINE_START = re.compile(r"^([#>=+-]|\d+[.)])")


def _code(text: str) -> str:
    """An inline code span safe inside a table cell: any backticks, pipes and newlines in ``text``."""
    text = _NEWLINES.sub(" ↵ ", str(text))
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0) if "`" in text else 0
    fence = "`" * (longest + 1)
    pad = " " if longest or text.startswith(" ") or text.endswith(" ") else ""
    # GFM splits table cells on '|' even inside code spans; '\|' is the escape there, and the
    # backslash is removed by the table parser (also inside code), so it is safe everywhere we use it.
    return f"{fence}{pad}{text.replace('|', chr(92) + '|')}{pad}{fence}"


def _text(text: str) -> str:
    """Free text (reasons, diagnostics) with markdown and HTML neutralised, on one line."""
    text = _NEWLINES.sub(" ", str(text))
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _TEXT_SPECIAL.sub(r"\\\1", text)
    return _LINE_START.sub(r"\\\1", text)


def _fence(body: str, lang: str) -> str:
    longest = max((len(run) for run in re.findall(r"`{3,}", body)), default=2)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{body}\n{fence}"


def _url(url: str) -> str:
    return url.replace(" ", "%20").replace("(", "%28").replace(")", "%29")


def _marker_safe(stack: str) -> str:
    return re.sub(r"[^A-Za-z0-9._/-]", "_", stack)


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"
