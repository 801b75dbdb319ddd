"""Resource specs: every Exchange Online field this project manages, declared once, as data.

Why this module exists: validation of a stack file, normalisation of what ``Get-*`` returns, the
``New-*``/``Set-*`` parameters, the plan's diff and the generated docs must all agree on what a field is.
Each resource type is therefore one table of :class:`Field` rows (stack name, Exchange parameter, value
kind, service default, create/set mode, risky flag), and every function of the engine is driven by that table.
Adding a field to a table is enough for validation, normalisation, parameter building and docs to see it.

Sources: ``exo-cmdlets.md`` tables 2.1 (inbound), 4.1 (outbound), 6.2 (accepted domains), the object rules
in §2.2 and §4.2, and the accept/reject table in §12. Facts tagged [X] in that reference come from old
decompiled Exchange code and [I] ones are inferences; code comments below keep those tags where a choice
depends on them.

Deliberately left out (internal Microsoft use or undocumented, see §2.1 and §4.1): ``EFTestMode``,
``EFSkipMailGateway``, ``ScanAndDropRecipients``, ``ClientHostNames`` (inbound) and
``LinkForModifiedConnector`` (outbound). They are not validated, not read and never sent.

The package is split by concern: :mod:`.kinds` (value kinds), :mod:`.rules` (the cross-field condition language),
:mod:`.tables` (the field tables, one :class:`ResourceSpec` per type, and their rules) and :mod:`.engine` (the
functions driven by the tables). Import from the package: ``from o365_mailflow.specs import X``.
"""

from __future__ import annotations

from .engine import (adopt_of, adopting_schema, check_rules, effective, name_key, normalise_desired, normalise_live,
                     renamed_from_of, rule_schemas, split_create, to_parameters)
from .kinds import (META_KEYS, RENAMED_FROM, UNSET, Bool, Choice, Domain, Email, Kind, KindError, ListOf, Mode, Problem,
                    SenderDomain, SenderIp, SkipIp, SmartHost, Text, Timestamp, did_you_mean, reserved_reason, suggest)
from .rules import AllOf, AnyOf, Cond, Has, Is, IsSet, Not, StartsWith
from .tables import (ACCEPTED_DOMAIN, INBOUND, OUTBOUND, SPECS, After, Field, Phase, ResourceSpec, register,
                     spec_for_stack_key, write_order, write_phases, late_after, is_late, holds)

__all__ = [
    "UNSET",
    "META_KEYS",
    "Mode",
    "Problem",
    "Kind",
    "Bool",
    "Text",
    "Choice",
    "Domain",
    "SenderDomain",
    "SenderIp",
    "SkipIp",
    "SmartHost",
    "Email",
    "Timestamp",
    "ListOf",
    "Field",
    "ResourceSpec",
    "Cond",
    "Is",
    "IsSet",
    "Has",
    "StartsWith",
    "Not",
    "AllOf",
    "AnyOf",
    "adopting_schema",
    "rule_schemas",
    "SPECS",
    "INBOUND",
    "OUTBOUND",
    "ACCEPTED_DOMAIN",
    "spec_for_stack_key",
    "suggest",
    "did_you_mean",
    "normalise_desired",
    "check_rules",
    "effective",
    "normalise_live",
    "to_parameters",
    "split_create",
    "adopt_of",
    "RENAMED_FROM",
    "renamed_from_of",
    "reserved_reason",
    "After",
    "register",
    "write_order",
    "Phase",
    "write_phases",
    "late_after",
    "is_late",
    "holds",
    "name_key",
    "KindError",
]
