"""One dialect per Pardot API version (see base.py for what each provides)."""

from __future__ import annotations

from target_pardot.dialects.base import Dialect, Found, RunTools
from target_pardot.dialects.v3 import V3Dialect
from target_pardot.dialects.v4 import V4Dialect
from target_pardot.dialects.v5 import V5Dialect

DIALECTS: dict[int, type[Dialect]] = {3: V3Dialect, 4: V4Dialect, 5: V5Dialect}

__all__ = ["DIALECTS", "Dialect", "Found", "RunTools"]
