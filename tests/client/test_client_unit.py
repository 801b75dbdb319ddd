"""The client's request building, paging, retries and error typing, against a local fake transport.

Matrix (no network: a ``requests`` transport adapter answers from a script; tokens come from a stub):
- headers and body of §1.3/§2.1: anchor from the initial domain, one connection-id per client, a fresh
  client-request-id per request, X-CmdletName, Prefer odata.maxpagesize, JSON encoding of parameters;
- paging: the same body and headers re-POSTed to @odata.nextLink; annotations stripped; warnings returned;
  a nextLink to a foreign host is refused;
- retries: 429 (fractional Retry-After), 503, 504, the concurrency text, dropped connections; the cap; no
  retry on 400/403/404; one token refresh on 401;
- error envelopes: pipe format and JSON-in-string format; NotFound, AlreadyExists, ServiceValidationError.
The same behaviours are checked end to end against the emulator in the other files of this directory.
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any

import pytest
import requests
from requests.adapters import BaseAdapter

from o365_mailflow.client import ExoClient, RetryPolicy, encode_parameters, parse_error
from o365_mailflow.credentials import ClientSecret
from o365_mailflow.errors import (
    AlreadyExists,
    AuthenticationError,
    NotFound,
    PermissionDenied,
    ServiceValidationError,
    Throttled,
    TransportError,
)
from o365_mailflow.tenant import TenantConfig

BASE = "https://exo.example.test"
TENANT = "11111111-2222-3333-4444-555555555555"


class ScriptedAdapter(BaseAdapter):
    """Answers each request with the next scripted reply: (status, body, headers) or an exception."""

    def __init__(self, replies: list[Any]) -> None:
        super().__init__()
        self.replies = deque(replies)
        self.requests: list[requests.PreparedRequest] = []

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):  # type: ignore[no-untyped-def]
        self.requests.append(request)
        reply = self.replies.popleft()
        if isinstance(reply, Exception):
            raise reply
        status, body, headers = (reply + ({},))[:3] if isinstance(reply, tuple) else (200, reply, {})
        response = requests.Response()
        response.status_code = status
        response.headers.update(headers)
        if isinstance(body, (dict, list)):
            response._content = json.dumps(body).encode()
            response.headers.setdefault("Content-Type", "application/json")
        else:
            response._content = body.encode() if isinstance(body, str) else (body or b"")
        response.url = request.url
        response.request = request
        return response

    def close(self) -> None:
        pass


class StubTokens:
    def __init__(self) -> None:
        self.issued = 0
        self.invalidated: list[str] = []

    def token(self, retry: Any = None) -> str:
        self.issued += 1
        return f"token-{self.issued}"

    def invalidate(self, token: str) -> None:
        self.invalidated.append(token)


def page(values: list[dict[str, Any]], next_link: str | None = None, warnings: list[str] | None = None) -> dict:
    body: dict[str, Any] = {
        "@odata.context": f"{BASE}/adminapi/beta/{TENANT}/$metadata#Collection(Exchange.GenericHashTable)",
        "adminapi.warnings@odata.type": "#Collection(String)",
        "@adminapi.warnings": warnings or [],
        "value": values,
    }
    if next_link:
        body["@odata.nextLink"] = next_link
    return body


def error(status: int, detail: str | None, code: str = "BadRequest", internal: dict | None = None) -> tuple:
    err: dict[str, Any] = {"code": code, "message": "Invalid Operation"}
    if detail is not None:
        err["details"] = [{"code": "Client", "target": "", "message": detail}]
    if internal:
        err["innererror"] = {"message": "Invalid Operation", "internalexception": internal}
    return (status, {"error": err})


def make_client(replies: list[Any], **retry: Any) -> tuple[ExoClient, ScriptedAdapter, StubTokens, list[float]]:
    session = requests.Session()
    adapter = ScriptedAdapter(replies)
    session.mount("https://", adapter)
    sleeps: list[float] = []
    policy = RetryPolicy(sleep=sleeps.append, random=lambda: 0.5, **retry)
    config = TenantConfig(tenant_id=TENANT, initial_domain="contoso.onmicrosoft.com", endpoint=BASE,
                          authority=BASE, scope=f"{BASE}/.default")
    client = ExoClient(config, ClientSecret("app-id", "s3cret-value"), session=session, retry=policy)
    tokens = StubTokens()
    client._tokens = tokens  # type: ignore[assignment]
    return client, adapter, tokens, sleeps


def test_a_request_carries_the_documented_headers_and_body() -> None:
    client, adapter, _, _ = make_client([page([{"Name": "a"}])])
    client.invoke("Get-InboundConnector", {"Identity": "a", "Enabled": True, "SenderDomains": ("*",)}, page_size=50)
    (sent,) = adapter.requests
    assert sent.method == "POST"
    assert sent.url == f"{BASE}/adminapi/beta/{TENANT}/InvokeCommand"
    assert sent.headers["Authorization"] == "Bearer token-1"
    assert sent.headers["X-AnchorMailbox"] == (
        "APP:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@contoso.onmicrosoft.com"
    )
    assert sent.headers["X-CmdletName"] == "Get-InboundConnector"
    assert sent.headers["Prefer"] == "odata.maxpagesize=50"
    assert sent.headers["connection-id"] == client.connection_id
    assert json.loads(sent.body) == {"CmdletInput": {"CmdletName": "Get-InboundConnector", "Parameters": {
        "Identity": "a", "Enabled": True, "SenderDomains": ["*"]}}}


def test_each_request_gets_a_new_client_request_id_but_keeps_the_connection_id() -> None:
    client, adapter, _, _ = make_client([page([]), page([])])
    client.invoke("Get-AcceptedDomain")
    client.invoke("Get-AcceptedDomain")
    first, second = adapter.requests
    assert first.headers["client-request-id"] != second.headers["client-request-id"]
    assert first.headers["connection-id"] == second.headers["connection-id"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (False, False),
        (None, None),
        (["a", "b"], ["a", "b"]),
        ({"b", "a"}, ["a", "b"]),
        ({"Add": ["1.2.3.4"]}, {"Add": ["1.2.3.4"], "@odata.type": "#Exchange.GenericHashTable"}),
    ],
    ids=["bool", "null-clears", "list", "set-sorted", "add-remove-hashtable"],
)
def test_parameters_are_encoded_as_the_service_expects(value: Any, expected: Any) -> None:
    assert encode_parameters({"P": value}) == {"P": expected}


def test_paging_reposts_the_same_body_and_headers_to_the_next_link_and_strips_annotations() -> None:
    more = "There are more results available than are currently displayed. To view them, increase the value"
    replies = [
        page([{"Name": "a", "Guid@odata.type": "#Guid", "Guid": "1"}], f"{BASE}/adminapi/beta/x?$skiptoken=2",
             [more]),
        page([{"Name": "b", "Guid": "2"}], f"{BASE}/adminapi/beta/x?$skiptoken=3", [more]),
        page([{"Name": "c", "Guid": "3"}], warnings=["something else"]),
    ]
    client, adapter, _, _ = make_client(replies)
    result = client.invoke("Get-InboundConnector", page_size=1)
    assert [v["Name"] for v in result.values] == ["a", "b", "c"]
    assert result.values[0] == {"Name": "a", "Guid": "1"}
    assert result.warnings == ["something else"]
    assert [r.url for r in adapter.requests][1:] == [f"{BASE}/adminapi/beta/x?$skiptoken=2",
                                                     f"{BASE}/adminapi/beta/x?$skiptoken=3"]
    assert len({r.body for r in adapter.requests}) == 1
    assert len({r.headers["X-AnchorMailbox"] + r.headers["connection-id"] for r in adapter.requests}) == 1
    assert client.stats.requests == 3 and client.stats.by_cmdlet["Get-InboundConnector"] == 3


def test_a_next_link_to_another_host_is_refused_so_the_token_stays_home() -> None:
    client, adapter, _, _ = make_client([page([{"Name": "a"}], "https://evil.example.com/steal")])
    with pytest.raises(TransportError, match="unexpected host"):
        client.invoke("Get-InboundConnector")
    assert len(adapter.requests) == 1


@pytest.mark.parametrize(
    "failure",
    [
        (429, "", {"Retry-After": "0.25"}),
        (503, ""),
        (504, ""),
        (429, "You have reached the maximum number of concurrent requests per tenant. Please wait and try again."),
        requests.ConnectionError("connection dropped"),
    ],
    ids=["429-retry-after", "503", "504", "concurrency-text", "dropped-connection"],
)
def test_transient_failures_are_retried_within_the_cap(failure: Any) -> None:
    client, adapter, _, sleeps = make_client([failure] * 5 + [page([{"Name": "a"}])])
    assert client.invoke("Get-InboundConnector").values == [{"Name": "a"}]
    assert len(adapter.requests) == 6 and client.stats.retries == 5
    if isinstance(failure, tuple) and failure[2:] and "Retry-After" in failure[2]:
        assert sleeps == [0.25] * 5
    else:
        assert sleeps == [0.75, 1.5, 3.0, 6.0, 12.0]  # exponential, jitter fixed at 0.5 by the stub


@pytest.mark.parametrize(
    "failure", [(429, ""), (503, ""), requests.ConnectionError("dropped")], ids=["429", "503", "dropped"]
)
def test_failures_beyond_the_cap_are_reported_as_throttled(failure: Any) -> None:
    client, adapter, _, _ = make_client([failure] * 6)
    with pytest.raises(Throttled):
        client.invoke("Get-InboundConnector")
    assert len(adapter.requests) == 6


@pytest.mark.parametrize(
    ("reply", "exc"),
    [
        (error(400, "|Microsoft.Exchange.Management.Tasks.ValidationException|Bad."), ServiceValidationError),
        ((403, b"\0" * 64), PermissionDenied),
        (error(404, "Ex6F9304|Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException|gone",
               code="NotFound"), NotFound),
    ],
    ids=["400", "403", "404"],
)
def test_client_errors_are_not_retried(reply: Any, exc: type) -> None:
    client, adapter, _, _ = make_client([reply, page([])])
    with pytest.raises(exc):
        client.invoke("Set-InboundConnector", {"Identity": "x"})
    assert len(adapter.requests) == 1


def test_a_401_refreshes_the_token_once_and_a_second_401_is_an_authentication_error() -> None:
    client, adapter, tokens, _ = make_client([(401, ""), page([{"Name": "a"}]), (401, ""), (401, "")])
    assert client.invoke("Get-InboundConnector").values == [{"Name": "a"}]
    assert tokens.invalidated == ["token-1"]
    assert adapter.requests[1].headers["Authorization"] == "Bearer token-2"
    with pytest.raises(AuthenticationError, match="Exchange.ManageAsApp"):
        client.invoke("Get-InboundConnector")


def test_a_403_says_which_role_to_assign() -> None:
    client, _, _, _ = make_client([(403, b"\0" * 4096, {"Content-Encoding": "gzip"})])
    with pytest.raises(PermissionDenied, match="Exchange Administrator"):
        client.invoke("New-InboundConnector", {"Name": "x"})


@pytest.mark.parametrize(
    ("detail", "internal", "expected"),
    [
        ("|Microsoft.Exchange.Data.Directory.ADObjectAlreadyExistsException|The object 'CN=x' already exists.",
         None, ("", "Microsoft.Exchange.Data.Directory.ADObjectAlreadyExistsException",
                "The object 'CN=x' already exists.")),
        (json.dumps({"Message": "The object 'CN=rg' already exists.",
                     "TypeName": "Microsoft.Exchange.Data.Directory.ADObjectAlreadyExistsException",
                     "StackTrace": None, "InnerError": None}),
         None, ("", "Microsoft.Exchange.Data.Directory.ADObjectAlreadyExistsException",
                "The object 'CN=rg' already exists.")),
        (None, {"message": "Cannot process argument transformation on parameter 'ConnectorType'.",
                "type": "Microsoft.Exchange.AdminApi.CommandInvocation.ParameterTransformationException"},
         ("", "Microsoft.Exchange.AdminApi.CommandInvocation.ParameterTransformationException",
          "Cannot process argument transformation on parameter 'ConnectorType'.")),
    ],
    ids=["pipe-format", "json-in-string-format", "internalexception-only"],
)
def test_error_details_are_parsed_in_every_known_format(detail: str | None, internal: dict | None,
                                                         expected: tuple[str, str, str]) -> None:
    assert parse_error(error(400, detail, internal=internal)[1]) == expected


def test_an_already_exists_answer_in_json_in_string_format_is_typed() -> None:
    detail = json.dumps({"Message": "The object 'x' already exists.",
                         "TypeName": "Microsoft.Exchange.Data.Directory.ADObjectAlreadyExistsException"})
    client, _, _, _ = make_client([error(400, detail, code="Context")])
    with pytest.raises(AlreadyExists, match="already exists"):
        client.new("InboundConnector", {"Name": "x"})


def test_get_retries_not_found_only_when_asked_and_within_a_bound() -> None:
    missing = error(404, "Ex6F9304|Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException|no",
                    code="NotFound")
    client, adapter, _, sleeps = make_client([missing, missing, page([{"Name": "x"}])])
    assert client.get("InboundConnector", "x", retry_not_found=True) == {"Name": "x"}
    assert len(sleeps) == 2
    client, adapter, _, _ = make_client([missing])
    with pytest.raises(NotFound):
        client.get("InboundConnector", "x")
    assert len(adapter.requests) == 1


def test_outbound_list_is_the_union_of_both_test_mode_readings() -> None:
    plain = page([{"Name": "a", "Guid": "1"}, {"Name": "b", "Guid": "2"}])
    with_test_mode = page([{"Name": "b", "Guid": "2"}, {"Name": "t", "Guid": "3", "TestMode": True}])
    client, adapter, _, _ = make_client([plain, with_test_mode])
    assert [r["Name"] for r in client.list("OutboundConnector")] == ["a", "b", "t"]
    bodies = [json.loads(r.body)["CmdletInput"]["Parameters"] for r in adapter.requests]
    assert bodies[1]["IncludeTestModeConnectors"] is True and "IncludeTestModeConnectors" not in bodies[0]


def test_remove_sends_confirm_false() -> None:
    client, adapter, _, _ = make_client([page([])])
    client.remove("InboundConnector", "x")
    assert json.loads(adapter.requests[0].body)["CmdletInput"]["Parameters"] == {"Identity": "x", "Confirm": False}


def test_a_redirect_to_the_same_api_host_is_followed_with_the_token() -> None:
    client, adapter, _, _ = make_client([(302, "", {"Location": f"{BASE}/adminapi/beta/region/InvokeCommand"}),
                                         page([{"Name": "a"}])])
    assert client.invoke("Get-InboundConnector").values == [{"Name": "a"}]
    assert adapter.requests[1].url == f"{BASE}/adminapi/beta/region/InvokeCommand"
    assert adapter.requests[1].headers["Authorization"].startswith("Bearer ")


def test_the_client_repr_and_errors_never_show_the_secret() -> None:
    client, _, _, _ = make_client([error(400, "|Microsoft.Exchange.Management.Tasks.ValidationException|Bad.")])
    assert "s3cret-value" not in repr(client)
    with pytest.raises(ServiceValidationError) as info:
        client.invoke("Set-InboundConnector", {"Identity": "x"})
    assert "s3cret-value" not in str(info.value) and "token-1" not in str(info.value)
    assert info.value.exception_type == "Microsoft.Exchange.Management.Tasks.ValidationException"


def test_a_create_whose_answer_was_lost_is_read_back_instead_of_failing_as_a_duplicate() -> None:
    exists = error(400, "|Microsoft.Exchange.Data.Directory.ADObjectAlreadyExistsException|already exists")
    client, adapter, _, _ = make_client([requests.ConnectionError("dropped"), exists, page([{"Name": "x"}])])
    result = client.new("InboundConnector", {"Name": "x"})
    assert result.values == [{"Name": "x"}]
    assert "read back" in result.warnings[0]
    assert json.loads(adapter.requests[2].body)["CmdletInput"] == {"CmdletName": "Get-InboundConnector",
                                                                  "Parameters": {"Identity": "x"}}


def test_a_plain_duplicate_create_is_still_an_error() -> None:
    exists = error(400, "|Microsoft.Exchange.Data.Directory.ADObjectAlreadyExistsException|already exists")
    client, _, _, _ = make_client([(503, ""), exists])
    with pytest.raises(AlreadyExists):
        client.new("InboundConnector", {"Name": "x"})


def test_a_retry_after_beyond_the_overall_deadline_gives_up_at_once() -> None:
    client, adapter, _, sleeps = make_client([(429, "", {"Retry-After": "30"})])
    client.deadline = 5.0
    with pytest.raises(Throttled, match="overall deadline"):
        client.invoke("Get-InboundConnector")
    assert sleeps == [] and len(adapter.requests) == 1
