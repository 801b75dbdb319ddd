"""Every fault knob of ``POST /_emulator/faults``, observed over HTTPS.

Matrix (each deterministic: "next N" counters, a seeded rate, or a window far longer than the test):
- throttle_limit/window: K requests pass, the next gets 429 with a numeric Retry-After; throttle_next;
- concurrency_next: the plain-text "maximum number of concurrent requests per tenant" answer;
  max_concurrent: a second request while one is in flight gets it too;
- error_next: 503 then 504 for exactly N requests; error_rate 1.0 and a seeded 0.5;
- latency: a client with a shorter timeout times out; drop_next: no HTTP answer at all;
- read_lag: a new object answers 404 to reads while the lag lasts, and is there once the lag is cleared;
  read_lag_reads: the same for a number of reads (minutes of lag under a fake clock);
- connections are kept alive (no `Connection: close`); New-* names are checked through the name index;
- token_lifetime <= 0: the issued token is refused with 401; token_error_next: the token endpoint fails N times;
- scoping: a tenant's faults do not touch another tenant; ``cmdlets`` narrows a fault; DELETE clears;
- bad knobs are refused with 400.
"""

from __future__ import annotations

import http.client
import ssl
import threading
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from mailflow_testing import EmulatedTenant

CONCURRENCY = "You have reached the maximum number of concurrent requests per tenant. Please wait and try again."


def _get(tenant: EmulatedTenant, **kwargs: Any) -> requests.Response:
    return tenant.invoke("Get-AcceptedDomain", **kwargs)


def test_throttling_admits_k_requests_per_window_then_answers_429_with_retry_after(
    emulator_tenant: EmulatedTenant,
) -> None:
    emulator_tenant._invoke_token()  # the token request is not an InvokeCommand and is never throttled
    emulator_tenant.faults(throttle_limit=3, throttle_window=3600)
    statuses = [_get(emulator_tenant) for _ in range(5)]
    assert [r.status_code for r in statuses] == [200, 200, 200, 429, 429]
    retry_after = statuses[3].headers["Retry-After"]
    assert float(retry_after) > 0
    assert [e["fault"] for e in emulator_tenant.requests()[-5:]] == [None, None, None, "throttle", "throttle"]


def test_throttle_next_answers_429_with_the_configured_retry_after(emulator_tenant: EmulatedTenant) -> None:
    emulator_tenant.faults(throttle_next=2, retry_after=1.5)
    answers = [_get(emulator_tenant) for _ in range(3)]
    assert [r.status_code for r in answers] == [429, 429, 200]
    assert answers[0].headers["Retry-After"] == "1.5"


def test_the_concurrency_answer_is_plain_text(emulator_tenant: EmulatedTenant) -> None:
    emulator_tenant.faults(concurrency_next=1)
    first, second = _get(emulator_tenant), _get(emulator_tenant)
    assert first.status_code == 429
    assert first.headers["Content-Type"].startswith("text/plain")
    assert first.text == CONCURRENCY
    assert second.status_code == 200


def test_more_requests_in_flight_than_max_concurrent_get_the_concurrency_answer(
    emulator_tenant: EmulatedTenant,
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    token = emulator_tenant._invoke_token()
    # Each request stays 1 s in the server, so four sent together overlap: one is served, the others are not.
    emulator_tenant.faults(max_concurrent=1, latency=1.0)
    barrier = threading.Barrier(4)

    def call(_: int) -> requests.Response:
        barrier.wait()
        return _get(emulator_tenant, token=token)

    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(call, range(4)))
    statuses = sorted(a.status_code for a in answers)
    assert 200 in statuses
    refused = [a for a in answers if a.status_code != 200]
    assert refused and all(a.status_code == 429 and a.text == CONCURRENCY for a in refused)


def test_error_next_answers_the_given_status_for_exactly_n_requests(emulator_tenant: EmulatedTenant) -> None:
    emulator_tenant.faults(error_next=2, error_status=503)
    assert [_get(emulator_tenant).status_code for _ in range(3)] == [503, 503, 200]
    emulator_tenant.faults(error_next=1, error_status=504)
    assert [_get(emulator_tenant).status_code for _ in range(2)] == [504, 200]


def test_an_error_rate_of_one_fails_everything(emulator_tenant: EmulatedTenant) -> None:
    emulator_tenant.faults(error_rate=1.0)
    assert {_get(emulator_tenant).status_code for _ in range(4)} == {503}


def test_a_seeded_error_rate_is_reproducible(emulator_tenant_factory: Any) -> None:
    runs = []
    for _ in range(2):
        tenant = emulator_tenant_factory()
        tenant._invoke_token()
        tenant.faults(error_rate=0.5, seed=42)
        runs.append([_get(tenant).status_code for _ in range(12)])
    assert runs[0] == runs[1]
    assert {200, 503} == set(runs[0])


def test_latency_delays_the_answer_past_a_short_client_timeout(emulator_tenant: EmulatedTenant) -> None:
    token = emulator_tenant._invoke_token()
    emulator_tenant.faults(latency=2.0)
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(
            emulator_tenant.invoke_url,
            json={"CmdletInput": {"CmdletName": "Get-AcceptedDomain", "Parameters": {}}},
            headers={"Authorization": f"Bearer {token}"},
            verify=str(emulator_tenant.ca_path),
            timeout=(5, 0.3),
        )


def test_dropped_connections_get_no_http_answer(emulator_tenant: EmulatedTenant) -> None:
    emulator_tenant._invoke_token()
    emulator_tenant.faults(drop_next=1)
    with pytest.raises(requests.exceptions.ConnectionError):
        _get(emulator_tenant)
    assert _get(emulator_tenant).status_code == 200
    dropped = [e for e in emulator_tenant.requests() if e["fault"] == "drop"]
    assert len(dropped) == 1


def test_read_after_write_lag_hides_a_new_object_until_the_lag_is_over(emulator_tenant: EmulatedTenant) -> None:
    emulator_tenant.faults(read_lag=600)
    created = emulator_tenant.invoke("New-InboundConnector", {"Name": "lagging", "ConnectorType": "Partner",
                                                              "SenderDomains": ["*"]})
    assert created.status_code == 200
    assert emulator_tenant.invoke("Get-InboundConnector", {"Identity": "lagging"}).status_code == 404
    assert emulator_tenant.invoke("Get-InboundConnector").json()["value"] == []
    emulator_tenant.clear_faults()
    assert emulator_tenant.invoke("Get-InboundConnector", {"Identity": "lagging"}).status_code == 200


def test_a_non_positive_token_lifetime_issues_tokens_the_api_refuses(emulator_tenant: EmulatedTenant) -> None:
    emulator_tenant.faults(token_lifetime=-60)
    token = emulator_tenant.token()
    response = emulator_tenant.invoke("Get-AcceptedDomain", token=token)
    assert response.status_code == 401
    assert response.content == b""


def test_faults_stay_in_their_tenant(emulator_tenant_factory: Any) -> None:
    noisy, quiet = emulator_tenant_factory(), emulator_tenant_factory()
    noisy.faults(error_rate=1.0)
    assert _get(noisy).status_code == 503
    assert _get(quiet).status_code == 200


def test_a_fault_can_target_some_cmdlets_only(emulator_tenant: EmulatedTenant) -> None:
    emulator_tenant.faults(error_rate=1.0, cmdlets=["Get-InboundConnector"])
    assert emulator_tenant.invoke("Get-InboundConnector").status_code == 503
    assert _get(emulator_tenant).status_code == 200


def test_delete_clears_the_faults(emulator_tenant: EmulatedTenant) -> None:
    emulator_tenant.faults(error_rate=1.0)
    emulator_tenant.clear_faults()
    assert _get(emulator_tenant).status_code == 200


@pytest.mark.parametrize(
    "knobs",
    [{"nonsense": 1}, {"error_status": 418}, {"error_rate": 2}],
    ids=["unknown knob", "bad status", "rate above one"],
)
def test_bad_knobs_are_refused(emulator_tenant: EmulatedTenant, knobs: dict[str, Any]) -> None:
    response = requests.post(
        f"{emulator_tenant.base_url}/_emulator/faults",
        json={"tenant": emulator_tenant.tenant_id, **knobs},
        verify=str(emulator_tenant.ca_path),
        timeout=30,
    )
    assert response.status_code == 400
    assert response.json()["error"]


def test_token_error_next_fails_the_token_endpoint_then_recovers(emulator_tenant: EmulatedTenant) -> None:
    emulator_tenant.faults(token_error_next=1, error_status=503)
    data = {"grant_type": "client_credentials", "client_id": emulator_tenant.client_id,
            "client_secret": emulator_tenant.client_secret, "scope": "https://outlook.office365.com/.default"}
    first = requests.post(emulator_tenant.token_url, data=data, verify=str(emulator_tenant.ca_path), timeout=30)
    assert first.status_code == 503
    assert first.json()["error"] == "temporarily_unavailable"
    second = requests.post(emulator_tenant.token_url, data=data, verify=str(emulator_tenant.ca_path), timeout=30)
    assert second.status_code == 200


def test_replication_lag_of_minutes_still_returns_the_new_object_from_new(emulator_tenant: EmulatedTenant) -> None:
    emulator_tenant.faults(read_lag=300)  # five minutes: the service's "seconds to minutes"
    created = emulator_tenant.invoke("New-InboundConnector", {"Name": "slow", "ConnectorType": "Partner",
                                                              "SenderDomains": ["*"]})
    assert created.json()["value"][0]["Name"] == "slow"  # New-* answers with the object it created
    assert emulator_tenant.invoke("Get-InboundConnector", {"Identity": "slow"}).status_code == 404
    emulator_tenant.faults(read_lag=0)  # replication caught up
    assert emulator_tenant.invoke("Get-InboundConnector", {"Identity": "slow"}).status_code == 200


def test_a_zero_token_lifetime_is_honoured(emulator_tenant: EmulatedTenant) -> None:
    emulator_tenant.faults(token_lifetime=0)
    response = emulator_tenant.invoke("Get-AcceptedDomain", token=emulator_tenant.token())
    assert response.status_code == 401


def test_a_zero_pagination_expiry_expires_every_skiptoken(emulator_tenant: EmulatedTenant) -> None:
    emulator_tenant.faults(pagination_expiry=0)
    first = emulator_tenant.invoke("Get-AcceptedDomain", page_size=1).json()
    second = emulator_tenant.invoke("Get-AcceptedDomain", url=first["@odata.nextLink"])
    assert second.status_code == 400
    assert "Expired or Invalid pagination request" in second.text


def test_drop_after_next_commits_the_write_and_loses_the_answer(emulator_tenant: EmulatedTenant) -> None:
    emulator_tenant.faults(drop_after_next=1)
    with pytest.raises(requests.ConnectionError):
        emulator_tenant.invoke("New-InboundConnector", {"Name": "committed", "ConnectorType": "Partner",
                                                        "SenderDomains": ["*"]})
    assert emulator_tenant.invoke("Get-InboundConnector", {"Identity": "committed"}).status_code == 200
    again = emulator_tenant.invoke("New-InboundConnector", {"Name": "COMMITTED", "ConnectorType": "Partner",
                                                            "SenderDomains": ["*"]})
    assert "ErrorInboundConnectorAlreadyExistsException" in again.json()["error"]["details"][0]["message"]


def test_redirect_to_sends_other_host_names_to_the_regional_host(emulator_tenant: EmulatedTenant) -> None:
    emulator_tenant.faults(redirect_to="localhost:446")
    response = requests.post(emulator_tenant.invoke_url + "?$select=Name", json={"CmdletInput": {
        "CmdletName": "Get-AcceptedDomain"}}, verify=str(emulator_tenant.ca_path), allow_redirects=False, timeout=30)
    assert response.status_code == 302
    assert response.headers["Location"] == (
        f"https://localhost:446/adminapi/beta/{emulator_tenant.tenant_id}/InvokeCommand?$select=Name")
    on_host = emulator_tenant.invoke("Get-AcceptedDomain", url=emulator_tenant.invoke_url.replace("127.0.0.1", "localhost"))
    assert on_host.status_code == 200


def test_clock_skew_shifts_the_date_header(emulator_tenant: EmulatedTenant) -> None:
    from email.utils import parsedate_to_datetime
    import time

    emulator_tenant.faults(clock_skew=3600)
    date = parsedate_to_datetime(_get(emulator_tenant).headers["Date"]).timestamp()
    assert 3500 < date - time.time() < 3700


def test_read_lag_reads_hides_a_new_object_for_that_many_reads_whatever_the_clock(
    emulator_tenant: EmulatedTenant,
) -> None:
    # Minutes of replication lag in a test that advances a fake clock: counted in reads, not seconds.
    emulator_tenant.faults(read_lag_reads=3)
    created = emulator_tenant.invoke("New-InboundConnector", {"Name": "lagging", "ConnectorType": "Partner",
                                                              "SenderDomains": ["*"]})
    assert created.status_code == 200
    assert emulator_tenant.invoke("Get-InboundConnector", {"Identity": "lagging"}).status_code == 404
    assert emulator_tenant.invoke("Get-InboundConnector").json()["value"] == []
    assert emulator_tenant.invoke("Get-InboundConnector", {"Identity": "lagging"}).status_code == 404
    assert emulator_tenant.invoke("Get-InboundConnector", {"Identity": "lagging"}).status_code == 200
    assert [c["Name"] for c in emulator_tenant.invoke("Get-InboundConnector").json()["value"]] == ["lagging"]


def test_connections_are_kept_alive_between_requests(emulator_tenant: EmulatedTenant) -> None:
    parts = urlsplit(emulator_tenant.base_url)
    conn = http.client.HTTPSConnection(parts.hostname or "", parts.port,
                                       context=ssl.create_default_context(cafile=str(emulator_tenant.ca_path)))
    conn.connect()
    conn.auto_open = 0  # a connection the server closed would raise instead of being reopened silently
    try:
        for _ in range(3):
            conn.request("GET", "/_emulator/health")
            answer = conn.getresponse()
            answer.read()
            assert answer.status == 200 and (answer.getheader("Connection") or "").lower() != "close"
    finally:
        conn.close()


def test_a_new_name_is_checked_against_existing_ones_case_insensitively_after_a_rename(
    emulator_tenant: EmulatedTenant,
) -> None:
    body = {"ConnectorType": "Partner", "SenderDomains": ["*"]}
    assert emulator_tenant.invoke("New-InboundConnector", {"Name": "First", **body}).status_code == 200
    assert emulator_tenant.invoke("Set-InboundConnector", {"Identity": "first", "Name": "Renamed"}).status_code == 200
    assert emulator_tenant.invoke("New-InboundConnector", {"Name": "FIRST", **body}).status_code == 200
    duplicate = emulator_tenant.invoke("New-InboundConnector", {"Name": "renamed", **body})
    assert duplicate.status_code == 400
    assert emulator_tenant.invoke("Get-InboundConnector", {"Identity": "RENAMED"}).status_code == 200
