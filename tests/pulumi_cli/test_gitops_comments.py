"""docs/gitops-comments.md: the pull-request comments a reviewer sees, from the real CLI, never written by hand.

One project with a stack named ``prod`` against the emulated tenant, walked through the pull requests that
docs/gitops.md describes: a new stack (creates), an edit while someone changed the tenant in the admin center
(update with drift), a rename (``renamedFrom``), a connector removed from the stack file (Pulumi deletes it),
and, in a program of a user's own with ``replaceOnChanges``, a replacement. Each comment is what
``mailflow pulumi-preview --format markdown`` writes in the workflow (with the CI run and artifact names the
workflow passes); each is then deployed with ``mailflow pulumi-deploy --reviewed``. Last, the deploy that stops
because the tenant changed after the review. Volatile parts (Guids, tenant names) become placeholders. With
``MAILFLOW_UPDATE_DOCS=1`` the test rewrites the file; otherwise it fails when the doc is stale.
"""

from __future__ import annotations

from typing import Any

from doc_capture import GUID, TENANT_DOMAIN, check_file, placeholders

from .conftest import ROOT, Project, pr_stack

DOC = ROOT / "docs" / "gitops-comments.md"
STACK = "prod"
RUN = {"GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "contoso/mailflow", "GITHUB_RUN_ID": "123"}

REPLACE_PROGRAM = """\
import pulumi
from o365_mailflow.providers import InboundConnector, InboundConnectorArgs

InboundConnector("partner", InboundConnectorArgs(
    name="From Fabrikam", connector_type="Partner", sender_domains=["fabrikam.com"],
    require_tls=True, comment={comment!r}),
    opts=pulumi.ResourceOptions(replace_on_changes=["comment"]))
"""
HEADER = """\
# What the reviewer sees: one pull-request comment per change kind

Captured from the real Pulumi CLI and `mailflow pulumi-preview --format markdown` (exactly what
`.github/workflows/preview.yml` posts) by `tests/pulumi_cli/test_gitops_comments.py`, against the emulated
tenant, stack `prod`. Each comment was then deployed with `mailflow pulumi-deploy --reviewed`, which did exactly
what the comment shows. Guids and tenant names are replaced by placeholders. Regenerate with
`MAILFLOW_UPDATE_DOCS=1 .venv/bin/python -m pytest tests/pulumi_cli/test_gitops_comments.py`.
How the pipeline works is in [gitops.md](gitops.md).
"""


def _review_and_deploy(project: Project) -> tuple[str, dict[str, Any]]:
    """The comment of one pull request, deployed; returns the comment and the reviewed JSON plan."""
    reviewed = project.root / f"reviewed-{STACK}.json"
    comment, plan = project.review(reviewed, "--artifact", f"mailflow-plan-{STACK}", stack=STACK, github=RUN)
    project.deploy(reviewed, stack=STACK, github=RUN)
    return comment, plan


def _clean(text: str, project: Project) -> str:
    # Routing warnings name the stack file by its absolute path, in markdown also with escaped underscores.
    root = str(project.root)
    return placeholders(text, (root + "/", ""), (root.replace("_", "\\_") + "/", ""), (GUID, "<guid>"),
                        (project.tenant.initial_domain, "contoso.onmicrosoft.com"),
                        (TENANT_DOMAIN, "contoso.onmicrosoft.com"))


def test_the_documented_comments_are_what_the_pipeline_posts(project: Project) -> None:
    project.use_stack(STACK)
    tenant = project.tenant
    sections: list[tuple[str, str, str]] = []

    project.write_stack(pr_stack(), STACK)
    comment, plan = _review_and_deploy(project)
    assert {c["action"] for c in plan["changes"]} >= {"create"}
    sections.append(("Create: a new stack", "Every object is new to the tenant (the accepted domain, which "
                     "Exchange Online cannot create, is adopted: its declared fields are set).", comment))

    out = project.id_of("OutboundConnector", "To on-premises Exchange")
    tenant.invoke("Set-OutboundConnector", {"Identity": out, "SmartHosts": ["relay.contoso.com"]})
    project.write_stack(pr_stack(ips="203.0.113.10, 203.0.113.11"), STACK)
    comment, plan = _review_and_deploy(project)
    assert "drift" in comment.lower()
    sections.append(("Update, with drift", "The pull request adds a sender IP; meanwhile someone changed the "
                     "outbound connector's smart host in the admin center. Both are updates: the deploy puts the "
                     "stack's value back.", comment))

    project.write_stack(pr_stack(name="Relay from copiers", renamed="Relay from printers",
                                 ips="203.0.113.10, 203.0.113.11"), STACK)
    comment, plan = _review_and_deploy(project)
    assert [c["action"] for c in plan["changes"] if c["action"] != "no-op"] == ["update"]
    assert "Relay from printers" not in {c["name"] for c in plan["changes"]}  # the old name is not a second object
    sections.append(("Rename", "`renamedFrom` keeps the connector (same Guid): one `Set-InboundConnector -Name`.",
                     comment))

    project.write_stack(pr_stack(name="Relay from copiers", ips="203.0.113.10, 203.0.113.11", out=False), STACK)
    comment, plan = _review_and_deploy(project)
    assert [c["action"] for c in plan["changes"] if c["action"] != "no-op"] == ["delete"]
    sections.append(("Delete: a connector removed from the stack file", "Pulumi deletes what its state holds "
                     "and the stack no longer declares, whatever `prune:` says (prune applies only to "
                     "`mailflow apply`).", comment))

    project.write_program(REPLACE_PROGRAM.format(comment="Fabrikam partner mail"))
    project.up()  # the program replaces the stack file's objects: they are deleted here
    project.write_program(REPLACE_PROGRAM.format(comment="Fabrikam partner mail, TLS required"))
    comment, plan = _review_and_deploy(project)
    assert [c["action"] for c in plan["changes"] if c["action"] != "no-op"] == ["replace"]
    sections.append(("Replace", "A program of your own may ask for a replacement (`replace_on_changes`); the "
                     "connector is deleted first, then created.", comment))

    reviewed = project.root / "reviewed-stale.json"
    project.write_program(REPLACE_PROGRAM.format(comment="Fabrikam partner mail, TLS required, reviewed"))
    assert project.mailflow("pulumi-preview", "--json-out", str(reviewed), stack=STACK, github=RUN).returncode == 0
    partner = project.id_of("InboundConnector", "From Fabrikam")
    tenant.invoke("Set-InboundConnector", {"Identity": partner, "SenderDomains": ["smtp:contoso.net;1"]})
    stopped = project.mailflow("pulumi-deploy", "--reviewed", str(reviewed), stack=STACK, github=RUN)
    assert stopped.returncode == 1 and "planned now but never reviewed" in stopped.stderr

    text = HEADER + "".join(f"\n---\n\n## {title}\n\n_{why}_\n\n{_clean(body, project)}"
                            for title, why, body in sections)
    text += ("\n---\n\n## The deploy stops: the tenant changed after the review\n\n"
             "_Someone changed the partner connector's sender domains in the admin center after the review; "
             "`mailflow pulumi-deploy` exits 1 and nothing is changed:_\n\n"
             f"```text\n{_clean(stopped.stderr, project)}```\n")
    check_file(DOC, text)
