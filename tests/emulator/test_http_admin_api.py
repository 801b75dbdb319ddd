"""The admin API transport over HTTPS with plain requests: auth answers, body parsing, envelope, $select, paging.

Matrix:
- bearer: missing, malformed, expired, signed by another key, Graph audience, another tenant's token,
  app without Exchange.ManageAsApp -> 401 empty body; app without a directory role -> 403 NUL bytes;
  Global Reader -> reads allowed, writes 403; unknown cmdlet -> 403 NUL bytes;
- routing: tenant GUID or initial domain, case-insensitive path, GET -> 405, unknown tenant -> 401;
- body: CmdletInput/CmdletName/Parameters required shapes -> 400 envelope; Parameters omitted is fine;
- envelope: the exact keys of exo-admin-api.md §3.1, warnings present and empty; errors keep the §4.2 shape;
  Confirm: true surfaces ``@adminapi.confirmationmessage``;
- $select: PascalCase or any case keeps just those properties (and their annotations);
- paging: page size 2 over 25 objects, no duplicate and no gap, the "more results" warning on every
  non-final page; a different body on a nextLink, a forged or expired $skiptoken -> 400 pagination error;
- the request log records cmdlet, parameters, status, and page continuations.
"""

from __future__ import annotations

import uuid
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from mailflow_testing import EmulatedTenant

ENVELOPE_KEYS = ["@odata.context", "adminapi.warnings@odata.type", "@adminapi.warnings", "value"]
MORE = "There are more results available than are currently displayed."


def _post(tenant: EmulatedTenant, body: Any, *, headers: dict[str, str] | None = None, url: str | None = None,
          raw: bytes | None = None) -> requests.Response:
    return requests.post(
        url or tenant.invoke_url,
        json=None if raw is not None else body,
        data=raw,
        headers=headers if headers is not None else {"Authorization": f"Bearer {tenant.token()}"},
        verify=str(tenant.ca_path),
        timeout=30,
    )


def _inbound(name: str) -> dict[str, Any]:
    return {"Name": name, "ConnectorType": "Partner", "SenderDomains": ["*"]}


# -- bearer ---------------------------------------------------------------------------------------------------


def _forged_token(tenant: EmulatedTenant) -> str:
    claims = jwt.decode(tenant.token(), options={"verify_signature": False})
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(claims, other, algorithm="RS256")


@pytest.mark.parametrize(
    "case", ["no header", "not bearer", "garbage", "bad signature", "graph audience", "expired"]
)
def test_bad_bearer_tokens_get_401_with_an_empty_body(emulator_tenant: EmulatedTenant, case: str) -> None:
    if case == "expired":
        emulator_tenant.faults(token_lifetime=-60)
        token = emulator_tenant.token()
        emulator_tenant.clear_faults()
    headers = {
        "no header": {},
        "not bearer": {"Authorization": f"Basic {emulator_tenant.token()}"},
        "garbage": {"Authorization": "Bearer not.a.jwt"},
        "bad signature": {"Authorization": f"Bearer {_forged_token(emulator_tenant)}"},
        "graph audience": {"Authorization": f"Bearer {emulator_tenant.token(scope='https://graph.microsoft.com/.default')}"},
        "expired": {"Authorization": f"Bearer {token}"} if case == "expired" else {},
    }[case]
    response = _post(emulator_tenant, {"CmdletInput": {"CmdletName": "Get-InboundConnector"}}, headers=headers)
    assert response.status_code == 401
    assert response.content == b""


def test_a_token_from_another_tenant_is_refused(emulator_tenant_factory: Any) -> None:
    first, second = emulator_tenant_factory(), emulator_tenant_factory()
    response = first.invoke("Get-InboundConnector", token=second.token())
    assert response.status_code == 401
    assert response.content == b""


def test_an_app_without_exchange_manage_as_app_gets_401(emulator_tenant_factory: Any) -> None:
    tenant = emulator_tenant_factory(apps=[{"client_secret": True, "app_roles": []}])
    response = tenant.invoke("Get-InboundConnector")
    assert response.status_code == 401
    assert response.content == b""


def test_an_app_without_a_directory_role_gets_403_with_nul_bytes(emulator_tenant_factory: Any) -> None:
    tenant = emulator_tenant_factory(apps=[{"client_secret": True, "directory_roles": []}])
    response = tenant.invoke("Get-InboundConnector")
    assert response.status_code == 403
    assert response.content and set(response.content) == {0}


def test_a_global_reader_app_may_read_but_not_write(emulator_tenant_factory: Any) -> None:
    tenant = emulator_tenant_factory(apps=[{"client_secret": True, "directory_roles": ["Global Reader"]}])
    assert tenant.invoke("Get-InboundConnector").status_code == 200
    denied = tenant.invoke("New-InboundConnector", _inbound("reader"))
    assert denied.status_code == 403
    assert set(denied.content) == {0}


def test_an_unknown_cmdlet_gets_403_with_nul_bytes(emulator_tenant: EmulatedTenant) -> None:
    response = emulator_tenant.invoke("Get-Mailbox")
    assert response.status_code == 403
    assert set(response.content) == {0}


# -- routing and body -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("by", ["tenant id", "initial domain", "upper-case path"])
def test_the_tenant_segment_and_path_casing(emulator_tenant: EmulatedTenant, by: str) -> None:
    segment = emulator_tenant.initial_domain if by == "initial domain" else emulator_tenant.tenant_id
    path = "AdminApi/beta/{}/invokeCOMMAND" if by == "upper-case path" else "adminapi/beta/{}/InvokeCommand"
    url = f"{emulator_tenant.base_url}/{path.format(segment.upper() if by == 'upper-case path' else segment)}"
    response = _post(emulator_tenant, {"CmdletInput": {"CmdletName": "Get-AcceptedDomain"}}, url=url)
    assert response.status_code == 200
    assert "/adminapi/beta/" in response.json()["@odata.context"]


def test_get_on_invoke_command_is_405(emulator_tenant: EmulatedTenant) -> None:
    response = requests.get(emulator_tenant.invoke_url, verify=str(emulator_tenant.ca_path), timeout=30)
    assert response.status_code == 405


def test_an_unknown_tenant_gets_401(emulator_tenant: EmulatedTenant) -> None:
    url = f"{emulator_tenant.base_url}/adminapi/beta/{uuid.uuid4()}/InvokeCommand"
    response = _post(emulator_tenant, {"CmdletInput": {"CmdletName": "Get-AcceptedDomain"}}, url=url)
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("body", "raw"),
    [
        (None, b"{not json"),
        ({"Cmdlet": "Get-InboundConnector"}, None),
        ({"CmdletInput": {"Parameters": {}}}, None),
        ({"CmdletInput": {"CmdletName": "Get-InboundConnector", "Parameters": ["Identity", "x"]}}, None),
    ],
    ids=["not json", "no CmdletInput", "no CmdletName", "Parameters not an object"],
)
def test_malformed_bodies_get_a_400_error_envelope(emulator_tenant: EmulatedTenant, body: Any, raw: bytes | None) -> None:
    headers = {"Authorization": f"Bearer {emulator_tenant.token()}", "Content-Type": "application/json"}
    response = _post(emulator_tenant, body, raw=raw, headers=headers)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "BadRequest"
    assert error["message"] == "Invalid Operation"
    assert error["innererror"]["internalexception"]["message"]


def test_parameters_may_be_omitted_and_body_names_are_case_insensitive(emulator_tenant: EmulatedTenant) -> None:
    response = _post(emulator_tenant, {"cmdletinput": {"cmdletname": "Get-AcceptedDomain"}})
    assert response.status_code == 200
    assert len(response.json()["value"]) == 4


# -- envelope -------------------------------------------------------------------------------------------------


def test_a_success_has_the_live_envelope(emulator_tenant: EmulatedTenant) -> None:
    response = emulator_tenant.invoke("Get-AcceptedDomain")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json;odata.metadata=minimal")
    body = response.json()
    assert list(body) == ENVELOPE_KEYS
    assert body["@odata.context"] == (
        f"{emulator_tenant.base_url}/adminapi/beta/{emulator_tenant.tenant_id}"
        "/$metadata#Collection(Exchange.GenericHashTable)"
    )
    assert body["adminapi.warnings@odata.type"] == "#Collection(String)"
    assert body["@adminapi.warnings"] == []
    assert sorted(d["DomainName"] for d in body["value"]) == sorted(
        [emulator_tenant.initial_domain, "contoso.com", "sales.contoso.com", "fabrikam.com"]
    )


def test_a_cmdlet_error_keeps_the_service_error_shape(emulator_tenant: EmulatedTenant) -> None:
    response = emulator_tenant.invoke("Get-InboundConnector", {"Identity": "missing"})
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "NotFound"
    code, exception_type, message = error["details"][0]["message"].split("|", 2)
    assert exception_type == "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException"
    assert "'missing'" in message


def test_confirm_true_returns_the_confirmation_message_and_deletes_nothing(emulator_tenant: EmulatedTenant) -> None:
    assert emulator_tenant.invoke("New-InboundConnector", _inbound("keep me")).status_code == 200
    response = emulator_tenant.invoke("Remove-InboundConnector", {"Identity": "keep me", "Confirm": True})
    assert response.status_code == 200
    assert response.json()["value"] == []
    assert "keep me" in response.json()["@adminapi.confirmationmessage"]
    assert emulator_tenant.invoke("Get-InboundConnector", {"Identity": "keep me"}).status_code == 200


# -- $select --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("select", ["Name,SenderDomains", "name,senderdomains", "NAME, SenderDomains"])
def test_select_keeps_only_the_named_properties(emulator_tenant: EmulatedTenant, select: str) -> None:
    emulator_tenant.invoke("New-InboundConnector", _inbound("selected"))
    response = emulator_tenant.invoke("Get-InboundConnector", select=select)
    assert response.status_code == 200
    (record,) = response.json()["value"]
    assert {k.split("@")[0] for k in record} == {"Name", "SenderDomains"}
    assert record["Name"] == "selected"
    assert record["SenderDomains"] == ["smtp:*;1"]


# -- paging ---------------------------------------------------------------------------------------------------


@pytest.fixture
def tenant_with_25(emulator_tenant: EmulatedTenant) -> EmulatedTenant:
    for i in range(25):
        assert emulator_tenant.invoke("New-InboundConnector", _inbound(f"conn-{i:02d}")).status_code == 200
    return emulator_tenant


def _all_pages(tenant: EmulatedTenant, body: dict[str, Any], page_size: int) -> list[dict[str, Any]]:
    token = tenant.token()
    headers = {"Authorization": f"Bearer {token}", "Prefer": f"odata.maxpagesize={page_size}"}
    url: str | None = tenant.invoke_url
    pages = []
    while url:
        response = _post(tenant, body, headers=headers, url=url)
        assert response.status_code == 200, response.text
        pages.append(response.json())
        url = response.json().get("@odata.nextLink")
        assert len(pages) < 100
    return pages


def test_paging_at_page_size_2_over_25_objects_has_no_duplicate_and_no_gap(tenant_with_25: EmulatedTenant) -> None:
    body = {"CmdletInput": {"CmdletName": "Get-InboundConnector", "Parameters": {}}}
    pages = _all_pages(tenant_with_25, body, 2)
    names = [v["Name"] for page in pages for v in page["value"]]
    assert len(pages) == 13
    assert names == [f"conn-{i:02d}" for i in range(25)]
    assert all(len(p["value"]) == 2 for p in pages[:-1]) and len(pages[-1]["value"]) == 1
    assert all(any(MORE in w for w in p["@adminapi.warnings"]) for p in pages[:-1])
    assert pages[-1]["@adminapi.warnings"] == [] and "@odata.nextLink" not in pages[-1]
    log = tenant_with_25.requests()[-13:]
    assert [e["page"] for e in log] == [False] + [True] * 12


def test_paging_survives_writes_between_pages(tenant_with_25: EmulatedTenant) -> None:
    body = {"CmdletInput": {"CmdletName": "Get-InboundConnector", "Parameters": {}}}
    headers = {"Authorization": f"Bearer {tenant_with_25.token()}", "Prefer": "odata.maxpagesize=10"}
    first = _post(tenant_with_25, body, headers=headers).json()
    tenant_with_25.invoke("Remove-InboundConnector", {"Identity": "conn-00", "Confirm": False})
    second = _post(tenant_with_25, body, headers=headers, url=first["@odata.nextLink"]).json()
    names = [v["Name"] for v in first["value"] + second["value"]]
    assert names == [f"conn-{i:02d}" for i in range(20)]


def test_a_next_link_keeps_the_select(tenant_with_25: EmulatedTenant) -> None:
    body = {"CmdletInput": {"CmdletName": "Get-InboundConnector", "Parameters": {}}}
    headers = {"Authorization": f"Bearer {tenant_with_25.token()}", "Prefer": "odata.maxpagesize=20"}
    first = _post(tenant_with_25, body, headers=headers, url=tenant_with_25.invoke_url + "?$select=Name").json()
    second = _post(tenant_with_25, body, headers=headers, url=first["@odata.nextLink"]).json()
    assert all(set(v) == {"Name"} for v in first["value"] + second["value"])
    assert len(second["value"]) == 5


def test_without_prefer_everything_up_to_the_default_page_size_comes_at_once(tenant_with_25: EmulatedTenant) -> None:
    body = tenant_with_25.invoke("Get-InboundConnector").json()
    assert len(body["value"]) == 25
    assert "@odata.nextLink" not in body


@pytest.mark.parametrize("case", ["different body", "forged token", "expired token", "another tenant"])
def test_invalid_continuations_get_the_pagination_error(
    tenant_with_25: EmulatedTenant, emulator_tenant_factory: Any, case: str
) -> None:
    body = {"CmdletInput": {"CmdletName": "Get-InboundConnector", "Parameters": {}}}
    headers = {"Authorization": f"Bearer {tenant_with_25.token()}", "Prefer": "odata.maxpagesize=2"}
    link = _post(tenant_with_25, body, headers=headers).json()["@odata.nextLink"]
    target = tenant_with_25
    if case == "different body":
        body = {"CmdletInput": {"CmdletName": "Get-InboundConnector", "Parameters": {"ResultSize": 5}}}
    elif case == "forged token":
        link = link.split("%24skiptoken=")[0] + "%24skiptoken=bm90LWEtY3Vyc29yOjQ"
    elif case == "expired token":
        tenant_with_25.faults(pagination_expiry=-1)
    else:
        target = emulator_tenant_factory()
        link = link.replace(tenant_with_25.tenant_id, target.tenant_id)
        headers = {"Authorization": f"Bearer {target.token()}"}
    response = _post(target, body, headers=headers, url=link)
    assert response.status_code == 400
    error = response.json()["error"]
    assert "Expired or Invalid pagination request" in error["details"][0]["message"]
    assert error["innererror"]["internalexception"]["type"] == "System.Exception"


def test_the_request_log_records_cmdlet_parameters_and_status(emulator_tenant: EmulatedTenant) -> None:
    emulator_tenant.clear_requests()
    emulator_tenant.invoke("Get-InboundConnector", {"Identity": "nobody"})
    emulator_tenant.invoke("New-InboundConnector", _inbound("logged"))
    log = emulator_tenant.requests()
    assert [(e["cmdlet"], e["status"]) for e in log] == [("Get-InboundConnector", 404), ("New-InboundConnector", 200)]
    assert log[0]["parameters"] == {"Identity": "nobody"}
    assert all(e["tenant"] == emulator_tenant.tenant_id for e in log)


def test_concurrent_writes_are_all_kept(emulator_tenant: EmulatedTenant) -> None:
    from concurrent.futures import ThreadPoolExecutor

    token = emulator_tenant.token()
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(
            pool.map(lambda i: emulator_tenant.invoke("New-InboundConnector", _inbound(f"par-{i}"), token=token).status_code,
                     range(16))
        )
    assert statuses == [200] * 16
    names = {v["Name"] for v in emulator_tenant.invoke("Get-InboundConnector").json()["value"]}
    assert names == {f"par-{i}" for i in range(16)}

