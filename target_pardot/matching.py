"""Pardot's matching rules: which prospect identity a record has, and merging repeats of one.

Precedence (v4/v5): Pardot id, then Salesforce fid, then the lookup field, then the email.
In v3 the email is unique, so a record is identified by its Pardot id or its email.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from target_pardot.prepare import Prepared
from target_pardot.settings import Settings

_unique = itertools.count()


@dataclass(frozen=True)
class Identity:
    kind: str  # "id", "fid", "lookup", "email" or "new" (always creates)
    value: str
    fid: str | None = None  # a fid given together with an id: Pardot checks they agree

    def __str__(self) -> str:
        return f"{self.kind} {self.value}"


@dataclass
class Group:
    """All records of one batch that describe the same prospect, merged in arrival order."""

    identity: Identity
    members: list[Prepared]
    fields: dict[str, Any] = field(default_factory=dict)
    email: str | None = None
    lookup_value: str | None = None


def identity_of(prepared: Prepared, settings: Settings) -> Identity:
    identify = prepared.identify
    if identify.pardot_id:
        return Identity("id", identify.pardot_id, fid=identify.pardot_fid)
    if settings.api_version == 3:
        # prepare_records guarantees an email here.
        return Identity("email", (identify.email or "").lower())
    if identify.pardot_fid:
        return Identity("fid", identify.pardot_fid)
    if settings.lookup_field and prepared.lookup_value is not None:
        return Identity("lookup", prepared.lookup_value)
    if settings.match_by_email:
        return Identity("email", (identify.email or "").lower())
    # Pardot's raw v4 rule: every email-only record creates a prospect.
    return Identity("new", str(next(_unique)))


def group_records(prepared: list[Prepared], settings: Settings) -> list[Group]:
    """Merge records with the same identity; later values win, first appearance keeps order."""
    groups: dict[Identity, Group] = {}
    for item in prepared:
        identity = identity_of(item, settings)
        group = groups.get(identity)
        if group is None:
            group = groups[identity] = Group(identity=identity, members=[])
        group.members.append(item)
        group.fields.update(item.fields)
        if item.email:
            group.email = item.email
        if item.lookup_value is not None:
            group.lookup_value = item.lookup_value
    return list(groups.values())
