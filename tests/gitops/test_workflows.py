"""The GitHub Actions workflows in ``.github/workflows/``.

Matrix: every workflow parses; every ``mailflow <sub>`` it runs is a real subcommand and every ``--flag`` it
passes is an option of that click command; every stack in the preview matrix is a stack file; the preview
posts one comment per stack found by the same hidden marker the renderer writes; credentials come from GitHub
OIDC (``id-token: write``) and no Azure secret is referenced; production deploys wait for the protected
``production`` environment, after dev, one at a time; and the commands the preview runs actually work offline
(``mailflow validate`` on the committed stacks).
"""

from __future__ import annotations

import importlib
import re
import shlex
import subprocess
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


def test_there_are_preview_deploy_and_ci_workflows():
    assert {"preview.yml", "deploy.yml", "ci.yml"} <= {p.name for p in WORKFLOW_FILES}


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_every_workflow_parses_and_has_jobs_with_steps_or_a_called_workflow(path):
    workflow = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert triggers(workflow)
    for name, job in workflow["jobs"].items():
        assert job.get("steps") or job.get("uses"), name
        if "uses" in job:
            assert (ROOT / job["uses"].removeprefix("./")).is_file(), job["uses"]


def test_the_workflows_run_mailflow_validate_and_plan():
    assert {argv[0] for _, argv in INVOCATIONS} >= {"validate", "plan"}


@pytest.mark.parametrize(("file", "argv"), INVOCATIONS, ids=[f"{f}:{' '.join(a[:2])}" for f, a in INVOCATIONS])
def test_every_mailflow_command_and_flag_in_a_workflow_exists(file, argv):
    assert argv and argv[0] in COMMANDS, f"{file}: mailflow {argv[:1]} is not a subcommand"
    module_name, attr = COMMANDS[argv[0]].split(":")
    command: click.Command = getattr(importlib.import_module(module_name), attr)
    options = {opt for p in command.params for opt in getattr(p, "opts", []) + getattr(p, "secondary_opts", [])}
    for word in argv[1:]:
        if word.startswith("-"):
            assert word.split("=")[0] in options, f"{file}: mailflow {argv[0]} has no option {word}"


def test_the_plan_step_asks_for_markdown_against_the_merged_stack():
    preview = [argv for file, argv in INVOCATIONS if file == "preview.yml" and argv[0] == "plan"]
    assert preview, "preview.yml must run mailflow plan"
    (argv,) = preview
    assert argv[argv.index("--format") + 1] == "markdown"
    assert argv[argv.index("--baseline") + 1].startswith("git:origin/")
    assert "--out" in argv


def test_the_preview_runs_on_pull_requests_for_every_stack_in_its_matrix():
    workflow = load("preview.yml")
    assert "pull_request" in triggers(workflow)
    (job,) = workflow["jobs"].values()
    matrix = job["strategy"]["matrix"]["stack"]
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
        assert template.group(1).replace("${process.env.STACK}", stack) == marker(stack)
    assert "startsWith(marker)" in script and "createComment" in script


def test_the_preview_runs_pulumi_preview_for_the_same_stack():
    workflow = load("preview.yml")
    pulumi = [s for _, s in steps(workflow) if s.get("uses", "").startswith("pulumi/actions")]
    assert [s["with"]["command"] for s in pulumi] == ["preview"]
    assert pulumi[0]["with"]["stack-name"] == "${{ matrix.stack }}"


def test_deploys_run_pulumi_up_on_main_dev_first_then_production_behind_its_environment():
    deploy = load("deploy.yml")
    assert triggers(deploy)["push"]["branches"] == ["main"]
    assert deploy["concurrency"]["cancel-in-progress"] is False
    jobs = deploy["jobs"]
    assert jobs["prod"]["needs"] == "dev"
    assert jobs["prod"]["with"] == {"stack": "prod", "environment": "production"}
    assert jobs["dev"]["with"]["stack"] == "dev"
    assert {j["with"]["stack"] for j in jobs.values()} <= STACKS

    called = load(Path(jobs["prod"]["uses"]).name)
    assert "workflow_call" in triggers(called)
    (up,) = called["jobs"].values()
    assert up["environment"] == "${{ inputs.environment }}"
    assert up["concurrency"]["cancel-in-progress"] is False and "inputs.stack" in up["concurrency"]["group"]
    pulumi = [s for _, s in steps(called) if s.get("uses", "").startswith("pulumi/actions")]
    assert [s["with"]["command"] for s in pulumi] == ["up"]


@pytest.mark.parametrize("name", ["preview.yml", "deploy.yml", "pulumi-up.yml"])
def test_credentials_come_from_github_oidc_and_no_azure_secret_is_stored(name):
    text = (WORKFLOWS / name).read_text(encoding="utf-8")
    workflow = yaml.safe_load(text)
    assert workflow["permissions"]["id-token"] == "write"
    assert not re.search(r"secrets\.AZURE", text, re.IGNORECASE)
    # No token written to a file once (it expires in 5-10 minutes, AADSTS700024): the runner's token service
    # (ACTIONS_ID_TOKEN_REQUEST_URL, given to every step by `id-token: write`) is asked at each sign-in.
    assert "getIDToken" not in text and "AZURE_FEDERATED_TOKEN_FILE" not in text


def test_ci_runs_the_same_command_as_the_readme_and_checks_generated_docs():
    scripts = [script for file, script in run_scripts() if file == "ci.yml"]
    assert ".ci/run" in scripts
    assert any("o365_mailflow.docgen --check" in s for s in scripts)
    assert (ROOT / ".ci" / "run").is_file()


@pytest.mark.parametrize("stack", sorted(STACKS))
def test_the_validate_step_of_the_preview_passes_on_the_committed_stacks(stack, monkeypatch):
    argv = next(a for f, a in INVOCATIONS if f == "preview.yml" and a[0] == "validate")
    argv = [stack if w == "EXPR" else w for w in argv]
    monkeypatch.chdir(ROOT)
    from o365_mailflow.cli import main

    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 0, result.output
    assert "valid" in result.output


def step_named(workflow: dict[str, Any], prefix: str) -> dict[str, Any]:
    return next(s for _, s in steps(workflow) if s.get("name", "").startswith(prefix))


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_a_failed_plan_replaces_the_comment_with_the_errors_under_the_same_marker(tmp_path, stack):
    step = step_named(load("preview.yml"), "Report a failed")
    (tmp_path / "validate.txt").write_text("stacks/x.yaml:3: prune: expected true or false, got 'maybe'\n")
    env = {"PATH": "/usr/bin:/bin", "STACK": stack}
    result = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 0, result.stderr
    body = (tmp_path / "plan.md").read_text()
    assert body.splitlines()[0] == marker(stack)
    assert f"`{stack}`" in body.splitlines()[1] and "[!CAUTION]" in body
    assert "expected true or false, got 'maybe'" in body
    assert step["env"]["STACK"] == "${{ matrix.stack }}"


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
