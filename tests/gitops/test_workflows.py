"""The GitHub Actions workflows in ``.github/workflows/``.

Matrix: every workflow parses and passes actionlint and zizmor with no finding (each one ignored inline carries
its reason); every ``mailflow <sub>`` it runs is a real subcommand and every ``--flag`` an option of it; the PR
comment is ``mailflow pulumi-preview`` per stack, and the deploy runs ``mailflow pulumi-deploy --reviewed`` on
the very file the preview uploaded (same artifact and file names); one comment per stack, found by the marker
the renderer writes; every action is pinned by commit SHA with its tag; ``permissions`` are empty at the top
and granted per job, ``id-token: write`` only where a job signs in; no stored secret is referenced at all (no
``secrets: inherit``, no PULUMI_ACCESS_TOKEN); each environment deploys in its own concurrency group; stacks
on the emulated tenant are skipped, not previewed or deployed; forks get a notice, not a failure.
"""

from __future__ import annotations

import importlib
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import click
import pytest
import yaml
from click.testing import CliRunner

from o365_mailflow.cli import COMMANDS
from o365_mailflow.render.markdown import marker

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
WORKFLOW_FILES = sorted(WORKFLOWS.glob("*.yml"))
STACKS = {p.stem for p in (ROOT / "stacks").glob("*.yaml")}


def load(name: str) -> dict[str, Any]:
    return yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))


def triggers(workflow: dict[str, Any]) -> dict[str, Any]:
    # YAML 1.1 (PyYAML) reads the key `on` as the boolean True.
    on = workflow.get("on", workflow.get(True))
    return on if isinstance(on, dict) else {name: None for name in ([on] if isinstance(on, str) else on)}


def steps(workflow: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for job_name, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            yield job_name, step


def run_scripts() -> Iterator[tuple[str, str]]:
    for path in WORKFLOW_FILES:
        for _, step in steps(yaml.safe_load(path.read_text(encoding="utf-8"))):
            if "run" in step:
                yield path.name, step["run"]


_EXPR = re.compile(r"\$\{\{.*?\}\}")
_SEPARATORS = {"&&", "||", ";", "|"}
_REDIRECT = re.compile(r"^\d*[<>]")


def mailflow_invocations() -> list[tuple[str, list[str]]]:
    """Every ``mailflow ...`` command line in a run step, as argv (GitHub expressions replaced by a word)."""
    found = []
    for file, script in run_scripts():
        script = _EXPR.sub("EXPR", script).replace("\\\n", " ")
        for line in script.splitlines():
            words = shlex.split(line, comments=True)
            for i, word in enumerate(words):
                if word == "mailflow":
                    argv = []
                    for w in words[i + 1 :]:
                        if w in _SEPARATORS or _REDIRECT.match(w):
                            break
                        argv.append(w)
                    found.append((file, argv))
    return found


INVOCATIONS = mailflow_invocations()


PREVIEW_ARGS = next(argv for file, argv in INVOCATIONS if file == "preview.yml" and argv[0] == "pulumi-preview")
DEPLOY_ARGS = next(argv for file, argv in INVOCATIONS if file == "pulumi-up.yml" and argv[0] == "pulumi-deploy")
_SHA_PIN = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
_TAG_COMMENT = re.compile(r"@[0-9a-f]{40}\s+#\s+v\d+\.\d+\.\d+\b")


def option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def jobs_of(name: str) -> dict[str, dict[str, Any]]:
    return load(name)["jobs"]


def test_there_are_preview_deploy_and_ci_workflows():
    assert {"preview.yml", "deploy.yml", "pulumi-up.yml", "ci.yml"} <= {p.name for p in WORKFLOW_FILES}


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_every_workflow_parses_and_has_jobs_with_steps_or_a_called_workflow(path):
    workflow = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert triggers(workflow)
    for name, job in workflow["jobs"].items():
        assert job.get("steps") or job.get("uses"), name
        if "uses" in job:
            assert (ROOT / job["uses"].removeprefix("./")).is_file(), job["uses"]


def test_the_comment_is_pulumi_preview_and_the_deploy_is_pulumi_deploy_of_what_it_reviewed():
    commands = {(file, argv[0]) for file, argv in INVOCATIONS}
    assert ("preview.yml", "pulumi-preview") in commands and ("pulumi-up.yml", "pulumi-deploy") in commands
    # The mailflow CLI path (plan/apply without Pulumi) is not what these workflows deploy: docs/gitops.md.
    assert not {argv[0] for _, argv in INVOCATIONS} & {"plan", "apply"}


@pytest.mark.parametrize(("file", "argv"), INVOCATIONS, ids=[f"{f}:{' '.join(a[:2])}" for f, a in INVOCATIONS])
def test_every_mailflow_command_and_flag_in_a_workflow_exists(file, argv):
    assert argv and argv[0] in COMMANDS, f"{file}: mailflow {argv[:1]} is not a subcommand"
    module_name, attr = COMMANDS[argv[0]].split(":")
    command: click.Command = getattr(importlib.import_module(module_name), attr)
    options = {opt for p in command.params for opt in getattr(p, "opts", []) + getattr(p, "secondary_opts", [])}
    for word in argv[1:]:
        if word.startswith("-"):
            assert word.split("=")[0] in options, f"{file}: mailflow {argv[0]} has no option {word}"


def test_the_preview_writes_the_comment_the_whole_plan_and_the_reviewed_json_into_the_artifact():
    argv = PREVIEW_ARGS
    assert option(argv, "--stack") == "$STACK" and option(argv, "--format") == "markdown"
    upload = step_named(load("preview.yml"), "Upload the whole plan")
    artifact = upload["with"]["name"].replace("${{ matrix.stack }}", "$STACK")
    assert option(argv, "--artifact") == artifact  # the trimmed comment names the artifact that is uploaded
    folder = upload["with"]["path"].rstrip("/")
    for flag in ("--out", "--full-out", "--json-out"):
        assert option(argv, flag).startswith(folder + "/"), flag
    assert option(argv, "--json-out") == f"{folder}/reviewed-$STACK.json"
    assert upload["if"].startswith("always()")  # uploaded on every run, failed previews included


def test_the_deploy_checks_the_very_json_the_preview_uploaded():
    preview_upload = step_named(load("preview.yml"), "Upload the whole plan")["with"]
    download = step_named(load("pulumi-up.yml"), "Download the reviewed plan")["with"]
    assert download["name"] == preview_upload["name"].replace("matrix.stack", "inputs.stack")
    assert download["run-id"] == "${{ inputs.preview-run-id }}"
    reviewed = option(DEPLOY_ARGS, "--reviewed")
    assert reviewed == f"{download['path']}/{Path(option(PREVIEW_ARGS, '--json-out')).name}"
    assert option(DEPLOY_ARGS, "--stack") == "$STACK"


def test_the_deploy_finds_the_reviewed_plan_of_the_merged_pull_request():
    deploy = load("deploy.yml")
    find = deploy["jobs"]["reviewed"]["steps"][0]["run"]
    assert "repos/$REPO/commits/$SHA/pulls" in find
    assert "actions/workflows/preview.yml/runs?event=pull_request&head_sha=$head&status=success" in find
    for env in ("dev", "prod"):
        assert deploy["jobs"][env]["with"]["preview-run-id"] == "${{ needs.reviewed.outputs.run-id }}"
        assert "reviewed" in deploy["jobs"][env]["needs"]


@pytest.mark.parametrize("pull_request", ["not-a-number", "12; rm -rf /"])
def test_the_deploy_stops_with_the_reason_when_no_pull_request_was_reviewed(tmp_path, pull_request):
    step = jobs_of("deploy.yml")["reviewed"]["steps"][0]
    env = {"PATH": "/usr/bin:/bin", "REPO": "contoso/mailflow", "SHA": "0" * 40, "PR_INPUT": pull_request,
           "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"), "GITHUB_OUTPUT": str(tmp_path / "output")}
    result = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "::error title=Not deployed: no reviewed plan::" in result.stdout
    assert "was not merged from a pull request" in (tmp_path / "summary.md").read_text()
    assert not (tmp_path / "output").exists()


def test_the_preview_runs_on_pull_requests_for_every_stack_in_its_matrix():
    workflow = load("preview.yml")
    assert "pull_request" in triggers(workflow) and "pull_request_target" not in triggers(workflow)
    matrix = workflow["jobs"]["preview"]["strategy"]["matrix"]["stack"]
    assert set(matrix) == {"dev", "prod"} and set(matrix) <= STACKS
    python = next(s for _, s in steps(workflow) if s.get("uses", "").startswith("actions/setup-python"))
    assert str(python["with"]["python-version"]) == "3.11"


def test_the_preview_comment_is_found_by_the_marker_the_renderer_writes():
    workflow = load("preview.yml")
    script = next(
        s["with"]["script"]
        for _, s in steps(workflow)
        if s.get("uses", "").startswith("actions/github-script") and "updateComment" in s["with"]["script"]
    )
    template = re.search(r"const marker = `([^`]*)`", script)
    assert template, "the comment step must build the marker"
    for stack in workflow["jobs"]["preview"]["strategy"]["matrix"]["stack"]:
        assert template.group(1).replace("${stack}", stack) == marker(stack)
    assert "startsWith(marker)" in script and "createComment" in script
    handed = step_named(workflow, "Hand the comment")["with"]["name"]
    assert handed == "mailflow-comment-${{ matrix.stack }}" and "/^mailflow-comment-/" in script


def test_the_comment_job_runs_no_pull_request_code_and_the_preview_job_holds_no_write_token():
    jobs = jobs_of("preview.yml")
    comment = jobs["comment"]
    assert comment["permissions"] == {"pull-requests": "write"}
    assert not any("actions/checkout" in s.get("uses", "") or "run" in s for s in comment["steps"])
    assert jobs["preview"]["permissions"] == {"contents": "read", "id-token": "write"}


def test_forks_get_a_notice_and_no_failing_check():
    jobs = jobs_of("preview.yml")
    fork_if = "github.event.pull_request.head.repo.full_name != github.repository"
    assert jobs["fork"]["if"] == fork_if
    assert jobs["preview"]["if"] == fork_if.replace("!=", "==")
    assert jobs["fork"]["permissions"] == {}
    summary = jobs["fork"]["steps"][0]["run"]
    assert "GITHUB_STEP_SUMMARY" in summary and "from a fork" in summary
    result = jobs["result"]
    assert result["if"] == "always()" and set(result["needs"]) == {"fork", "preview", "comment"}
    for fork, preview, comment, ok in [("success", "skipped", "skipped", True), ("skipped", "success", "success", True),
                                        ("skipped", "failure", "success", False),
                                        ("skipped", "success", "failure", False)]:
        env = {"PATH": "/usr/bin:/bin", "FORK": fork, "PREVIEW": preview, "COMMENT": comment}
        ran = subprocess.run(["bash", "--noprofile", "--norc", "-e", "-c", result["steps"][0]["run"]], env=env,
                             capture_output=True, text=True, timeout=30)
        assert (ran.returncode == 0) is ok, (fork, preview, comment)


def test_deploys_run_on_main_dev_first_then_production_behind_its_environment():
    deploy = load("deploy.yml")
    assert triggers(deploy)["push"]["branches"] == ["main"]
    jobs = deploy["jobs"]
    assert jobs["prod"]["needs"] == ["reviewed", "dev"]
    assert jobs["prod"]["with"]["stack"] == "prod" and jobs["prod"]["with"]["environment"] == "production"
    assert jobs["dev"]["with"]["stack"] == "dev" and jobs["dev"]["with"]["environment"] == "dev"
    assert {j["with"]["stack"] for j in jobs.values() if "with" in j} <= STACKS

    called = load(Path(jobs["prod"]["uses"]).name)
    assert "workflow_call" in triggers(called)
    (up,) = called["jobs"].values()
    assert up["environment"] == "${{ inputs.environment }}"


def test_each_environment_deploys_in_its_own_group_so_a_pending_approval_blocks_nothing_else():
    assert "concurrency" not in load("deploy.yml")  # one group for all deploys: prod's approval held dev back
    (up,) = jobs_of("pulumi-up.yml").values()
    assert up["concurrency"] == {"group": "mailflow-deploy-${{ inputs.environment }}", "cancel-in-progress": False}


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_permissions_are_empty_at_the_top_and_id_token_is_granted_only_to_jobs_that_sign_in(path):
    workflow = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert workflow["permissions"] == {}
    for name, job in workflow["jobs"].items():
        assert "permissions" in job, f"{path.name}: job {name} must state its permissions"
        job_text = yaml.safe_dump(job)
        signs_in = ("pulumi/auth-actions" in job_text or "pulumi-up.yml" in job.get("uses", ""))
        assert (job["permissions"].get("id-token") == "write") is signs_in, f"{path.name}: {name}"


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_no_stored_secret_reaches_a_workflow(path):
    text = "\n".join(line for line in path.read_text(encoding="utf-8").splitlines()
                     if not line.lstrip().startswith("#"))  # the header comments explain what is absent
    assert "secrets." not in text and "secrets: inherit" not in text
    assert "PULUMI_ACCESS_TOKEN" not in text  # Pulumi Cloud: a short-lived token from pulumi/auth-actions
    # No OIDC token written to a file once (it expires in 5-10 minutes, AADSTS700024): the runner's token service
    # (ACTIONS_ID_TOKEN_REQUEST_URL, given to every step by `id-token: write`) is asked at each sign-in.
    assert "getIDToken" not in text and "AZURE_FEDERATED_TOKEN_FILE" not in text


def test_every_job_that_signs_in_to_pulumi_cloud_exchanges_its_oidc_token_first():
    for name in ("preview.yml", "pulumi-up.yml"):
        workflow = load(name)
        names = [s.get("name", s.get("uses", "")) for _, s in steps(workflow)]
        auth = next(i for i, n in enumerate(names) if n.startswith("Sign in to Pulumi Cloud"))
        first_pulumi = next(i for i, (_, s) in enumerate(steps(workflow)) if "pulumi login" in s.get("run", ""))
        assert auth < first_pulumi, name
        with_ = step_named(workflow, "Sign in to Pulumi Cloud")["with"]
        assert with_["requested-token-type"] == "urn:pulumi:token-type:access_token:team"
        assert with_["organization"] == "${{ vars.PULUMI_ORGANIZATION }}"


def _uses() -> list[tuple[str, str, str]]:
    found = []
    for path in WORKFLOW_FILES:
        for line in path.read_text(encoding="utf-8").splitlines():
            m = re.match(r"^\s*(?:-\s+)?uses:\s+(\S+)(.*)$", line)
            if m:
                found.append((path.name, m.group(1), line))
    return found


@pytest.mark.parametrize(("file", "ref", "line"), _uses(), ids=[f"{f}:{r.split('@')[0]}" for f, r, _ in _uses()])
def test_every_action_is_pinned_by_commit_sha_with_its_tag(file, ref, line):
    if ref.startswith("./"):
        return  # this repository's own reusable workflow, at the same commit
    assert _SHA_PIN.match(ref), f"{file}: {ref} is not pinned by a full commit SHA"
    assert _TAG_COMMENT.search(line), f"{file}: {ref} lacks its tag in a comment (# vX.Y.Z)"


def test_one_action_is_pinned_to_one_sha_everywhere():
    pins: dict[str, set[str]] = {}
    for _, ref, _ in _uses():
        if "@" in ref:
            name, sha = ref.split("@")
            pins.setdefault(name, set()).add(sha)
    assert {name: shas for name, shas in pins.items() if len(shas) > 1} == {}


def test_the_pulumi_cli_the_workflows_install_is_the_version_the_tests_build():
    for name in ("preview.yml", "pulumi-up.yml"):
        install = step_named(load(name), "Install the Pulumi CLI")
        assert "command" not in install["with"]  # install only: mailflow runs pulumi itself
        assert install["with"]["pulumi-version"] == "${{ steps.pulumi-version.outputs.version }}"
        version = step_named(load(name), "Pulumi CLI version")["run"]
        result = subprocess.run(["bash", "-c", version.replace('>> "$GITHUB_OUTPUT"', "")], cwd=ROOT,
                                capture_output=True, text=True, timeout=30)
        go_mod = (ROOT / ".ci" / "pulumi" / "gomodule" / "go.mod").read_text(encoding="utf-8")
        assert result.stdout.strip() == "version=" + re.search(r"pulumi/pkg/v3 (v\S+)", go_mod).group(1)


def test_ci_runs_the_same_command_as_the_readme_and_checks_generated_docs():
    scripts = [script for file, script in run_scripts() if file == "ci.yml"]
    assert ".ci/run" in scripts
    assert any("o365_mailflow.docgen --check" in s for s in scripts)
    assert (ROOT / ".ci" / "run").is_file()
    go = next(s for _, s in steps(load("ci.yml")) if s.get("uses", "").startswith("actions/setup-go"))
    assert go["with"]["go-version-file"] == ".ci/pulumi/gomodule/go.mod"  # the Pulumi CLI and actionlint


@pytest.mark.parametrize("stack", sorted(STACKS))
def test_the_validate_step_of_the_deploy_passes_on_the_committed_stacks(stack, monkeypatch):
    argv = next(a for f, a in INVOCATIONS if f == "pulumi-up.yml" and a[0] == "validate")
    argv = [stack if w == "$STACK" else w for w in argv]
    monkeypatch.chdir(ROOT)
    from o365_mailflow.cli import main

    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 0, result.output
    assert "valid" in result.output


def step_named(workflow: dict[str, Any], prefix: str) -> dict[str, Any]:
    return next(s for _, s in steps(workflow) if s.get("name", "").startswith(prefix))


def _run_step(step: dict[str, Any], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"])}
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
                          cwd=cwd, env={**base, **env}, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_a_failed_preview_replaces_the_comment_with_the_errors_under_the_same_marker(tmp_path, stack):
    step = step_named(load("preview.yml"), "Report a failed")
    (tmp_path / "plan").mkdir()
    (tmp_path / "plan" / "errors.txt").write_text("Error: stacks/x.yaml:3: prune: expected true or false, got 'maybe'\n")
    result = _run_step(step, tmp_path, STACK=stack)
    assert result.returncode == 0, result.stderr
    body = (tmp_path / "plan" / "comment.md").read_text()
    assert body.splitlines()[0] == marker(stack)
    assert f"`{stack}`" in body.splitlines()[1] and "[!CAUTION]" in body
    assert "expected true or false, got 'maybe'" in body
    assert (tmp_path / "plan" / "plan.md").read_text() == body  # the artifact holds the errors too
    assert load("preview.yml")["jobs"]["preview"]["env"]["STACK"] == "${{ matrix.stack }}"


@pytest.mark.parametrize("name", ["preview.yml", "pulumi-up.yml"])
@pytest.mark.parametrize(("stack", "real"), [("dev", False), ("prod", True)])
def test_stacks_on_the_emulated_tenant_are_neither_previewed_nor_deployed(tmp_path, name, stack, real):
    # The committed Pulumi.dev.yaml is the local emulator (getting started); Pulumi.prod.yaml a real tenant.
    step = step_named(load(name), "Check that the stack targets a real tenant")
    shutil.copy(ROOT / f"Pulumi.{stack}.yaml", tmp_path)
    output, summary = tmp_path / "output", tmp_path / "summary"
    result = _run_step(step, tmp_path, STACK=stack, GITHUB_OUTPUT=str(output), GITHUB_STEP_SUMMARY=str(summary))
    assert result.returncode == 0, result.stderr
    assert output.read_text().splitlines() == [f"real={'true' if real else 'false'}"]
    if name == "preview.yml" and not real:
        comment = (tmp_path / "plan" / "comment.md").read_text()
        assert comment.splitlines()[0] == marker(stack) and "emulated tenant" in comment
    # Every step that signs in, reads the state or the tenant, or fetches the reviewed plan is skipped for them.
    job = jobs_of(name)["preview" if name == "preview.yml" else "deploy"]
    guarded = [s for s in job["steps"]
               if s.get("uses", "").startswith(("pulumi/", "actions/download-artifact"))
               or any(cmd in s.get("run", "") for cmd in ("pulumi login", "mailflow pulumi-", "reviewed/"))]
    assert len(guarded) >= 4
    for s in guarded:
        assert "steps.target.outputs.real == 'true'" in str(s.get("if", "")), s.get("name", s.get("uses"))


@pytest.mark.parametrize("name", ["preview.yml", "pulumi-up.yml"])
def test_the_package_is_installed_into_the_virtualenv_that_pulumi_runs_the_program_with(name):
    pulumi_project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text(encoding="utf-8"))
    venv = pulumi_project["runtime"]["options"]["virtualenv"]
    install = step_named(load(name), "Install")["run"]
    # with the deploy lock: exactly the versions CI tested (tests/test_deploy_lock.py keeps it fresh)
    assert f"python -m venv {venv}" in install
    assert f"{venv}/bin/python -m pip install -c constraints/deploy.txt -e ." in install
    assert f'$PWD/{venv}/bin" >> "$GITHUB_PATH"' in install  # later steps find `mailflow` there


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_stack_the_workflows_deploy_has_pulumi_config(stack):
    assert (ROOT / f"Pulumi.{stack}.yaml").is_file()


# ------------------------------------------------------------------------------------------ linters


def _tool_missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(reason)  # CI must run the linters: never skipped there
    pytest.skip(reason)


@pytest.fixture(scope="module")
def actionlint() -> str:
    if shutil.which("go") is None and not shutil.which("actionlint"):
        _tool_missing("actionlint needs Go to build it (.ci/actionlint): install Go, or put actionlint on PATH")
    if shutil.which("go") is None:
        return str(shutil.which("actionlint"))
    built = subprocess.run(["bash", str(ROOT / ".ci" / "actionlint")], capture_output=True, text=True, timeout=900)
    assert built.returncode == 0, built.stderr
    return built.stdout.strip().splitlines()[-1]


def test_actionlint_finds_nothing(actionlint):
    result = subprocess.run([actionlint, "-no-color", *[str(p.relative_to(ROOT)) for p in WORKFLOW_FILES]],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_finds_nothing_and_every_ignore_says_why():
    zizmor = shutil.which("zizmor", path=str(Path(sys.executable).parent)) or shutil.which("zizmor")
    if zizmor is None:
        _tool_missing("zizmor is not installed: pip install -e '.[test]'")
    result = subprocess.run([zizmor, "--offline", "--no-progress", "--format", "plain", "--color", "never",
                             "--persona", "pedantic", str(WORKFLOWS)],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    for path in WORKFLOW_FILES:
        lines = path.read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(lines):
            if "zizmor: ignore[" in line:
                # the reason is on the line before, as a comment
                assert lines[i - 1].strip().startswith("#") and len(lines[i - 1].strip()) > 20, f"{path.name}:{i + 1}"


# ------------------------------------------------------------------------------------------ docs


def _doc_section(title: str) -> str:
    text = (ROOT / "docs" / "gitops.md").read_text(encoding="utf-8")
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def _shown_name(workflow: dict[str, Any], job_id: str, **inputs: str) -> str:
    """The name GitHub shows for a job: its `name:` with matrix/inputs filled in, else its id."""
    name = str(workflow["jobs"][job_id].get("name", job_id))
    for key, value in inputs.items():
        name = name.replace("${{ " + key + " }}", value)
    return name


def test_the_documented_required_checks_are_the_names_github_shows():
    rows = [[c.strip().strip("`") for c in line.strip("|").split("|")]
            for line in _doc_section("Required checks").splitlines() if line.startswith("| `")]
    assert rows, "docs/gitops.md lists the required checks in a table"
    by_workflow = {yaml.safe_load(p.read_text(encoding="utf-8"))["name"]: p.name for p in WORKFLOW_FILES}
    for check, workflow_name, shown in rows:
        workflow = load(by_workflow[workflow_name])
        names = {_shown_name(workflow, job_id) for job_id in workflow["jobs"]}
        assert check in names, f"no job named {check!r} in {workflow_name}"
        assert shown == f"{workflow_name} / {check} (pull_request)"
        assert "pull_request" in triggers(workflow)
    assert {r[0] for r in rows} == {"test", "preview result"}


def test_the_documented_deploy_job_names_are_the_names_github_shows():
    deploy, called = load("deploy.yml"), load("pulumi-up.yml")
    (inner,) = called["jobs"]
    shown = {f"{deploy['name']} / {_shown_name(deploy, 'reviewed')}"}
    for job_id in ("dev", "prod"):
        stack = deploy["jobs"][job_id]["with"]["stack"]
        shown.add(f"{deploy['name']} / {_shown_name(deploy, job_id)} / "
                  f"{_shown_name(called, inner, **{'inputs.stack': stack})}")
    section = _doc_section("Required checks")
    for name in shown:
        assert f"`{name}`" in section, name
    preview = load("preview.yml")
    table = _doc_section("The workflows (`.github/workflows/`)")
    for job_id in preview["jobs"]:
        for stack in (["dev", "prod"] if job_id == "preview" else [""]):
            assert f"`{_shown_name(preview, job_id, **{'matrix.stack': stack})}`" in table, job_id


def test_a_preview_that_never_ran_still_replaces_the_comment_with_the_reason(tmp_path):
    step = step_named(load("preview.yml"), "Report a failed")
    assert step["if"].startswith("always()")  # also after a failed sign-in, which skips the preview step
    result = _run_step(step, tmp_path, STACK="prod")
    assert result.returncode == 0, result.stderr
    body = (tmp_path / "plan" / "comment.md").read_text()
    assert body.splitlines()[0] == marker("prod") and "The preview did not run" in body
