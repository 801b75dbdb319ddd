"""``mailflow emulator serve``: run the emulated Exchange Online tenant in the foreground.

Why: users test a stack offline (like LocalStack or Azurite), and other processes (the CLI, Pulumi's provider
host) reuse a running emulator through ``<state-dir>/server.json``. The command prints what a client needs:
endpoint, tenant, the emulator-only app credentials and the CA file to trust (verification stays on).
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Callable

import click

__all__ = ["command", "serve"]


@click.group(name="emulator")
def command() -> None:
    """Run the emulated Exchange Online tenant (HTTPS admin API + Entra token endpoints)."""


def _read_seed(path: Path, load_seed: Callable[[Path], object]) -> dict[str, object]:
    """The seed file, or a ClickException naming the file, line and column of what is wrong with it."""
    try:
        seed = load_seed(path)
    except json.JSONDecodeError as exc:
        raise click.ClickException(f"{path}:{exc.lineno}:{exc.colno}: the seed file is not valid JSON: {exc.msg}") \
            from None
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"cannot read the seed file {path}: {getattr(exc, 'strerror', None) or exc}") \
            from None
    if not isinstance(seed, dict) or not isinstance(seed.get("tenants"), list):
        raise click.ClickException(
            f"{path}: a seed file is a JSON object with a \"tenants\" list (see o365_mailflow/emulator/seed.json)"
        )
    return seed


@command.command()
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where tenants, objects, TLS files and server.json live [default: $MAILFLOW_STATE_DIR/emulator or "
    ".mailflow/emulator].",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8443, show_default=True,
              help="Port to listen on (0: any free port).")
@click.option("--seed", "seed_file", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Seed file for an empty state directory (format: o365_mailflow/emulator/seed.json).")
@click.option("--smtp-port", type=click.IntRange(0, 65535), default=2525, show_default=True,
              help="Port of the SMTP front door (the tenants' MX endpoint; 0: any free port).")
@click.option("--smart-host", "smart_hosts", multiple=True, metavar="NAME=HOST:PORT",
              help="Deliver mail for an outbound connector's smart host NAME to a local SMTP sink at HOST:PORT "
                   "(loopback only; repeatable).")
@click.option("--verbose", is_flag=True, help="Log every HTTP request.")
@click.option("--json", "as_json", is_flag=True, help="Print the connection details as one JSON line.")
def serve(state_dir: Path | None, host: str, port: int, seed_file: Path | None, smtp_port: int,
          smart_hosts: tuple[str, ...], verbose: bool, as_json: bool) -> None:
    """Serve the emulator until Ctrl-C."""
    import gc

    gc.enable()  # the CLI pauses the cyclic collector for short commands; a server runs for hours

    mapping = {}
    for item in smart_hosts:
        name, sep, target = item.partition("=")
        if not sep or not name.strip() or not target.strip():
            raise click.BadParameter(f"{item!r} is not NAME=HOST:PORT (e.g. mail.contoso.com=127.0.0.1:2526)",
                                     param_hint="--smart-host")
        mapping[name.strip()] = target.strip()
    from ..emulator import (
        EmulatorBusy,
        EmulatorServer,
        default_state_dir,
        info_for,
        load_seed,
        remove_server_json,
        write_server_json,
    )

    directory = state_dir or default_state_dir()
    seed = _read_seed(seed_file, load_seed) if seed_file else None
    try:
        server = EmulatorServer(directory, host=host, port=port, seed=seed, verbose=verbose, smtp_port=smtp_port)
        server.start()
    except EmulatorBusy as exc:
        raise click.ClickException(str(exc)) from None
    except (KeyError, TypeError, ValueError) as exc:
        if seed_file is None:
            raise
        raise click.ClickException(
            f"the seed file {seed_file} does not follow the seed format (o365_mailflow/emulator/seed.json): "
            f"{type(exc).__name__} {exc}"
        ) from None
    except OSError as exc:
        if exc.filename:  # a file or directory, not the socket: say which, or the admin chases a port problem
            raise click.ClickException(
                f"cannot use the state directory {directory}: {exc.filename}: {exc.strerror or exc} "
                "(pass --state-dir or set MAILFLOW_STATE_DIR to a writable directory)"
            ) from None
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    if mapping and server.front_door is not None:
        try:
            server.front_door.set_smart_hosts(None, mapping)
        except ValueError as exc:
            server.stop()
            raise click.BadParameter(str(exc), param_hint="--smart-host") from None
    write_server_json(server)
    info = info_for(server)
    details: dict[str, str | None] = {
        "endpoint": info.base_url,
        "tenant_id": info.tenant_id,
        "initial_domain": info.initial_domain,
        "client_id": info.client_id,
        # Emulator-only, documented credential (seed.json): printing it is the point of this command.
        "client_secret": info.client_secret,
        "ca_file": str(info.ca_path),
        "state_dir": str(server.state_dir),
        "smtp": f"{info.smtp_host}:{info.smtp_port}",
    }
    if as_json:
        click.echo(json.dumps(details))
    else:
        click.echo("Emulated Exchange Online tenant running (Ctrl-C to stop)")
        click.echo(f"  endpoint:       {details['endpoint']}")
        click.echo(f"  tenant id:      {details['tenant_id']}")
        click.echo(f"  initial domain: {details['initial_domain']}")
        click.echo(f"  app (client) id: {details['client_id']}")
        click.echo(f"  client secret:  {details['client_secret']}  (emulator-only)")
        click.echo(f"  CA file:        {details['ca_file']}")
        click.echo(f"  state dir:      {details['state_dir']}")
        click.echo(f"  token endpoint: {info.base_url}/{info.tenant_id}/oauth2/v2.0/token")
        click.echo(f"  admin API:      {info.base_url}/adminapi/beta/{info.tenant_id}/InvokeCommand")
        click.echo(f"  SMTP (MX):      {details['smtp']}  (STARTTLS; emulator-only XCLIENT ADDR=/TENANT=)")
    sys.stdout.flush()

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        remove_server_json(server)
        click.echo("Emulator stopped.", err=True)
