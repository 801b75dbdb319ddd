"""The machine-readable plan: ``Plan.to_dict()`` as JSON, the schema documented in docs/plan-schema.json.

Why a separate renderer: CI jobs and other tools (dashboards, policy checks) read plans; the schema is a
contract with them, versioned by ``schemaVersion``. Secrets are already redacted by ``FieldChange.to_dict``.
"""

from __future__ import annotations

import json

from ..plan import Plan

__all__ = ["render_json"]


def render_json(plan: Plan) -> str:
    """The plan as indented JSON (UTF-8 text, one trailing newline)."""
    return json.dumps(plan.to_dict(), indent=2, ensure_ascii=False) + "\n"
