"""The machine-readable plan: ``Plan.to_dict()`` as JSON, the schema documented in docs/plan-schema.json.

Why a separate renderer: CI jobs and other tools (dashboards, policy checks) read plans; the schema is a
contract with them, versioned by ``schemaVersion``. Secrets are already redacted by ``FieldChange.to_dict``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from ..plan import Plan

if TYPE_CHECKING:  # pragma: no cover - typing only
    from ..impact import Impact

__all__ = ["render_json"]


def render_json(plan: Plan, *, impact: Impact | None = None) -> str:
    """The plan as indented JSON (UTF-8 text, one trailing newline), with the mail-flow ``impact`` when given."""
    data = plan.to_dict()
    if impact is not None:
        data["impact"] = impact.to_dict()
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
