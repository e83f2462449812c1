"""`target-pardot --config c.json --test`: check the connection and the settings, write nothing.

Each check is one line, `ok`, `FAIL` (with what to fix) or `-` (not checked, because an earlier
one failed), printed as it completes; the command exits 0 only when every check passed:

    credentials     Salesforce issues a token (the first call of every run)
    business unit   the custom field list answers (the fixed read every run makes first)
    api_version     one prospect query in the configured version: Pardot refuses v3 on a unit
                    that allows several prospects per email (88) and v4 on one that does not (89)
    lookup_field    it is one of the unit's custom fields

Pardot has no API that reports how much of the daily quota is used, so the check says so and
counts only its own calls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from target_pardot.api.codes import WRONG_VERSION_CODES
from target_pardot.errors import PardotAPIError, TargetPardotError
from target_pardot.fields import FieldCatalog
from target_pardot.run import PardotRun, lookup_field_problem
from target_pardot.run_report import DAILY_QUOTAS, TOKEN_ENDPOINT, percent
from target_pardot.settings import Settings


@dataclass(frozen=True)
class Outcome:
    name: str
    passed: bool | None  # None: not checked
    detail: str

    def line(self) -> str:
        mark = "-" if self.passed is None else ("ok" if self.passed else "FAIL")
        return f"  {mark:<5} {self.name}: {self.detail}"


class ConnectionCheck:
    def __init__(self, settings: Settings, echo: Callable[[str], None]) -> None:
        self._settings = settings
        self._echo = echo
        self._run = PardotRun(settings)
        self.outcomes: list[Outcome] = []

    def _report(self, name: str, passed: bool | None, detail: str) -> None:
        outcome = Outcome(name, passed, detail)
        self.outcomes.append(outcome)
        self._echo(outcome.line())

    def run(self) -> bool:
        settings = self._settings
        version = self._run.dialect.version
        self._echo(
            f"target-pardot --test: business unit {settings.business_unit_id} at "
            f"{settings.pardot_url}, API v{version}; nothing is written"
        )
        try:
            self._check_all(version)
        finally:
            self._run.close()
        failed = sum(1 for outcome in self.outcomes if outcome.passed is False)
        self._quota_line()
        if failed:
            self._echo(
                f"target-pardot --test: {failed} check{'s' if failed > 1 else ''} failed; fix "
                "what the FAIL line says and run --test again"
            )
        else:
            self._echo("target-pardot --test: every check passed")
        return not failed

    def _check_all(self, version: int) -> None:
        settings = self._settings
        version_name = f"api_version {version}"
        lookup_name = f"lookup_field {settings.lookup_field}" if settings.lookup_field else None
        try:
            self._run.client.authenticate()
        except TargetPardotError as error:
            self._report("credentials", False, str(error))
            self._not_checked(["business unit", version_name, lookup_name], "it needs a token")
            return
        self._report(
            "credentials",
            True,
            f"Salesforce issued a token (auth_flow {settings.auth_flow}, {settings.login_url})",
        )

        catalog: FieldCatalog | None = None
        try:
            catalog = self._run.dialect.load_catalog()
        except PardotAPIError as error:
            if error.code not in WRONG_VERSION_CODES:
                self._report("business unit", False, str(error))
                self._not_checked([version_name, lookup_name], "the business unit did not answer")
                return
            # Pardot knew the unit well enough to say which version it needs.
            self._report("business unit", True, "it answered, with the version error below")
            self._report(version_name, False, str(error))
            self._not_checked([lookup_name], "no custom field list in this API version")
            return
        except TargetPardotError as error:
            self._report("business unit", False, str(error))
            self._not_checked([version_name, lookup_name], "the business unit did not answer")
            return
        count = len(catalog.custom)
        names = ", ".join(sorted(catalog.custom))
        fields = f"{count} custom field{'' if count == 1 else 's'}" + (
            f": {names}" if names else ""
        )
        self._report("business unit", True, f"answered the custom field list ({fields})")

        try:
            self._report(version_name, True, self._run.dialect.check_api_version())
        except TargetPardotError as error:
            self._report(version_name, False, str(error))

        if lookup_name is None:
            self._report("lookup_field", True, "not set: records match by id, fid or email")
        else:
            problem = lookup_field_problem(settings, catalog)
            self._report(lookup_name, problem is None, problem or "a custom field of the unit")

    def _not_checked(self, names: list[str | None], because: str) -> None:
        for name in names:
            if name is not None:
                self._report(name, None, f"not checked: {because}")

    def _quota_line(self) -> None:
        calls = {
            name: n
            for name, n in self._run.client.stats.by_endpoint.items()
            if name != TOKEN_ENDPOINT
        }
        used = sum(calls.values())
        edition, limit = DAILY_QUOTAS[0]
        self._echo(
            "  info  daily API quota: Pardot has no API that reports the calls used today "
            "(Account Engagement's Usage and Limits page shows the account's usage), so it is "
            f"not checked; this check used {used} of them ({percent(used / limit)} of {edition}'s "
            f"{limit:,} a day)"
        )


def check_connection(settings: Settings, echo: Callable[[str], None]) -> bool:
    """Run every check, printing one line each; True when all passed."""
    return ConnectionCheck(settings, echo).run()
