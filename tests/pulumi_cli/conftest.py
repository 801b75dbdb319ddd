"""The real Pulumi CLI against the emulated tenant: what users run (``pulumi preview / up / refresh / destroy``).

Which ``pulumi``: the one on PATH (a user's machine), else the one ``.ci/pulumi-cli`` builds from the Pulumi Go
module and caches (these machines cannot download Pulumi). Without either the tier is skipped with the reason,
except in CI (``CI`` set), where a missing CLI is a failure: the tier must not be skipped silently there.

Each test gets a project in a temporary directory: ``Pulumi.yaml`` (runtime python, this interpreter's virtualenv),
the project's own ``__main__.py`` (or a test's program), ``stacks/<stack>.yaml``, a local file backend
(``PULUMI_BACKEND_URL=file://``), a passphrase secrets provider, and config pointing at a fresh emulated tenant
with its client secret set as a Pulumi secret, as a user would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "o365-mailflow"
STACK = "test"
PASSPHRASE = "correct horse battery staple"  # the local backend's secrets passphrase (test only)
BUILD_SCRIPT = ROOT / ".ci" / "pulumi-cli"
MAILFLOW = str(Path(sys.executable).parent / "mailflow")

# The stack most tests of this tier deploy: a domain, a relay, an outbound connector to on-premises; pr_stack()
# varies it one pull request at a time.
PR_DOMAIN = """\
acceptedDomains:
  - domainName: contoso.com
    domainType: InternalRelay
"""
PR_RELAY = """\
inboundConnectors:
  - name: {name}
{renamed}    connectorType: OnPremises
    senderDomains: ["*"]
    senderIpAddresses: [{ips}]
{comment}"""
PR_OUT = """\
outboundConnectors:
  - name: To on-premises Exchange
    connectorType: OnPremises
    recipientDomains: [contoso.com]
    useMxRecord: false
    smartHosts: [mail.contoso.com]
"""


def pr_stack(*, domain: bool = True, name: str = "Relay from printers", renamed: str = "",
             ips: str = "203.0.113.10", comment: str = "", out: bool = True, prune: bool | None = None) -> str:
    """The stack's resource lists: ``renamed`` adds ``renamedFrom``, ``comment`` the relay's comment, ``prune`` a
    ``prune:`` line."""
    text = f"prune: {'true' if prune else 'false'}\n" if prune is not None else ""
    text += PR_DOMAIN if domain else ""
    text += PR_RELAY.format(name=name, renamed=f"    renamedFrom: {renamed}\n" if renamed else "", ips=ips,
                            comment=f"    comment: {comment}\n" if comment else "")
    return text + (PR_OUT if out else "")


def _build_cli() -> str | None:
    """The directory of a usable ``pulumi`` (PATH first, else the cached build), or None."""
    found = shutil.which("pulumi")
    if found:
        return str(Path(found).parent)
    if shutil.which("go") is None:
        return None
    result = subprocess.run(["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, timeout=3000)
    if result.returncode != 0:
        raise RuntimeError(f".ci/pulumi-cli failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout.strip().splitlines()[-1]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The first test of this tier may build the CLI (~10 min on a fresh machine): give the tier that time."""
    for item in items:
        if Path(str(item.fspath)).parent == Path(__file__).parent:
            item.add_marker(pytest.mark.timeout(2400))
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def pulumi_bin() -> str:
    try:
        bin_dir = _build_cli()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    if bin_dir is None:
        reason = ("no `pulumi` on PATH and no Go to build one with .ci/pulumi-cli: the real-CLI tier needs either "
                  "(the gRPC tier in tests/providers covers the providers without it)")
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    # Our language host is needed only where the official one is absent (the cached build carries ours).
    return bin_dir


@dataclass
class Project:
    """One Pulumi project + stack in a temporary directory, bound to one emulated tenant."""

    root: Path
    env: dict[str, str]
    tenant: Any
    name: str = PROJECT
    log: list[str] = field(default_factory=list)

    def write_stack(self, body: str, stack: str = STACK) -> None:
        """``stacks/<stack>.yaml``: a tenant section naming this tenant, then ``body`` (the resource lists)."""
        text = f"tenant:\n  id: {self.tenant.tenant_id}\n{body}"
        (self.root / "stacks" / f"{stack}.yaml").write_text(text, encoding="utf-8")

    def write_program(self, source: str) -> None:
        (self.root / "__main__.py").write_text(source, encoding="utf-8")

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """One pulumi command on the project's stack (selected by ``stack init``)."""
        cmd = ["pulumi", args[0], "--non-interactive", *args[1:]]
        result = subprocess.run(cmd, cwd=self.root, env=self.env, capture_output=True, text=True, timeout=600)
        self.log.append(f"$ {' '.join(cmd)}\n{result.stdout}\n{result.stderr}")
        if check and result.returncode != 0:
            raise AssertionError(f"pulumi {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
        return result

    def config(self, key: str, value: str, *, secret: bool = False) -> None:
        self.run("config", "set", f"{PROJECT}:{key}", *(["--secret"] if secret else ["--plaintext"]), "--", value)

    def bind_tenant(self) -> None:
        """Config of the selected stack pointing at this project's tenant, the client secret as a Pulumi secret."""
        tenant, cfg = self.tenant, self.tenant.config
        for key, value in (("tenantId", tenant.tenant_id), ("initialDomain", tenant.initial_domain),
                           ("clientId", tenant.client_id), ("endpoint", cfg.endpoint),
                           ("authority", cfg.authority), ("scope", cfg.scope), ("caFile", cfg.ca_file)):
            self.config(key, str(value))
        self.config("clientSecret", tenant.client_secret, secret=True)

    def use_stack(self, stack: str) -> None:
        """A further stack in the project, selected and bound to the same tenant (as a user would)."""
        self.run("stack", "init", stack)
        self.bind_tenant()

    def mailflow(self, *args: str, stack: str = STACK,
                 github: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """One ``mailflow`` command on ``stack``; ``github``: the GITHUB_* variables of a workflow run (none by
        default, whatever the machine running the tests sets)."""
        env = {k: v for k, v in self.env.items() if not k.startswith("GITHUB_")} | (github or {})
        result = subprocess.run([MAILFLOW, *args, "--stack", stack], cwd=self.root, env=env,
                                capture_output=True, text=True, timeout=600)
        self.log.append(f"$ mailflow {' '.join(args)}\n{result.stdout}\n{result.stderr}")
        return result

    def review(self, reviewed: Path, *extra: str, stack: str = STACK,
               github: dict[str, str] | None = None) -> tuple[str, dict[str, Any]]:
        """``mailflow pulumi-preview --format markdown --json-out REVIEWED``: the comment and the reviewed plan."""
        comment = self.mailflow("pulumi-preview", "--format", "markdown", "--json-out", str(reviewed), *extra,
                                stack=stack, github=github)
        assert comment.returncode == 0, comment.stderr
        return comment.stdout, json.loads(reviewed.read_text(encoding="utf-8"))

    def deploy(self, reviewed: Path, *, stack: str = STACK, github: dict[str, str] | None = None) -> None:
        """``mailflow pulumi-deploy --reviewed REVIEWED``, which must succeed."""
        deployed = self.mailflow("pulumi-deploy", "--reviewed", str(reviewed), stack=stack, github=github)
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr

    # ----------------------------------------------------------------------------------------- commands

    def preview(self, *extra: str) -> list[dict[str, Any]]:
        """The steps of ``pulumi preview --json`` (op, urn, old/new state, diffs)."""
        out = self.run("preview", "--json", *extra).stdout
        return list(json.loads(out).get("steps") or [])

    def up(self, *extra: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("up", "--yes", "--skip-preview", *extra, check=check)

    def state(self) -> dict[str, Any]:
        return json.loads(self.run("stack", "export", "--show-secrets").stdout)

    def raw_state(self) -> str:
        return self.run("stack", "export").stdout

    def resources(self, type_name: str) -> list[dict[str, Any]]:
        """State resources of one of our types, e.g. ``InboundConnector``."""
        return [r for r in self.state()["deployment"].get("resources") or []
                if r.get("type") == f"pulumi-python:dynamic/exo:{type_name}"]

    def urn(self, type_name: str, logical: str) -> str:
        return f"urn:pulumi:{STACK}::{self.name}::pulumi-python:dynamic/exo:{type_name}::{logical}"

    def id_of(self, type_name: str, name: str) -> str:
        """The Exchange id (Guid) state holds for the object named ``name`` (any case)."""
        for res in self.resources(type_name):
            if str(res["outputs"].get("name", "")).lower() == name.lower():
                return str(res["id"])
        raise AssertionError(f"{type_name} {name} not in state")


def ops(steps: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """``(op, logical name)`` per preview step, without the stack and provider bookkeeping."""
    out = []
    for step in steps:
        urn = str(step.get("urn", ""))
        if "::pulumi:pulumi:Stack::" in urn or "::pulumi:providers:" in urn:
            continue
        out.append((str(step.get("op")), urn.rsplit("::", 1)[-1]))
    return out


def _make_project(root: Path, pulumi_bin: str, tenant: Any, name: str) -> Project:
    (root / "stacks").mkdir(parents=True)
    shutil.copy(ROOT / "__main__.py", root / "__main__.py")
    venv = Path(sys.prefix)
    (root / "Pulumi.yaml").write_text(
        f"name: {name}\nruntime:\n  name: python\n  options:\n    toolchain: pip\n    virtualenv: {venv}\n",
        encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PULUMI_", "AZURE_"))}
    env.update({
        "PATH": os.pathsep.join([pulumi_bin, str(Path(sys.executable).parent), env.get("PATH", "")]),
        "PULUMI_HOME": str(root.parent / "pulumi-home"),
        "PULUMI_BACKEND_URL": f"file://{root.parent / 'state'}",
        "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "MAILFLOW_PULUMI_PYTHON": sys.executable,
        "NO_COLOR": "1",
    })
    (root.parent / "state").mkdir(exist_ok=True)
    proj = Project(root=root, env=env, tenant=tenant, name=name)
    proj.use_stack(STACK)
    return proj


@pytest.fixture
def make_project(tmp_path: Path, pulumi_bin: str, emulator_tenant: Any) -> Iterator[Any]:
    """``make_project(dirname, name="o365-mailflow")``: a project bound to the test's tenant (shared backend)."""
    made: list[Project] = []

    def make(dirname: str = "project", name: str = PROJECT) -> Project:
        made.append(_make_project(tmp_path / dirname, pulumi_bin, emulator_tenant, name))
        return made[-1]

    try:
        yield make
    finally:
        # On failure the transcript of every pulumi command is the first thing to read.
        (tmp_path / "pulumi-transcript.txt").write_text("\n".join(line for p in made for line in p.log),
                                                        encoding="utf-8")


@pytest.fixture
def project(make_project: Any) -> Project:
    return make_project()
