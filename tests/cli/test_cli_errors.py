"""The CLI under a demanding mail admin: bad input, bad credentials, bad paths, Ctrl-C.

The charter: bad input gets a clear error naming what is wrong and what is allowed; nothing is lost or
half-written; never a Python traceback; never a secret in the output; exit 0 / 1 (and 2 only for "changes
present" with ``plan --detailed-exitcode``).

Matrix:
- stack and output paths: a directory given as --stack, a caFile that does not exist, an unusable state
  directory, plan --out into a missing directory or under a file, export --out over an existing file (also the
  stack file itself named by an absolute path);
- exit codes: a usage error of ``plan --detailed-exitcode`` is 1, never the 2 that means "changes";
- route: malformed recipient, sender and certificate name are refused before anything is simulated;
- credentials: a client id with no credential, a wrong secret (named as a sign-in failure, secret never shown);
- emulator serve: a seed file that is not JSON, a state directory that cannot be created;
- Ctrl-C during apply: what was done, what was in flight and what was not started are reported;
- an error no command expected: one line on stderr, exit 1, secrets redacted.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from mailflow_testing import MAILFLOW_PROCESS
from reconcile_helpers import PARTNER_STACK as STACK, Project

from o365_mailflow.cli import main

ROOT = Path(__file__).resolve().parents[2]

EMULATOR_STACK = """\
tenant:
  emulator: true
acceptedDomains:
  - domainName: contoso.com
    domainType: InternalRelay
outboundConnectors:
  - name: To on-premises
    connectorType: OnPremises
    recipientDomains: [contoso.com]
    useMxRecord: false
    smartHosts: [mail.contoso.com]
"""


def _cli(args: list[str], cwd: Path, env: dict[str, str] | None = None,
         timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``mailflow ARGS`` in a child process: what a shell sees (exit code, stdout, stderr, any traceback)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("AZURE_")}
    full = {**base, "PYTHONPATH": str(ROOT), "NO_COLOR": "1", "MAILFLOW_STATE_DIR": str(cwd / ".state"),
            **(env or {})}
    return subprocess.run([*MAILFLOW_PROCESS, *args],
                          cwd=cwd, env=full, capture_output=True, text=True, timeout=timeout, check=False)


def _no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr + result.stdout, result.stderr


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / "dev.yaml").write_text(EMULATOR_STACK, encoding="utf-8")
    (tmp_path / "a-file").write_text("not a directory\n", encoding="utf-8")
    return tmp_path


# ------------------------------------------------------------------------------------------- paths and files


REAL_TENANT = """\
tenant:
  id: 11111111-2222-3333-4444-555555555555
  initialDomain: contoso.onmicrosoft.com
  endpoint: https://127.0.0.1:9
  authority: https://127.0.0.1:9
  caFile: {ca}
"""
FAKE_APP = {"AZURE_CLIENT_ID": "0e0e0e0e-1111-4222-8333-444444444444", "AZURE_CLIENT_SECRET": "NotTheRealSecret42"}


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["plan", "--stack", "{root}/stacks"], {}, "is a directory, not a stack file"),
        (["plan", "--stack", "stacks/missing-ca.yaml"], FAKE_APP,
         "the CA file /nonexistent/ca.pem (the tenant's caFile) does not exist"),
        (["plan", "--stack", "dev"], {"MAILFLOW_STATE_DIR": "{root}/a-file/state"},
         "cannot start the local emulated tenant"),
        (["plan", "--stack", "dev", "--out", "{root}/a-file/plan.txt"], {}, "cannot write"),
        (["export", "--stack", "dev", "--out", "stacks/other.yaml"], {}, "already exists; pass --force"),
        (["export", "--stack", "dev", "--out", "{root}/stacks/dev.yaml"], {}, "already declares"),
        (["plan", "--stack", "dev", "--detailed-exitcode", "--bogus"], {}, "error: mailflow plan: "),
        (["plan", "--stack", "real"], {"AZURE_CLIENT_ID": "abc"}, "AZURE_CLIENT_ID is set but no credential"),
        (["export", "--stack", "new", "--tenant-id", "not-a-guid/../x"], FAKE_APP, "--tenant-id: 'not-a-guid/../x'"
         " is not a tenant GUID"),
        (["export", "--stack", "new", "--initial-domain", "contoso onmicrosoft.com"], FAKE_APP,
         "--initial-domain: contoso onmicrosoft.com contains white space"),
        (["route", "--stack", "{root}/stacks", "a@contoso.com"], {}, "is a directory, not a stack file"),
        (["route", "--stack", "stacks/missing-ca.yaml", "--live", "a@contoso.com"], FAKE_APP,
         "could not read the tenant: the CA file /nonexistent/ca.pem"),
    ],
    ids=["stack-is-a-directory", "ca-file-missing", "state-dir-under-a-file", "plan-out-under-a-file",
         "export-over-an-existing-file", "export-over-the-stack-file-by-absolute-path",
         "usage-error-with-detailed-exitcode-is-1", "client-id-without-credential", "export-bad-tenant-id",
         "export-bad-initial-domain", "route-stack-is-a-directory",
         "route-live-ca-file-missing"],
)
def test_bad_paths_and_settings_exit_1_with_a_clear_message_and_nothing_written(
        scratch: Path, args: list[str], env: dict[str, str], message: str) -> None:
    (scratch / "stacks" / "missing-ca.yaml").write_text(REAL_TENANT.format(ca="/nonexistent/ca.pem"),
                                                       encoding="utf-8")
    (scratch / "stacks" / "real.yaml").write_text(REAL_TENANT.format(ca="/nonexistent/ca.pem"), encoding="utf-8")
    other = scratch / "stacks" / "other.yaml"
    other.write_text("# someone's notes\n", encoding="utf-8")
    before = {p: p.read_bytes() for p in (scratch / "stacks").iterdir()}

    result = _cli([a.format(root=scratch) for a in args], scratch,
                  {k: v.format(root=scratch) for k, v in env.items()})

    _no_traceback(result)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert message in result.stderr
    assert result.stdout == ""
    assert {p: p.read_bytes() for p in (scratch / "stacks").iterdir()} == before
    assert "NotTheRealSecret42" not in result.stderr


@pytest.mark.parametrize(("args", "command", "code"), [
    (["plan", "--stack", "dev", "--bogus"], "mailflow plan", 1),
    (["validate", "--format", "xml"], "mailflow validate", 2),
    (["apply"], "mailflow apply", 2),
    (["--bogus"], "mailflow", 2),
    (["no-such-command"], "mailflow", 2),
], ids=["plan-unknown-option", "validate-bad-choice", "apply-missing-option", "group-unknown-option",
        "unknown-command"])
def test_a_usage_error_is_one_error_line_naming_the_command_and_its_help(
        args: list[str], command: str, code: int) -> None:
    # our shape and exit code, whatever click's own wording of the problem (it changes between releases)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == code, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {command}: "), lines
    assert lines[0].endswith(f"(see '{command} --help')"), lines
    assert args[-1] in lines[0] or args[0] == "apply", lines


def test_plan_out_creates_a_missing_directory_and_writes_the_whole_plan(scratch: Path) -> None:
    result = _cli(["plan", "--stack", "dev", "--out", "build/plans/dev.txt"], scratch)
    _no_traceback(result)
    assert result.returncode == 0, result.stderr
    written = (scratch / "build" / "plans" / "dev.txt").read_text(encoding="utf-8")
    assert written.startswith("Stack 'dev'") and "Plan:" in written
    assert [p.name for p in (scratch / "build" / "plans").iterdir()] == ["dev.txt"]  # no temporary file left


def test_export_refuses_emulator_together_with_a_tenant_id(scratch: Path) -> None:
    result = CliRunner().invoke(main, ["export", "--stack", str(scratch / "stacks" / "new.yaml"), "--emulator",
                                       "--tenant-id", "11111111-2222-3333-4444-555555555555"])
    assert result.exit_code == 2
    assert "does not take --tenant-id" in result.stderr
    assert not (scratch / "stacks" / "new.yaml").exists()


def test_export_force_replaces_an_existing_file_keeping_its_permissions(scratch: Path) -> None:
    target = scratch / "exported.yaml"
    target.write_text("# old\n", encoding="utf-8")
    target.chmod(0o644)
    result = _cli(["export", "--stack", "dev", "--out", str(target), "--force"], scratch)
    assert result.returncode == 0, result.stderr
    assert "acceptedDomains:" in target.read_text(encoding="utf-8")
    assert target.stat().st_mode & 0o777 == 0o644


# ------------------------------------------------------------------------------------------------------ route


@pytest.mark.parametrize(
    "args",
    [
        ["not an address"],
        ["@contoso.com"],
        ["a@b@contoso.com"],
        ["user@-bad-.com"],
        ["--from-ip", "203.0.113.10", "--sender", "bad sender"],
        ["--cert-subject", "not a domain!"],
        ["--cert-subject", "user@contoso.com"],
    ],
    ids=["recipient-with-spaces", "recipient-without-local-part", "recipient-with-two-ats", "recipient-bad-label",
         "sender-with-spaces", "cert-subject-not-a-domain", "cert-subject-an-address"],
)
def test_route_refuses_a_malformed_address_before_simulating(scratch: Path, args: list[str]) -> None:
    result = CliRunner().invoke(main, ["route", "--stack", str(scratch / "stacks" / "dev.yaml"), *args])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: mailflow route: ") and "allowed:" in result.stderr
    assert result.stderr.rstrip().endswith("(see 'mailflow route --help')"), result.stderr
    assert "Route:" not in result.stdout and "Connector:" not in result.stdout


# -------------------------------------------------------------------------------------------- emulator serve


@pytest.mark.parametrize(
    ("seed", "state_under_file", "message"),
    [
        ("{bad", False, "seed.json:1:2: the seed file is not valid JSON"),
        ("[]", False, 'a JSON object with a "tenants" list'),
        (None, True, "cannot use the state directory"),
    ],
    ids=["seed-not-json", "seed-not-an-object", "state-dir-under-a-file"],
)
def test_emulator_serve_names_the_bad_seed_or_state_directory(
        scratch: Path, seed: str | None, state_under_file: bool, message: str) -> None:
    args = ["emulator", "serve", "--port", "0"]
    if seed is not None:
        (scratch / "seed.json").write_text(seed, encoding="utf-8")
        args += ["--seed", str(scratch / "seed.json"), "--state-dir", str(scratch / "emu")]
    if state_under_file:
        args += ["--state-dir", str(scratch / "a-file" / "emu")]
    result = _cli(args, scratch, timeout=30)
    _no_traceback(result)
    assert result.returncode == 1
    assert message in result.stderr
    assert "cannot listen" not in result.stderr


# ------------------------------------------------------------------------------------------------ credentials


def test_a_wrong_secret_is_reported_as_a_sign_in_failure_without_the_secret(project: Project) -> None:
    project.write_stack(STACK)
    env = {**project.tenant.env, "AZURE_CLIENT_SECRET": "Wr0ngSecretValue!"}
    result = _cli(["plan", "--stack", "test", "--root", str(project.root)], project.root, env)
    _no_traceback(result)
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot sign in to the tenant:")
    assert "Nothing was read or changed." in result.stderr
    assert "Wr0ngSecretValue!" not in result.stderr + result.stdout


# ------------------------------------------------------------------------------------------------------ Ctrl-C


def _read_until(stream: Any, marker: str, deadline: float) -> str:
    out = b""
    fd = stream.fileno()
    while marker.encode() not in out and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            out += chunk
    return out.decode(errors="replace")


_THREE_WRITES = STACK + """\
  - name: Second partner
    connectorType: Partner
    senderDomains: [second.example.com]
outboundConnectors:
  - name: To partner
    connectorType: Partner
    recipientDomains: [partner.example.com]
"""


def _interrupted_apply(project: Project, signals: list[int]) -> tuple[int, str, str]:
    """Run apply (one write at a time, creates answering after 3 s), send ``signals`` while the first create is
    in flight; return the exit code, stdout and stderr."""
    project.write_stack(_THREE_WRITES)
    project.tenant.faults(latency=3.0, cmdlets=["New-InboundConnector"])
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AZURE_")}, **project.tenant.env,
           "MAILFLOW_STATE_DIR": str(project.root / ".state"), "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    proc = subprocess.Popen(
        [*MAILFLOW_PROCESS, "apply", "--stack", "test",
         "--root", str(project.root), "--auto-approve", "--parallelism", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )
    try:
        seen = _read_until(proc.stdout, "Applying 3 change(s)", time.monotonic() + 45)
        assert "Applying 3 change(s)" in seen
        time.sleep(1.0)  # the first create is now in flight (it answers after 3 s)
        for signum in signals:
            proc.send_signal(signum)
            time.sleep(0.2)
        out, err = proc.communicate(timeout=45)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    project.tenant.clear_faults()
    return proc.returncode, seen + out.decode(), err.decode()


@pytest.mark.parametrize(("signum", "name"), [(signal.SIGINT, "Ctrl-C"), (signal.SIGTERM, "SIGTERM")],
                         ids=["ctrl-c", "sigterm-from-a-cancelled-ci-job"])
def test_a_first_interrupt_lets_the_write_in_flight_finish_then_reports_done_and_not_started(
        project: Project, signum: int, name: str) -> None:
    code, out, err = _interrupted_apply(project, [signum])
    assert code == 1
    assert "Traceback" not in err
    assert f"{name}: stopping after the writes in flight (1)" in out
    assert f"error: interrupted ({name}); the writes in flight finished and no new write was started." in err
    assert "Done (1):\n  create InboundConnector 'From partner': done (" in err
    assert "Not started (2):\n  create InboundConnector 'Second partner'\n  create OutboundConnector 'To partner'" \
        in err
    assert "Run `mailflow plan`" in err
    names = [c["Name"] for c in project.tenant.admin_client().list("InboundConnector")]
    assert names == ["From partner"]  # the write in flight finished; nothing else was started


def test_a_second_interrupt_stops_at_once_and_reports_the_write_in_flight_as_unknown(project: Project) -> None:
    code, out, err = _interrupted_apply(project, [signal.SIGINT, signal.SIGINT])
    assert code == 1
    assert "Traceback" not in err
    assert "error: interrupted (Ctrl-C, twice)" in err
    assert "In progress when interrupted (the tenant may or may not have applied it):\n" \
           "  create InboundConnector 'From partner'" in err
    assert "Not started (2):\n  create InboundConnector 'Second partner'\n  create OutboundConnector 'To partner'" \
        in err
    assert "Done (0):" in err


# ------------------------------------------------------------------------------------------- the safety net


def test_an_unexpected_error_is_one_line_on_stderr_with_secrets_redacted(
        scratch: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import o365_mailflow.cli.validate as validate_module

    def broken(path: Any, **options: Any) -> Any:
        raise RuntimeError("disk said no to S3cretFromTheEnv")

    monkeypatch.setattr(validate_module, "validate_stack", broken)
    monkeypatch.delenv("MAILFLOW_DEBUG", raising=False)
    result = CliRunner().invoke(main, ["validate", str(scratch / "stacks" / "dev.yaml")],
                                env={"AZURE_CLIENT_SECRET": "S3cretFromTheEnv"})
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.stderr.startswith("error: unexpected RuntimeError: disk said no to <redacted>")
    assert "S3cretFromTheEnv" not in result.output


def test_a_reader_that_stops_early_gets_a_quiet_exit_not_a_traceback(scratch: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1", "MAILFLOW_STATE_DIR": str(scratch / ".state")}
    # 3000 "valid" lines on stdout: far more than a pipe holds once the reader has gone.
    proc = subprocess.Popen([*MAILFLOW_PROCESS, "validate",
                             *["stacks/dev.yaml"] * 3000], cwd=scratch, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()  # `mailflow validate ... | head -1`
    proc.stdout.close()
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=60) == 1
    assert first.startswith(b"stacks/dev.yaml: valid")
    assert err == ""


def test_validate_reports_every_file_and_puts_errors_on_stderr(scratch: Path) -> None:
    (scratch / "one.yaml").write_text("tenant:\n  emulator: yes\n", encoding="utf-8")
    (scratch / "two.yaml").write_text("tenant: {emulator: true}\noutboundConnectors:\n  - name: o\n"
                                      "    recipientDomains: [contoso.com]\n    tlsSettings: Bogus\n", encoding="utf-8")
    (scratch / "three.yaml").write_text("tenant: {emulator: true\n", encoding="utf-8")
    result = _cli(["validate", "one.yaml", "two.yaml", "three.yaml", "stacks/dev.yaml"], scratch)
    _no_traceback(result)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [line for line in result.stdout.splitlines() if "error" not in line]
    assert "stacks/dev.yaml: valid" in result.stdout
    for expected in ("one.yaml:2: tenant.emulator:", "two.yaml:5: outboundConnectors[0].tlsSettings: unknown value "
                     "Bogus (allowed: EncryptionOnly", "three.yaml:2: not valid YAML", "three.yaml: 1 error(s)"):
        assert expected in result.stderr
