"""Identities, merging the records of a batch that describe the same prospect, and the order
in which records that name one prospect through different identities are written (layers).

Which identity a record has is each API version's rule (see the dialects): in v4/v5 the Pardot
id, then the Salesforce fid, then the lookup field, then the email; in v3, where the email is
unique, the Pardot id or the email.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from target_pardot.prepare import Prepared

_unique = itertools.count()


class Identity(NamedTuple):
    # A tuple: made for every record and used as a dict key while grouping, where a frozen
    # dataclass costs several times as much to build and to hash.
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

    @property
    def stream(self) -> str:
        # A batch holds one stream's records, so its groups do too.
        return self.members[0].identify.stream if self.members else ""


def new_identity() -> Identity:
    """An identity no other record shares: the record always creates a prospect."""
    return Identity("new", str(next(_unique)))


class Layer(NamedTuple):
    groups: list[Group]
    records: list[Prepared]  # the records the groups hold, in input order
    # What those records name ("kind value" and "email <address>" text: an email identity and
    # another record's email give the same key), for the pipeline to hold while they are written.
    keys: set[Hashable]


def first_layer(
    prepared: list[Prepared],
    identity_of: Callable[[Prepared], Identity],
    *,
    prospect_of: Mapping[int, int] | None = None,
) -> Layer:
    """The records that can be written first, all at once, grouped by identity.

    Groups are written concurrently, so two groups naming one prospect would land in no
    particular order. A record therefore waits for a later layer when an earlier record named,
    through a different identity, what it names: the same Pardot id, fid or lookup value (an
    id with and without a fid), the same email (unless both are Pardot ids or both lookup
    values, which are different prospects whatever their emails), or the same prospect in
    `prospect_of` (id(record) -> the prospect finding resolved it to). Each record gets the
    lowest layer that keeps it after everything it conflicts with, and not before an earlier
    record of its own identity, so most records of a batch are in the first layer even when a
    few conflict.
    Records with the same identity in the layer merge: later values win, first appearance
    keeps order. `identity_of` is the API version's matching rule (see the dialects).
    """
    groups: dict[Identity, Group] = {}
    records: list[Prepared] = []
    keys: set[Hashable] = set()
    # What earlier records named -> (the highest layer naming it, the identity that did).
    # Records that always create ("new") share one owner: they write only what they make.
    named: dict[Hashable, tuple[int, Identity | str]] = {}
    for item in prepared:
        identity = identity_of(item)
        email = item.email
        if identity.kind == "new":
            owner: Identity | str = "new"
            key = None
            email_key = "email " + email.lower() if email else None
        else:
            owner = identity
            key = f"{identity.kind} {identity.value}"  # an email identity's is its email's
            email_key = "email " + email.lower() if email and identity.kind != "email" else None
        # The lowest layer after every earlier record it conflicts with, and not before one of
        # its own identity.
        layer = 0
        earlier = named.get(key) if key is not None else None
        if earlier is not None:
            layer = earlier[0] if earlier[1] == owner else earlier[0] + 1
        earlier = named.get(email_key) if email_key is not None else None
        if earlier is not None:
            apart = _may_share_prospect(earlier[1], owner)
            layer = max(layer, earlier[0] + 1 if apart else earlier[0])
        prospect = prospect_of.get(id(item)) if prospect_of is not None else None
        earlier = named.get(prospect) if prospect is not None else None
        if earlier is not None:
            layer = max(layer, earlier[0] if earlier[1] == owner else earlier[0] + 1)
        mark = (layer, owner)
        if key is not None:
            named[key] = mark
        if email_key is not None:
            named[email_key] = mark
        if prospect is not None:
            named[prospect] = mark
        if layer:
            continue
        records.append(item)
        if key is not None:
            keys.add(key)
        if email_key is not None:
            keys.add(email_key)
        group = groups.get(identity)
        if group is None:
            # Most groups have one member: they share its fields rather than copy them, and
            # get a dict of their own only when a second member is merged in.
            group = groups[identity] = Group(identity=identity, members=[item], fields=item.fields)
        else:
            if len(group.members) == 1:
                group.fields = dict(group.fields)
            group.members.append(item)
            group.fields.update(item.fields)
        if email:
            group.email = email
        if item.lookup_value is not None:
            group.lookup_value = item.lookup_value
    return Layer(list(groups.values()), records, keys)


def _may_share_prospect(first: Identity | str, second: Identity | str) -> bool:
    """Whether two namers of one email may write the same prospect.

    Two Pardot ids, or two lookup values, are two prospects whatever their emails (v4 and v5
    allow several per email; a claim of an empty lookup field is never made twice by one plan):
    records that share an email that way need no order. Anything else may be one prospect.
    """
    if first == second:
        return False
    if isinstance(first, str) or isinstance(second, str):
        return True  # "new" beside a matched identity: the latter may claim what "new" made
    return not (first.kind == second.kind and first.kind in ("id", "lookup"))
