"""Pulumi program of this project: declares stacks/<pulumi stack name>.yaml in the tenant the stack's
``o365-mailflow:*`` config names. Everything lives in o365_mailflow.providers.program (tested with mocks);
see docs/pulumi.md."""

from __future__ import annotations

from pathlib import Path

from o365_mailflow.providers.program import run

run(Path(__file__).resolve().parent)
