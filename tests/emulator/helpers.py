"""A deliberately small HTTP client for the emulator tests: real requests, no target code."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import requests

from pardot_emulator import DEFAULT_CREDENTIALS, PardotEmulator

CREDS = DEFAULT_CREDENTIALS
BU = CREDS["business_unit_id"]
TIMEOUT = 10


def token_request(emu: PardotEmulator, **form: str) -> requests.Response:
    return requests.post(f"{emu.url}/services/oauth2/token", data=form, timeout=TIMEOUT)


def refresh_form(**overrides: str) -> dict[str, str]:
    form = {
        "grant_type": "refresh_token",
        "refresh_token": CREDS["refresh_token"],
        "client_id": CREDS["client_id"],
        "client_secret": CREDS["client_secret"],
    }
    form.update(overrides)
    return form


def get_token(emu: PardotEmulator) -> str:
    response = token_request(emu, **refresh_form())
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


class Api:
    """Sends v3/v4 and v5 requests with a valid token and business-unit header."""

    def __init__(self, emu: PardotEmulator, token: str | None = None) -> None:
        self.emu = emu
        self.token = token or get_token(emu)
        self.business_unit = BU

    def headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.token}",
            "Pardot-Business-Unit-Id": self.business_unit,
        }

    def v34(
        self,
        version: int,
        op: str,
        *path: Any,
        method: str = "POST",
        obj: str = "prospect",
        fmt: str | None = "json",
        **params: Any,
    ) -> requests.Response:
        url = f"{self.emu.url}/api/{obj}/version/{version}/do/{op}"
        url += "".join("/" + quote(str(part), safe="") for part in path)
        if fmt is not None:
            params.setdefault("format", fmt)
        if method == "GET":
            return requests.get(url, params=params, headers=self.headers(), timeout=TIMEOUT)
        return requests.post(url, data=params, headers=self.headers(), timeout=TIMEOUT)

    def v5(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
    ) -> requests.Response:
        return requests.request(
            method,
            f"{self.emu.url}/api/v5/objects/{path}",
            params=params,
            json=body,
            headers=self.headers(),
            timeout=TIMEOUT,
        )


def err_code(response: requests.Response) -> int:
    """The Pardot error code of a v3/v4 (err_code) or v5 (code) JSON error."""
    data = response.json()
    if "@attributes" in data:
        return data["@attributes"]["err_code"]
    return data["code"]
