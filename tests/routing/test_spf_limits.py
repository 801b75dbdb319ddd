"""The SPF record we suggest is one a DNS server accepts and receivers can evaluate (issue #16).

Matrix: sender networks are merged to the fewest CIDRs (neighbours, duplicates, nested blocks); the TXT value is
cut into strings of at most 255 bytes that join back to the record; a record over the size limit gets the
``routing.spf-too-large`` warning with a fix (split into included records, or wider networks when even that
would pass the 10-lookup limit), located at the relay's senderIpAddresses in the stack file; a small record
gets none. Through the loader (check_stack), through ``review`` (what a plan uses) and the plan's JSON.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import yaml

from o365_mailflow.routing import check_stack, guidance, review, spf_strings
from o365_mailflow.stack import load_stack_text

TOO_LARGE = "routing.spf-too-large"


def relay(name: str, ips: list[str]) -> dict[str, Any]:
    return {"name": name, "connectorType": "OnPremises", "senderDomains": ["*"], "senderIpAddresses": ips}


def test_adjacent_duplicate_and_nested_networks_are_merged_to_the_fewest_cidrs() -> None:
    ips = [f"203.0.113.{i}" for i in range(8, 16)] + ["203.0.113.12", "198.51.100.0/25", "198.51.100.128/25",
                                                          "198.51.100.7"]
    g = guidance([{"domainName": "contoso.com"}], [relay("a", ips[:5]), relay("b", ips[5:])])
    assert g.spf_record == "v=spf1 ip4:198.51.100.0/24 ip4:203.0.113.8/29 include:spf.protection.outlook.com ~all"


def test_a_long_record_is_cut_into_strings_of_at_most_255_bytes_that_join_back() -> None:
    ips = [f"203.0.{i // 128}.{(i % 128) * 2}" for i in range(60)]  # every other address: nothing merges
    g = guidance([{"domainName": "contoso.com"}], [relay("a", ips)])
    assert g.spf_record is not None and len(g.spf_record) > 600
    assert len(g.spf_strings) >= 3
    assert all(len(s.encode()) <= 255 for s in g.spf_strings)
    assert "".join(g.spf_strings) == g.spf_record
    assert all(not s.startswith(" ") for s in g.spf_strings)  # cut between terms, the space kept before the cut
    assert g.to_dict()["spfTxtStrings"] == list(g.spf_strings)


def test_a_short_record_is_one_string() -> None:
    assert spf_strings("v=spf1 include:spf.protection.outlook.com ~all") == (
        "v=spf1 include:spf.protection.outlook.com ~all",)


def _stack(inbound: list[dict[str, Any]]) -> str:
    return yaml.safe_dump({"tenant": {"emulator": True}, "acceptedDomains": [{"domainName": "contoso.com"}],
                           "inboundConnectors": inbound}, sort_keys=False)


def test_a_record_over_the_size_limit_gets_a_warning_with_the_split_fix_at_the_sender_ips() -> None:
    ips = [f"203.0.{i // 128}.{(i % 128) * 2}" for i in range(40)]
    certs = {"name": "certs only", "connectorType": "OnPremises", "senderDomains": ["*"], "requireTls": True,
             "tlsSenderCertificateName": "mail.contoso.com"}
    stack = load_stack_text(_stack([certs, relay("printers", ips)]), file="s.yaml", name="s")
    diags = [d for d in check_stack(stack) if d.code == TOO_LARGE]
    assert len(diags) == 1
    assert diags[0].dotted_path == "inboundConnectors[1].senderIpAddresses"
    assert "include:_spf1." in (diags[0].detail or "")


def test_too_many_networks_for_ten_lookups_are_told_to_use_wider_networks() -> None:
    ips = [str(ipaddress.IPv4Address("10.0.0.0") + 2 * i) for i in range(600)]
    diags, _ = review([{"domainName": "contoso.com"}], [relay("many", ips)], [])
    found = [d for d in diags if d.code == TOO_LARGE]
    assert len(found) == 1 and "wider" in (found[0].detail or "")


def test_a_small_record_gets_no_size_warning() -> None:
    diags, g = review([{"domainName": "contoso.com"}], [relay("a", ["203.0.113.10", "203.0.113.11"])], [])
    assert TOO_LARGE not in [d.code for d in diags]
    assert g.spf_record == "v=spf1 ip4:203.0.113.10/31 include:spf.protection.outlook.com ~all"
