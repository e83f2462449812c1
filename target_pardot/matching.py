"""Identities, merging the records of a batch that describe the same prospect, and the order
in which records that name one prospect through different identities are written (layers).

Which identity a record has is each API version's rule (see the dialects): in v4/v5 the Pardot
id, then the Salesforce fid, then the lookup field, then the email; in v3, where the email is
unique, the Pardot id or the email.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable, Mapping, Sequence
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


@dataclass(slots=True)
class Group:
    """All records of one batch that describe the same prospect, merged in arrival order."""

    identity: Identity
    members: list[Prepared]
    fields: dict[str, Any] = field(default_factory=dict)
    email: str | None = None
    lookup_value: str | None = None

    @property
    def stream(self) -> str:
        # The stream of its first record: a batch holds one stream's records, or those of
        # several streams read since the last batch (BatchPreparer.finish).
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
    # id(record) -> the lowest layer each record left out may take when the rest is layered
    # again (its layer here, less the one written): relations that went through a record of
    # this layer are not seen again once it is written.
    later: dict[int, int]


def first_layer(
    prepared: list[Prepared],
    identity_of: Callable[[Prepared], Identity],
    *,
    prospect_of: Mapping[int, int] | None = None,
    floor: Mapping[int, int] | None = None,
) -> Layer:
    """The records that can be written first, all at once, grouped by identity.

    Groups are written concurrently, so two groups naming one prospect would land in no
    particular order. A record therefore waits for a later layer when an earlier record named,
    through a different identity, what its identity names: the same Pardot id, fid or lookup
    value (an id with and without a fid), the same email (unless both are Pardot ids or both
    lookup values, which are different prospects whatever their emails), or the same prospect
    (`prospect_of`: id(record) -> the prospect finding resolved it to; a Pardot id names its
    own). What an identity names is everything its records named in the batch: after an id
    record with a new email, an email record of that address and the id again (with its old
    email back), the id record waits for the email record, which may be its prospect.
    Each record gets the lowest layer that keeps it after everything it conflicts with, not
    before an earlier record of its own identity, and not below its `floor` (Layer.later of
    the pass before, ignored if it would leave the first layer empty), so most records of a
    batch are in the first layer even when a few conflict. Records with the same identity in
    the layer merge: later values win, first appearance keeps order. `identity_of` is the API
    version's matching rule (see the dialects).
    """
    groups: dict[Identity, Group] = {}
    records: list[Prepared] = []
    keys: set[Hashable] = set()
    later: dict[int, int] = {}
    # What earlier records named -> (the highest layer naming it, the identity that did).
    # Records that always create ("new") share one owner: they write only what they make.
    named: dict[Hashable, tuple[int, Identity | str]] = {}
    # Identity -> what its records named so far: its key, emails and prospects.
    linked: dict[Identity, list[Hashable]] = {}
    for item in prepared:
        identity = identity_of(item)
        email = item.email
        email_key = "email " + email.lower() if email else None
        prospect: int | None = None
        if prospect_of is not None:
            prospect = prospect_of.get(id(item))
            if prospect is None and identity.kind == "id" and identity.value.isdigit():
                prospect = int(identity.value)
        owner: Identity | str
        names: Sequence[Hashable]
        written_lookup: str | None = None
        kind = identity.kind
        if kind == "new":
            owner = "new"
            key = None
            names = [name for name in (email_key, prospect) if name is not None]
        elif kind == "email" and prospect_of is None:
            # The usual record: an email names only itself (its key is its email's).
            owner = identity
            key = "email " + identity.value
            email_key = None
            names = (key,)
        else:
            owner = identity
            key = f"{kind} {identity.value}"
            if kind == "email":
                email_key = None
            known = linked.get(identity)
            if known is None:
                known = linked[identity] = [key]
            if email_key is not None and email_key not in known:
                known.append(email_key)
            if kind != "lookup" and item.lookup_value is not None:
                # A Pardot id or fid writing a lookup value: the prospect a record of that
                # value finds after it.
                lookup_key = "lookup " + item.lookup_value
                if lookup_key not in known:
                    known.append(lookup_key)
                written_lookup = lookup_key
            if prospect is not None and prospect not in known:
                known.append(prospect)
            names = known
        # The lowest layer after every earlier record it conflicts with, and not before one of
        # its own identity.
        layer = floor.get(id(item), 0) if floor else 0
        for name in names:
            earlier = named.get(name)
            if earlier is None:
                continue
            other = earlier[1]
            if other == owner:
                apart = False
            elif type(name) is str and name.startswith("email "):
                apart = _may_share_prospect(other, owner)
            else:
                apart = True
            layer = max(layer, earlier[0] + 1 if apart else earlier[0])
        mark = (layer, owner)
        for name in names:
            named[name] = mark
        if layer:
            later[id(item)] = layer - 1
            continue
        records.append(item)
        if key is not None:
            keys.add(key)
        if email_key is not None:
            keys.add(email_key)
        if written_lookup is not None:
            keys.add(written_lookup)
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
    if not records and prepared:
        # The floors of a pass before disagree with what finding showed since: a batch must
        # not stall, and without floors its first record always goes first.
        return first_layer(prepared, identity_of, prospect_of=prospect_of)
    return Layer(list(groups.values()), records, keys, later)


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
