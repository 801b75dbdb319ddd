"""One emulator per state directory: an exclusive lock on ``<state_dir>/server.lock`` while a server serves it.

Why: two servers on one SQLite store and one ``server.json`` would each believe they own the tenants. The lock is
advisory, non-blocking and from the standard library on both platforms (``flock`` on POSIX, a one-byte region lock
on Windows); both are per open file, so a second server in the same process is refused as well, and the operating
system drops the lock when the process ends, however it ends, so a crash leaves no stale lock.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO

__all__ = ["EmulatorBusy", "StateDirLock", "LOCK_FILE"]

LOCK_FILE = "server.lock"


class EmulatorBusy(RuntimeError):
    """Another emulator process already serves this state directory."""


if sys.platform == "win32":
    import msvcrt

    def _lock(handle: IO[bytes]) -> None:
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)

    def _unlock(handle: IO[bytes]) -> None:
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock(handle: IO[bytes]) -> None:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock(handle: IO[bytes]) -> None:
        fcntl.flock(handle, fcntl.LOCK_UN)


class StateDirLock:
    """``<state_dir>/server.lock``, held by the one server that serves the directory."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)
        self._handle: IO[bytes] | None = None

    def acquire(self) -> None:
        """Take the lock, or raise :class:`EmulatorBusy` at once (never waits)."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        handle = open(self.state_dir / LOCK_FILE, "a+b")  # noqa: SIM115 - held for the server's lifetime
        try:
            _lock(handle)
        except OSError:
            handle.close()
            raise EmulatorBusy(
                f"another emulator is already serving {self.state_dir} (see {self.state_dir / 'server.json'})"
            ) from None
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            _unlock(self._handle)
            self._handle.close()
            self._handle = None
