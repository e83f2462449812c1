"""Identities and merging the records of a batch that describe the same prospect.

Which identity a record has is each API version's rule (see the dialects): in v4/v5 the Pardot
id, then the Salesforce fid, then the lookup field, then the email; in v3, where the email is
unique, the Pardot id or the email.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
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


def group_records(
    prepared: list[Prepared], identity_of: Callable[[Prepared], Identity]
) -> list[Group]:
    """Merge records with the same identity; later values win, first appearance keeps order.

    `identity_of` is the API version's matching rule (see the dialects).
    """
    groups: dict[Identity, Group] = {}
    for item in prepared:
        identity = identity_of(item)
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
        if item.email:
            group.email = item.email
        if item.lookup_value is not None:
            group.lookup_value = item.lookup_value
    return list(groups.values())
