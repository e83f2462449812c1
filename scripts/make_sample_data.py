#!/usr/bin/env python3
"""Write the demo's sample records and seed prospects.

Outputs: demo/data/*.jsonl and demo/seed-prospects.jsonl.

Deterministic (fixed random seed, no clock, stdlib only) and idempotent: a file is rewritten only
when its content would change, so re-running leaves the committed files and their mtimes alone
(tap-jsonl bookmarks files by mtime). `--check` writes nothing and exits 1 when a file is stale.

The records cover the three input shapes target-pardot accepts, one file per shape, plus a file
of records that the target must reject:

  01-segment-identify.jsonl   Segment identify events (traits, context, integrations...)
  02-segment-warehouse.jsonl  Segment warehouse rows (flat snake_case columns)
  03-pardot-rows.jsonl        flat rows named after Pardot prospect fields
  04-problem-records.jsonl    deliberately bad records, one per kind of problem

tap-jsonl reads all four files into one stream: it infers one schema from a sample of every file,
keeps the keys each record has (it adds none), and leaves nested objects whole.

A few people appear more than once with different values (duplicates), some records carry the
custom trait `org_id`, and some seed prospects share an email with the sample data so the demo
shows updates as well as creates. The emails of the problem records appear nowhere else.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import unicodedata
from pathlib import Path
from typing import Any

SEED = 20240611
ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "demo" / "data"
SEED_FILE = ROOT / "demo" / "seed-prospects.jsonl"

IDENTIFY_FILE = "01-segment-identify.jsonl"
WAREHOUSE_FILE = "02-segment-warehouse.jsonl"
PARDOT_ROWS_FILE = "03-pardot-rows.jsonl"
PROBLEM_FILE = "04-problem-records.jsonl"

N_IDENTIFY = 116
N_WAREHOUSE = 92
N_PARDOT_ROWS = 82

# Data tables, one line per row or a few items per line: keep them compact.
# fmt: off
FIRST_NAMES = [
    "Olivia", "Liam", "Emma", "Noah", "Amelia", "Oliver", "Ava", "Elijah", "Sophia", "Lucas",
    "Isabella", "Mateo", "Mia", "Levi", "Charlotte", "Ethan", "Harper", "James", "Evelyn", "Aiden",
    "Priya", "Arjun", "Mei", "Hiroshi", "Yuki", "Chen", "Fatima", "Omar", "Aisha", "Tariq",
    "Ingrid", "Lars", "Sofie", "Mads", "Freya", "Anouk", "Daan", "Chloé", "Léa", "Mathieu",
    "Zoë", "Björn", "Søren", "Małgorzata", "Tomasz", "Lucía", "Martín", "José", "Ana", "Jürgen",
    "Grace", "Samuel", "Nadia", "Kwame", "Ngozi", "Thandiwe", "Rafael", "Beatriz", "Dmitri", "Olga",
]
LAST_NAMES = [
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson",
    "Martin", "Lee", "Thompson", "White", "Harris", "Clark", "Lewis", "Walker", "Hall", "Young",
    "Patel", "Sharma", "Nguyen", "Tanaka", "Suzuki", "Wang", "Kim", "Park", "Haddad", "Khan",
    "Larsen", "Nielsen", "Johansson", "de Vries", "van Dijk", "Dubois", "Lefèvre", "Moreau",
    "Müller", "Schmidt", "Kowalski", "Nowak", "Fernández", "Silva", "Costa", "Okafor", "Mensah",
    "Dlamini", "Ivanova", "Petrov", "O'Connor", "MacLeod",
]
# (company, email domain, website)
COMPANIES = [
    ("Acme Analytics", "acme-analytics.example", "https://acme-analytics.example"),
    ("Globex Logistics", "globex.example", "https://www.globex.example"),
    ("Initech Software", "initech.example", "https://initech.example"),
    ("Umbrella Health", "umbrella-health.example", "https://umbrella-health.example"),
    ("Stark Robotics", "stark-robotics.example", "https://stark-robotics.example"),
    ("Wayne Capital", "waynecapital.example", "https://waynecapital.example"),
    ("Nordlys Energi AS", "nordlys.example", "https://nordlys.example"),
    ("Brightwater Foods", "brightwater.example", "https://brightwater.example"),
    ("Bluebird Travel", "bluebird-travel.example", "https://bluebird-travel.example"),
    ("Cobalt Mining Ltd", "cobalt-mining.example", "https://cobalt-mining.example"),
    ("Evergreen Landscaping", "evergreen.example", "https://evergreen.example"),
    ("Helios Solar GmbH", "helios-solar.example", "https://helios-solar.example"),
    ("Kestrel Aerospace", "kestrel.example", "https://kestrel.example"),
    ("Lumen Optics", "lumen-optics.example", "https://lumen-optics.example"),
    ("Maple & Oak Furniture", "mapleoak.example", "https://mapleoak.example"),
    ("Northwind Traders", "northwind.example", "https://northwind.example"),
    ("Orbital Data Systems", "orbital-data.example", "https://orbital-data.example"),
    ("Pinnacle Insurance", "pinnacle-ins.example", "https://pinnacle-ins.example"),
    ("Quantum Leap Labs", "qleap.example", "https://qleap.example"),
    ("Riverside Medical Group", "riverside-med.example", "https://riverside-med.example"),
    ("Sakura Electronics", "sakura-elec.example", "https://sakura-elec.example"),
    ("Tidewater Shipping", "tidewater.example", "https://tidewater.example"),
    ("Vertex Consulting", "vertex-consulting.example", "https://vertex-consulting.example"),
    ("Zenith Education", "zenith-edu.example", "https://zenith-edu.example"),
    ("Café Lumière SARL", "cafe-lumiere.example", "https://cafe-lumiere.example"),
    ("Fjord Outdoor Gear", "fjord-gear.example", "https://fjord-gear.example"),
]
TITLES = [
    "Marketing Manager", "VP of Sales", "Chief Technology Officer", "Account Executive",
    "Data Analyst", "Head of Growth", "Product Manager", "Operations Director",
    "Software Engineer", "Customer Success Manager", "Procurement Lead", "CFO",
    "Demand Generation Specialist", "IT Administrator", "Founder & CEO", "Sales Development Rep",
]
# (city, state or None, postal code, country)
PLACES = [
    ("Austin", "TX", "78701", "United States"),
    ("Seattle", "WA", "98101", "United States"),
    ("Boston", "MA", "02110", "United States"),
    ("Chicago", "IL", "60601", "United States"),
    ("Toronto", "ON", "M5H 2N2", "Canada"),
    ("London", None, "EC1A 1BB", "United Kingdom"),
    ("Dublin", None, "D02 X285", "Ireland"),
    ("Paris", None, "75002", "France"),
    ("Lyon", None, "69002", "France"),
    ("Berlin", None, "10115", "Germany"),
    ("München", None, "80331", "Germany"),
    ("Amsterdam", None, "1012 JS", "Netherlands"),
    ("Oslo", None, "0150", "Norway"),
    ("Stockholm", None, "111 52", "Sweden"),
    ("Kraków", None, "31-001", "Poland"),
    ("Madrid", None, "28013", "Spain"),
    ("São Paulo", "SP", "01310-100", "Brazil"),
    ("Tokyo", None, "100-0005", "Japan"),
    ("Bengaluru", "KA", "560001", "India"),
    ("Sydney", "NSW", "2000", "Australia"),
    ("Lagos", None, "100001", "Nigeria"),
    ("Cape Town", None, "8001", "South Africa"),
]
PLANS = ["free", "starter", "pro", "enterprise"]
ORG_IDS = ["acme-1", "acme-2", "globex-7", "initech-3", "umbrella-9", "stark-4"]
# fmt: on


def ascii_slug(text: str) -> str:
    """Lower-case ASCII for email local parts: accents dropped, spaces and apostrophes removed."""
    lowered = text.lower().replace("ß", "ss").translate(str.maketrans("øł", "ol"))
    lowered = unicodedata.normalize("NFKD", lowered)  # é -> e + combining accent, dropped below
    return "".join(ch for ch in lowered if ch.isascii() and ch.isalnum())


class Generator:
    def __init__(self) -> None:
        self.rng = random.Random(SEED)
        self.emails: set[str] = set()
        self.counter = 0

    # --- building blocks -------------------------------------------------------------------

    def hex_id(self, n: int = 12) -> str:
        return "".join(self.rng.choice("0123456789abcdef") for _ in range(n))

    def uuid_like(self) -> str:
        h = self.hex_id(32)
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"

    def timestamp(self, day_offset: int = 0) -> str:
        # May 2024, spread over the month; ISO 8601 UTC with milliseconds, as Segment sends.
        day = 1 + (self.rng.randrange(27) + day_offset) % 28
        return (
            f"2024-05-{day:02d}T{self.rng.randrange(24):02d}:{self.rng.randrange(60):02d}:"
            f"{self.rng.randrange(60):02d}.{self.rng.randrange(1000):03d}Z"
        )

    def phone(self) -> str:
        return f"+1 555-{self.rng.randrange(100, 1000):03d}-{self.rng.randrange(10000):04d}"

    def ip(self) -> str:
        # Documentation ranges (RFC 5737) only.
        block = self.rng.choice(["192.0.2", "198.51.100", "203.0.113"])
        return f"{block}.{self.rng.randrange(1, 255)}"

    def person(self) -> dict[str, Any]:
        """A new person with a unique, valid email."""
        while True:
            first = self.rng.choice(FIRST_NAMES)
            last = self.rng.choice(LAST_NAMES)
            company, domain, website = self.rng.choice(COMPANIES)
            f, la = ascii_slug(first), ascii_slug(last)
            pattern = self.rng.randrange(10)
            if pattern < 5:
                local = f"{f}.{la}"
            elif pattern < 7:
                local = f"{f[0]}{la}"
            elif pattern == 7:
                local = f"{f}_{la}{self.rng.randrange(1, 99)}"
            elif pattern == 8:
                local = f"{f}-{la}"
            else:
                local = f"{f}+newsletter"
            email = f"{local}@{domain}"
            if email not in self.emails:
                break
        self.emails.add(email)
        self.counter += 1
        city, state, postal, country = self.rng.choice(PLACES)
        return {
            "user_id": f"usr_{self.counter:04d}",
            "email": email,
            "first_name": first,
            "last_name": last,
            "company": company,
            "website": website,
            "title": self.rng.choice(TITLES),
            "city": city,
            "state": state,
            "postal_code": postal,
            "country": country,
            "phone": self.phone(),
            "org_id": self.rng.choice(ORG_IDS) if self.rng.random() < 0.3 else None,
        }

    def changed(self, p: dict[str, Any]) -> dict[str, Any]:
        """The same person (same email) with a new title/company/city: a later duplicate."""
        q = dict(p)
        q["title"] = self.rng.choice([t for t in TITLES if t != p["title"]])
        q["phone"] = self.phone()
        if self.rng.random() < 0.5:
            q["city"], q["state"], q["postal_code"], q["country"] = self.rng.choice(PLACES)
        if self.rng.random() < 0.5:
            q["org_id"] = self.rng.choice(ORG_IDS)
        return q

    # --- the three shapes --------------------------------------------------------------------

    def identify_event(self, p: dict[str, Any], *, day_offset: int = 0) -> dict[str, Any]:
        address: dict[str, Any] = {"city": p["city"], "country": p["country"]}
        if p["state"]:
            address["state"] = p["state"]
        if self.rng.random() < 0.5:
            address["postalCode"] = p["postal_code"]
        traits: dict[str, Any] = {
            "email": p["email"],
            "firstName": p["first_name"],
            "lastName": p["last_name"],
            "company": p["company"],
            "title": p["title"],
            "address": address,
        }
        if self.rng.random() < 0.5:
            traits["phone"] = p["phone"]
        if self.rng.random() < 0.3:
            traits["website"] = p["website"]
        if self.rng.random() < 0.4:
            # Not a Pardot field: the target reports it once as an unknown trait.
            traits["plan"] = self.rng.choice(PLANS)
        if p["org_id"]:
            traits["org_id"] = p["org_id"]
        ts = self.timestamp(day_offset)
        context: dict[str, Any] = {
            "ip": self.ip(),
            "library": {"name": "analytics.js", "version": "4.1.0"},
            "locale": self.rng.choice(["en-US", "en-GB", "fr-FR", "de-DE", "ja-JP", "pt-BR"]),
        }
        if self.rng.random() < 0.15:
            # Some clients send the email only in the cached traits of the context.
            context["traits"] = {"email": traits.pop("email")}
        event: dict[str, Any] = {
            "type": "identify",
            "messageId": f"ajs-next-{self.hex_id(24)}",
            "userId": p["user_id"],
            "anonymousId": self.uuid_like(),
            "traits": traits,
            "context": context,
            "integrations": {"All": True, "Pardot": True},
            "timestamp": ts,
            "receivedAt": ts,
            "sentAt": ts,
            "channel": "client",
            "version": 2,
        }
        return event

    def warehouse_row(self, p: dict[str, Any], *, day_offset: int = 0) -> dict[str, Any]:
        ts = self.timestamp(day_offset)
        row: dict[str, Any] = {
            "id": f"msg-{self.hex_id(16)}",
            "user_id": p["user_id"],
            "anonymous_id": self.uuid_like(),
            "email": p["email"],
            "first_name": p["first_name"],
            "last_name": p["last_name"],
            "company": p["company"],
            "title": p["title"],
            "city": p["city"],
            "country": p["country"],
        }
        if self.rng.random() < 0.5:
            row["phone"] = p["phone"]
        if p["org_id"]:
            row["org_id"] = p["org_id"]
        row.update(
            {
                "received_at": ts,
                "sent_at": ts,
                "timestamp": ts,
                "uuid_ts": ts,
                "context_ip": self.ip(),
                "context_library_name": "analytics-python",
                "context_library_version": "2.3.2",
            }
        )
        return row

    def pardot_row(self, p: dict[str, Any]) -> dict[str, Any]:
        row: dict[str, Any] = {
            "email": p["email"],
            "first_name": p["first_name"],
            "last_name": p["last_name"],
            "company": p["company"],
            "job_title": p["title"],
            "city": p["city"],
            "country": p["country"],
        }
        if p["state"]:
            row["state"] = p["state"]
        if self.rng.random() < 0.5:
            row["zip"] = p["postal_code"]
        if self.rng.random() < 0.4:
            row["website"] = p["website"]
        if self.rng.random() < 0.5:
            row["phone"] = p["phone"]
        if self.rng.random() < 0.5:
            row["user_id"] = p["user_id"]
        if p["org_id"]:
            row["org_id"] = p["org_id"]
        return row

    # --- files -------------------------------------------------------------------------------

    def build(self) -> dict[Path, list[dict[str, Any]]]:
        identify_people = [self.person() for _ in range(N_IDENTIFY - 6)]
        warehouse_people = [self.person() for _ in range(N_WAREHOUSE - 5)]
        pardot_people = [self.person() for _ in range(N_PARDOT_ROWS - 4)]

        identify = [self.identify_event(p) for p in identify_people]
        warehouse = [self.warehouse_row(p) for p in warehouse_people]
        pardot = [self.pardot_row(p) for p in pardot_people]

        # Duplicates: the same email again, with different values, in the same file (a later
        # event) or in another shape's file.
        for p in identify_people[3:7]:
            identify.append(self.identify_event(self.changed(p), day_offset=3))
        for p in warehouse_people[10:12]:
            identify.append(self.identify_event(self.changed(p), day_offset=5))
        for p in warehouse_people[20:24]:
            warehouse.append(self.warehouse_row(self.changed(p), day_offset=2))
        warehouse.append(self.warehouse_row(self.changed(pardot_people[5]), day_offset=1))
        for p in pardot_people[30:33]:
            pardot.append(self.pardot_row(self.changed(p)))
        pardot.append(self.pardot_row(self.changed(identify_people[40])))

        # Interleave the duplicates with the rest, reproducibly.
        for records in (identify, warehouse, pardot):
            self.rng.shuffle(records)

        self.known = {
            "identify": identify_people,
            "warehouse": warehouse_people,
            "pardot": pardot_people,
        }
        return {
            DATA_DIR / IDENTIFY_FILE: identify,
            DATA_DIR / WAREHOUSE_FILE: warehouse,
            DATA_DIR / PARDOT_ROWS_FILE: pardot,
            DATA_DIR / PROBLEM_FILE: self.problem_records(),
            SEED_FILE: self.seed_prospects(),
        }

    def problem_records(self) -> list[dict[str, Any]]:
        """One record per kind of problem; none of their emails appears in another record."""
        a, b, c, d, e, f, g = (self.person() for _ in range(7))
        long_email = "l" * (300 - len("@example.com")) + "@example.com"
        assert len(long_email) == 300
        no_email = self.identify_event(a)
        no_email["traits"].pop("email", None)
        no_email["context"].pop("traits", None)
        wrong_type = {
            "type": "track",
            "event": "Order Completed",
            "messageId": f"ajs-next-{self.hex_id(24)}",
            "userId": b["user_id"],
            "properties": {"order_id": "ORD-1042", "revenue": 129.5, "currency": "EUR"},
            "context": {"traits": {"email": b["email"]}, "ip": self.ip()},
            "timestamp": self.timestamp(),
        }
        traits_not_object = self.identify_event(c)
        traits_not_object["traits"] = f"email={c['email']}"
        object_first_name = self.pardot_row(d)
        object_first_name["first_name"] = {"a": 1}
        warehouse_no_email = self.warehouse_row(e)
        warehouse_no_email["email"] = None
        invalid_email = self.pardot_row(f)
        invalid_email["email"] = f["email"].replace("@", "(at)")
        missing_domain = self.warehouse_row(g)
        missing_domain["email"] = g["email"].split("@")[0] + "@"
        too_long = self.identify_event(self.person())
        too_long["traits"]["email"] = long_email
        too_long["context"].pop("traits", None)
        email_number = self.pardot_row(self.person())
        email_number["email"] = 4155550123
        return [
            no_email,  # identify event without any email (and no Pardot id)
            warehouse_no_email,  # warehouse row whose email is null
            invalid_email,  # "name(at)domain": not an email address
            missing_domain,  # "name@": no domain
            too_long,  # a 300-character email (Pardot allows 255)
            object_first_name,  # an object where a scalar is needed
            email_number,  # an email that is a number
            traits_not_object,  # identify event whose traits are text
            wrong_type,  # a track event: only identify events become prospects
            {},  # an empty record
        ]

    def seed_prospects(self) -> list[dict[str, Any]]:
        """Prospects already in Pardot: three share an email with the sample data (updates)."""
        known = self.known
        overlapping = [known["identify"][0], known["warehouse"][0], known["pardot"][0]]
        seeds: list[dict[str, Any]] = []
        for p in overlapping:
            seeds.append(
                {
                    "email": p["email"],
                    "first_name": p["first_name"],
                    "last_name": p["last_name"],
                    # Stale values that the sample records update.
                    "company": f"{p['company']} (old)",
                    "job_title": "Intern",
                    "city": "Springfield",
                    "country": "United States",
                }
            )
        for _ in range(3):
            p = self.person()
            seed = {
                "email": p["email"],
                "first_name": p["first_name"],
                "last_name": p["last_name"],
                "company": p["company"],
                "job_title": p["title"],
                "city": p["city"],
                "country": p["country"],
            }
            seeds.append(seed)
        seeds[0]["org_id"] = "acme-1"
        seeds[-1]["org_id"] = "globex-7"
        return seeds


def render(records: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if a file is missing or stale"
    )
    args = parser.parse_args(argv)

    files = Generator().build()
    stale: list[Path] = []
    for path, records in files.items():
        content = render(records)
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == content:
            continue
        stale.append(path)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8", newline="\n")
    # tap-jsonl reads every *.jsonl in demo/data: files the generator does not make are stale.
    extra = sorted(set(DATA_DIR.glob("*.jsonl")) - set(files))
    if not args.check:
        for path in extra:
            path.unlink()
    stale.extend(extra)

    total = sum(len(r) for p, r in files.items() if p.parent == DATA_DIR)
    for path in stale:
        verb = "stale" if args.check else ("removed" if path in extra else "wrote")
        print(f"{verb}: {path.relative_to(ROOT)}")
    if args.check:
        if stale:
            print("sample data is out of date: run python scripts/make_sample_data.py")
            return 1
        print(f"sample data up to date ({total} records)")
        return 0
    n_seeds = len(files[SEED_FILE])
    print(f"{total} sample records, {n_seeds} seed prospects; {len(stale)} file(s) changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
