"""Test-only transport used by the regional-redirect tests (tests/client/test_first_contact.py, tests/cli/test_doctor.py).

The emulator listens on one port, while the client (correctly) sends a redirect's rewritten URL to port 443.
``LoopbackPortMap`` changes only the TCP port of ``https://localhost`` to the emulator's; the URL, the Host header,
the TLS name check, the redirect rules and the pinning are all the client's production code.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter


class LoopbackPortMap(HTTPAdapter):
    """Send ``https://localhost`` (port 443 after the client's :446 rewrite) to the emulator's port."""

    def __init__(self, port: int) -> None:
        super().__init__()
        self.port = port

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        parts = urlsplit(request.url or "")
        if parts.hostname == "localhost" and parts.port is None:
            request.url = parts._replace(netloc=f"localhost:{self.port}").geturl()
        return super().send(request, *args, **kwargs)
