"""``mailflow doctor``: the first thing to run against a real tenant, one check at a time, each with its fix.

Why a module of its own: a first run against a tenant fails for reasons that have nothing to do with the stack (a
missing permission, a missing role, a wrong initial domain, a clock, an expired certificate, a regional host).
``plan`` stops at the first of them with one error; the doctor runs every check it can, says which passed, and
for each failure names the exact fix (the permission, the role, the config key). Checks only read: the doctor
calls each Get-* cmdlet the reconciler uses once and never writes.

``--record DIR`` keeps the admin-API answers it saw, sanitised (see :func:`sanitise`), so that a user can send a
fixture of their tenant's real shapes without sending their tenant.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
from dataclasses import asdict, dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Callable, Sequence, TypeAlias

from .client import ExoClient
from .credentials import Certificate, ClientSecret, Credential
from .errors import AuthenticationError, ExoError, MailflowError, PermissionDenied
from .shapes import Json, JsonObject, Record
from .tenant import TenantConfig, is_initial_domain, resolve_endpoints

__all__ = ["Check", "DoctorReport", "run_doctor", "sanitise", "write_record", "READ_CMDLETS", "MAX_CLOCK_SKEW"]

READ_CMDLETS = ("Get-AcceptedDomain", "Get-InboundConnector", "Get-OutboundConnector")
MAX_CLOCK_SKEW = 300.0  # seconds; Entra tolerates about 5 minutes on assertions and token lifetimes
CERT_WARN_DAYS = 30
EXCHANGE_APP_ROLE = "Exchange.ManageAsApp"
# Entra directory role template ids that let an app run the connector cmdlets (reads; the first two also write).
DIRECTORY_ROLES = {
    "62e90394-69f5-4237-9190-012177145e10": "Global Administrator",
    "29232cdf-9323-42fd-ade2-1d097af3e4de": "Exchange Administrator",
    "f2ef992c-3afb-46b9-b7cf-a126ee74c451": "Global Reader",
    "88d8e3e3-8f55-4a1e-953a-9b9898b8876b": "Directory Readers",
}
WRITE_ROLE_IDS = ("62e90394-69f5-4237-9190-012177145e10", "29232cdf-9323-42fd-ade2-1d097af3e4de")
ROLE_FIX = (
    "Entra admin center > Roles & admins > Exchange Administrator > Add assignments > select the app's "
    "service principal (enterprise application); allow up to an hour for Exchange Online to see it"
)
PERMISSION_FIX = (
    "Entra admin center > App registrations > the app > API permissions > Add a permission > APIs my organization "
    "uses > Office 365 Exchange Online > Application permissions > Exchange.ManageAsApp, then Grant admin consent"
)


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # "pass", "fail", "warn" or "info"
    detail: str
    fix: str = ""


@dataclass
class DoctorReport:
    tenant: str
    checks: list[Check] = field(default_factory=list)
    config: TenantConfig | None = None  # as the client resolved it (the emulator's tenant id filled in)

    @property
    def ok(self) -> bool:
        return all(c.status != "fail" for c in self.checks)

    def add(self, name: str, status: str, detail: str, fix: str = "") -> None:
        self.checks.append(Check(name, status, detail, fix))

    def to_dict(self) -> dict[str, Json]:
        return {"tenant": self.tenant, "ok": self.ok, "checks": [asdict(c) for c in self.checks]}


@dataclass
class _Seen:
    """One admin-API answer, as the client's observer saw it."""

    cmdlet: str
    status: int
    headers: dict[str, str]
    body: bytes


# What the client calls with each admin-API answer (ExoClient's ``observer``): cmdlet, status, headers, body.
Observer: TypeAlias = Callable[[str, int, dict[str, str], bytes], None]
# A sanitised answer as written by ``--record``: cmdlet, status, kept headers, the body (JSON or text).
SavedAnswer: TypeAlias = dict[str, Json]


def run_doctor(config: TenantConfig,
               client_factory: Callable[[Observer], ExoClient]) -> tuple[DoctorReport, list[_Seen]]:
    """Run every check against ``config``; ``client_factory(observer)`` opens the client (CLI: ``open_client``)."""
    report = DoctorReport(config.label)
    seen: list[_Seen] = []
    if not _check_config(report, config):
        return report, seen
    try:
        client = client_factory(lambda cmdlet, status, headers, body: seen.append(_Seen(cmdlet, status, headers, body)))
    except (MailflowError, ValueError) as exc:
        report.add("credential", "fail", str(exc),
                   "set AZURE_CLIENT_ID and one of AZURE_CLIENT_SECRET, AZURE_CLIENT_CERTIFICATE_PATH, "
                   "AZURE_FEDERATED_TOKEN_FILE (or run where a managed identity is available)")
        return report, seen
    report.tenant = client.config.label
    report.config = client.config
    _check_cloud(report, client)
    _check_credential_expiry(report, client.credential)
    claims = _check_sign_in(report, client)
    if claims is None:
        return report, seen
    _check_roles(report, claims)
    records = _check_reads(report, client)
    _check_redirect(report, client)
    _check_anchor(report, client.config, records.get("Get-AcceptedDomain"))
    _check_clock(report, seen)
    return report, seen


def _check_config(report: DoctorReport, config: TenantConfig) -> bool:
    if config.emulator:
        report.add("config", "pass", "the local emulated tenant (tenant: emulator: true)")
        return True
    try:
        resolve_endpoints(config)
    except ValueError as exc:
        report.add("config", "fail", str(exc), "fix tenant.cloud / tenant.endpoint / tenant.authority in the stack")
        return False
    report.add("config", "pass", f"tenant {config.tenant_id or config.initial_domain or '(emulator)'}")
    return True


def _check_cloud(report: DoctorReport, client: ExoClient) -> None:
    endpoints = client.endpoints
    custom = " (custom endpoint)" if client.config.endpoint else ""
    report.add("cloud", "pass", f"{client.config.cloud}{custom}: admin API {endpoints.api_base}, token authority "
               f"{endpoints.authority}, scope {endpoints.scope}")


def _check_credential_expiry(report: DoctorReport, credential: Credential) -> None:
    if isinstance(credential, Certificate):
        try:
            not_after = credential.not_after()
        except MailflowError as exc:
            report.add("credential expiry", "fail", str(exc), "fix AZURE_CLIENT_CERTIFICATE_PATH / its password")
            return
        left = not_after - dt.datetime.now(dt.timezone.utc)
        when = not_after.strftime("%Y-%m-%d %H:%M UTC")
        if left.total_seconds() <= 0:
            report.add("credential expiry", "fail", f"the certificate expired on {when}",
                       "create a new certificate, upload its public part to the app registration (Certificates & "
                       "secrets) and point AZURE_CLIENT_CERTIFICATE_PATH at it")
        elif left.days < CERT_WARN_DAYS:
            report.add("credential expiry", "warn", f"the certificate expires on {when} ({left.days} days)",
                       "rotate it before then (Certificates & secrets on the app registration)")
        else:
            report.add("credential expiry", "pass", f"the certificate is valid until {when}")
    elif isinstance(credential, ClientSecret):
        report.add("credential expiry", "info",
                   "a client secret's expiry is unknown to the app itself (Entra does not tell it)",
                   "check the Expires column under App registrations > the app > Certificates & secrets")
    else:
        report.add("credential expiry", "info", f"{credential.describe()}: short-lived tokens, fetched per sign-in")


def _check_sign_in(report: DoctorReport, client: ExoClient) -> JsonObject | None:
    try:
        claims = client.token_claims()
    except AuthenticationError as exc:
        report.add("sign-in", "fail", str(exc),
                   "check AZURE_TENANT_ID / tenant.id, AZURE_CLIENT_ID and the credential; " + PERMISSION_FIX)
        return None
    except ExoError as exc:
        report.add("sign-in", "fail", str(exc), "check the network path to the token authority")
        return None
    report.add("sign-in", "pass", f"token for {claims.get('aud', '?')} (app {claims.get('appid') or '?'})")
    return claims


def _strings(value: Json) -> list[str]:
    """A token claim that lists values (roles, wids); missing or not a list reads as none."""
    return [str(v) for v in value] if isinstance(value, list) else []


def _check_roles(report: DoctorReport, claims: JsonObject) -> None:
    roles = _strings(claims.get("roles"))
    if EXCHANGE_APP_ROLE in roles:
        report.add("app permission", "pass", f"the token carries {EXCHANGE_APP_ROLE}")
    else:
        report.add("app permission", "fail",
                   f"the token does not carry {EXCHANGE_APP_ROLE} (roles: {', '.join(roles) or 'none'})", PERMISSION_FIX)
    wids = {w.lower() for w in _strings(claims.get("wids"))}
    names = [DIRECTORY_ROLES[w] for w in wids if w in DIRECTORY_ROLES]
    if wids & set(WRITE_ROLE_IDS):
        report.add("directory role", "pass", f"the app holds {', '.join(sorted(names))}")
    elif names:
        report.add("directory role", "warn", f"the app holds {', '.join(sorted(names))}: reads work, writes will not",
                   ROLE_FIX)
    else:
        report.add("directory role", "fail", "the token lists no Exchange-capable directory role", ROLE_FIX)


def _check_reads(report: DoctorReport, client: ExoClient) -> dict[str, Sequence[Record]]:
    records: dict[str, Sequence[Record]] = {}
    for cmdlet in READ_CMDLETS:
        try:
            values = client.invoke(cmdlet, {"ResultSize": "Unlimited"}).values
        except PermissionDenied as exc:
            report.add(cmdlet, "fail", f"HTTP 403: {exc.message}", ROLE_FIX)
            continue
        except AuthenticationError as exc:
            report.add(cmdlet, "fail", str(exc), PERMISSION_FIX)
            continue
        except ExoError as exc:
            report.add(cmdlet, "fail", str(exc), "see the message; run doctor again to tell a transient failure")
            continue
        records[cmdlet] = values
        report.add(cmdlet, "pass", f"{len(values)} object(s)")
    return records


def _check_redirect(report: DoctorReport, client: ExoClient) -> None:
    if client.api_base != client.endpoints.api_base:
        report.add("regional host", "info", f"the tenant was redirected to {client.api_base}; it was followed and "
                   "is used for every later call")
    else:
        report.add("regional host", "pass", f"no redirect: {client.api_base}")


def _check_anchor(report: DoctorReport, config: TenantConfig, domains: Sequence[Record] | None) -> None:
    initial = next((str(d.get("DomainName")) for d in domains or [] if d.get("InitialDomain")), None)
    configured = config.initial_domain
    if configured and not is_initial_domain(configured):
        report.add("anchor", "fail", f"tenant.initialDomain {configured} is a custom domain",
                   f"set tenant.initialDomain to {initial or 'the .onmicrosoft.com domain'}")
    elif initial and configured and configured.lower() != initial.lower():
        report.add("anchor", "fail", f"tenant.initialDomain is {configured} but the tenant's initial domain is {initial}",
                   f"set tenant.initialDomain to {initial}")
    elif configured:
        report.add("anchor", "pass", f"anchored on the initial domain {configured}")
    else:
        report.add("anchor", "pass", "anchored on the tenant id" + (f" (initial domain: {initial})" if initial else ""))


def _check_clock(report: DoctorReport, seen: list[_Seen]) -> None:
    dates = [s.headers.get("Date") or s.headers.get("date") for s in seen]
    dates = [d for d in dates if d]
    if not dates:
        report.add("clock", "info", "no Date header seen; clock skew not measured")
        return
    try:
        server = parsedate_to_datetime(dates[-1] or "")
    except (TypeError, ValueError):
        report.add("clock", "info", f"unreadable Date header {dates[-1]!r}")
        return
    skew = (dt.datetime.now(dt.timezone.utc) - server).total_seconds()
    # The Date header has a 1 s resolution and the answer took a moment: only minutes matter.
    if abs(skew) > MAX_CLOCK_SKEW:
        side = "ahead of" if skew > 0 else "behind"
        report.add("clock", "fail", f"this machine's clock is {abs(skew):.0f}s {side} the service's",
                   "synchronise the clock (NTP: timedatectl set-ntp true / w32tm /resync); tokens and certificate "
                   "assertions are refused when the clocks disagree by minutes")
    else:
        report.add("clock", "pass", f"within {abs(skew):.0f}s of the service")


# --------------------------------------------------------------------------------------------- recording

_IPV4 = re.compile(r"(?<![\d.])(\d{1,3}(?:\.\d{1,3}){3})(?:/(\d{1,2}))?(?![\d.])")
# Not the admin API's own "name@odata.type" / "@adminapi.warnings" annotation keys.
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@(?!odata\.|adminapi\.)[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
_KEPT_HEADERS = ("content-type", "odata-version", "preference-applied", "x-exceptiontype", "content-encoding")
_PLACEHOLDER_TENANT = "00000000-0000-0000-0000-000000000000"


def sanitise(
    seen: list[_Seen], config: TenantConfig, *, include_addresses: bool = False
) -> tuple[list[SavedAnswer], Callable[[str], str]]:
    """The answers without what identifies the tenant: no token (never in an answer; request headers are not
    kept), the tenant id and the tenant's domains replaced by placeholders, and, unless ``include_addresses``,
    IPv4 addresses mapped to documentation ranges and e-mail addresses to ``user<n>@example.com``."""
    replacements: dict[str, str] = {}
    if config.tenant_id:
        replacements[config.tenant_id.lower()] = _PLACEHOLDER_TENANT
    domains: set[str] = {config.initial_domain.lower()} if config.initial_domain else set()
    for s in seen:
        if s.cmdlet == "Get-AcceptedDomain":
            data = _json(s.body)
            for item in (data or {}).get("value") or [] if isinstance(data, dict) else []:
                if isinstance(item, dict) and item.get("DomainName"):
                    domains.add(str(item["DomainName"]).lower())
    for n, domain in enumerate(sorted(domains, key=len, reverse=True), 1):
        replacements[domain] = "contoso.onmicrosoft.com" if is_initial_domain(domain) else f"domain{n}.example"

    def scrub(text: str) -> str:
        for old, new in replacements.items():
            text = re.sub(re.escape(old), new, text, flags=re.IGNORECASE)
        return text if include_addresses else _mask_addresses(text)

    out: list[SavedAnswer] = []
    for s in seen:
        text = scrub(s.body.replace(b"\0", b"").decode("utf-8", "replace"))
        headers = {k: v for k, v in s.headers.items() if k.lower() in _KEPT_HEADERS}
        body = _json(text.encode("utf-8"))
        out.append({"cmdlet": s.cmdlet, "status": s.status, "headers": headers,
                    "body": body if body is not None else (text if s.status != 403 else "<NUL bytes>")})
    return out, scrub


def _mask_addresses(text: str) -> str:
    ips: dict[str, str] = {}
    emails: dict[str, str] = {}

    def ip(match: re.Match[str]) -> str:
        try:
            ipaddress.IPv4Address(match.group(1))
        except ValueError:
            return match.group(0)
        masked = ips.setdefault(match.group(1), f"192.0.2.{len(ips) + 1}")
        return masked + (f"/{match.group(2)}" if match.group(2) else "")

    def email(match: re.Match[str]) -> str:
        return emails.setdefault(match.group(0).lower(), f"user{len(emails) + 1}@example.com")

    return _IPV4.sub(ip, _EMAIL.sub(email, text))


def _json(raw: bytes) -> Json:
    try:
        value: Json = json.loads(raw)
        return value
    except ValueError:
        return None


def write_record(directory: Path, records: list[SavedAnswer], report: DoctorReport,
                 scrub: Callable[[str], str]) -> list[Path]:
    """``DIR/NN-<cmdlet>.json`` per answer and ``DIR/doctor.json``; returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for n, record in enumerate(records, 1):
        path = directory / f"{n:02d}-{record['cmdlet']}.json"
        path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(path)
    summary = directory / "doctor.json"
    summary.write_text(scrub(json.dumps(report.to_dict(), indent=2)) + "\n", encoding="utf-8")
    written.append(summary)
    return written
