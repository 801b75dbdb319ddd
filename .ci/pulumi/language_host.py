"""A Pulumi language host for Python programs, for machines that cannot install the official one.

Why it exists: the Pulumi CLI is built here from its Go module (``.ci/pulumi-cli``), but the official Python
language host lives in a nested Go module (``github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3``)
that the Go module proxy reachable from these machines does not serve (403 for every version, checked on
2026-11-30). The engine only needs the ``LanguageRuntime`` gRPC service, whose Python stubs ship in the
``pulumi`` package, so this host implements the part of it that ``preview``/``up``/``refresh``/``destroy`` use:

* ``serve`` mode (what the engine starts): prints its port, answers ``GetPluginInfo``, ``GetRequiredPlugins``/
  ``GetRequiredPackages`` (nothing to install: the program uses dynamic providers only), ``GetProgramDependencies``,
  ``InstallDependencies`` (the virtualenv is made by the project's own install step), ``About`` and ``Run``.
* ``Run`` starts the program in a child process with the interpreter of the project's virtualenv (Pulumi.yaml's
  ``runtime.options.virtualenv``, as the official host does), in ``exec`` mode below.
* ``exec`` mode configures the SDK's runtime (monitor, engine, project, stack, config and secret keys) and runs
  the program's entry point with ``runpy`` inside ``pulumi.runtime.run_in_stack``, as the official
  ``pulumi-language-python-exec`` shim does.

What it does not do (not used by this project): policy packs, ``pulumi new`` templates, code generation,
``pulumi package``, debugger attach, toolchains other than a plain virtualenv.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import runpy
import subprocess
import sys
import traceback
from concurrent import futures
from pathlib import Path
from typing import Any, Iterator

EXEC_MODE = "__mailflow_exec__"


# ----------------------------------------------------------------------------------------------- exec mode


def _exec_program(argv: list[str]) -> int:
    """Run one Pulumi program in this process (the child that ``Run`` starts)."""
    import pulumi
    import pulumi.runtime

    ap = argparse.ArgumentParser(prog="language_host.py exec")
    for name in ("project", "stack", "organization", "parallel", "dry_run", "pwd", "monitor", "engine", "root"):
        ap.add_argument(f"--{name}")
    ap.add_argument("program")
    ap.add_argument("args", nargs="*")
    args = ap.parse_args(argv)

    config = pulumi.runtime.get_config_env()
    pulumi.runtime.set_all_config(config, pulumi.runtime.get_config_secret_keys_env())
    pulumi.runtime.configure(pulumi.runtime.Settings(
        project=args.project, stack=args.stack, monitor=args.monitor, engine=args.engine,
        parallel=int(args.parallel or 0), dry_run=args.dry_run == "true",
        organization=args.organization or None, root_directory=args.root or None,
    ))
    if args.pwd:
        os.chdir(args.pwd)
    program = Path(args.program)
    if program.is_dir():
        program = program / "__main__.py"
    sys.argv = [str(program), *args.args]
    sys.path.insert(0, str(program.parent))
    # The SDK's dataflow leaves futures unobserved when a resource fails; asyncio's complaints about them
    # would only bury the real error (the official shim silences them for the same reason).
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(pulumi.runtime.run_in_stack(lambda: runpy.run_path(str(program), run_name="__main__")))
        return 0
    except pulumi.RunError as exc:
        pulumi.log.error(str(exc))
    except Exception:  # noqa: BLE001 - any failure of the user's program is reported to the engine
        pulumi.log.error(traceback.format_exc())
    finally:
        loop.close()
        sys.stdout.flush()
        sys.stderr.flush()
    return 32  # the exit code the official host uses for "the program reported its error already"


# ---------------------------------------------------------------------------------------------- serve mode


def _struct_to_dict(struct: Any) -> dict[str, Any]:
    from google.protobuf.json_format import MessageToDict

    return MessageToDict(struct) if struct is not None else {}


def _interpreter(info: Any) -> str:
    """The project's virtualenv interpreter (Pulumi.yaml ``runtime.options.virtualenv``), else ours."""
    options = _struct_to_dict(info.options) if info is not None and info.HasField("options") else {}
    venv = options.get("virtualenv")
    if venv:
        root = Path(info.root_directory or ".")
        path = Path(venv) if Path(venv).is_absolute() else root / venv
        python = path / "bin" / "python"
        if python.exists():
            return str(python)
    return sys.executable


def _servicer(engine_address: str) -> Any:
    import grpc
    from pulumi.runtime.proto import language_pb2, language_pb2_grpc, plugin_pb2

    class Host(language_pb2_grpc.LanguageRuntimeServicer):
        def GetPluginInfo(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC method names
            import pulumi

            return plugin_pb2.PluginInfo(version=getattr(pulumi, "__version__", ""))

        def GetRequiredPlugins(self, request: Any, context: Any) -> Any:  # noqa: N802
            return language_pb2.GetRequiredPluginsResponse()

        def GetRequiredPackages(self, request: Any, context: Any) -> Any:  # noqa: N802
            return language_pb2.GetRequiredPackagesResponse()

        def GetProgramDependencies(self, request: Any, context: Any) -> Any:  # noqa: N802
            return language_pb2.GetProgramDependenciesResponse()

        def InstallDependencies(self, request: Any, context: Any) -> Iterator[Any]:  # noqa: N802
            return iter(())

        def RuntimeOptionsPrompts(self, request: Any, context: Any) -> Any:  # noqa: N802
            return language_pb2.RuntimeOptionsResponse()

        def About(self, request: Any, context: Any) -> Any:  # noqa: N802
            version = ".".join(str(p) for p in sys.version_info[:3])
            return language_pb2.AboutResponse(executable=sys.executable, version=version)

        def Run(self, request: Any, context: Any) -> Any:  # noqa: N802
            info = request.info if request.HasField("info") else None
            entry = request.program or (info.entry_point if info else "") or "."
            program_dir = (info.program_directory if info else "") or request.pwd or "."
            program = entry if Path(entry).is_absolute() else str(Path(program_dir) / entry)
            cmd = [_interpreter(info), "-u", os.path.abspath(__file__), EXEC_MODE,
                   "--project", request.project, "--stack", request.stack,
                   "--parallel", str(request.parallel), "--dry_run", "true" if request.dryRun else "false",
                   "--monitor", request.monitor_address, "--engine", engine_address]
            if request.organization:
                cmd += ["--organization", request.organization]
            if request.pwd:
                cmd += ["--pwd", request.pwd]
            if info is not None and info.root_directory:
                cmd += ["--root", info.root_directory]
            cmd += [program, *request.args]
            env = dict(os.environ)
            env["PULUMI_CONFIG"] = json.dumps(dict(request.config))
            env["PULUMI_CONFIG_SECRET_KEYS"] = json.dumps(list(request.configSecretKeys))
            # The child's output goes where ours goes: the engine shows it as the program's output.
            code = subprocess.call(cmd, env=env, stdin=subprocess.DEVNULL)
            if code == 0:
                return language_pb2.RunResponse()
            if code == 32:
                return language_pb2.RunResponse(bail=True)
            return language_pb2.RunResponse(error=f"Program exited with non-zero exit code: {code}")

    del grpc
    return Host()


def _serve(argv: list[str]) -> int:
    import grpc
    from pulumi.runtime.proto import language_pb2_grpc

    # The engine passes Go-style flags (-root=..., -tracing=...) and the engine's address last.
    positionals = [a for a in argv if not a.startswith("-")]
    engine_address = positionals[-1] if positionals else ""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4),
                         options=[("grpc.max_receive_message_length", 400 * 1024 * 1024)])
    language_pb2_grpc.add_LanguageRuntimeServicer_to_server(_servicer(engine_address), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    try:
        server.wait_for_termination()
    except KeyboardInterrupt:  # the engine interrupts its plugins when it is done with them: not an error
        server.stop(grace=1)
    return 0


def main(argv: list[str]) -> int:
    if argv and argv[0] == EXEC_MODE:
        return _exec_program(argv[1:])
    return _serve(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
