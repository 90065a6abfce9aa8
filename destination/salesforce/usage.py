"""API usage as Salesforce reports it on every response (`Sforce-Limit-Info: api-usage=N/M`)."""

from __future__ import annotations

import re
from dataclasses import dataclass

_USAGE = re.compile(r"api-usage=(\d+)/(\d+)")


@dataclass
class ApiUsage:
    """The latest used / max daily API calls seen, and how many calls this client made."""

    used: int | None = None
    max: int | None = None
    calls: int = 0

    @property
    def fraction(self) -> float | None:
        """Used share of the daily allocation (0..1+), when known."""
        if self.used is None or not self.max:
            return None
        return self.used / self.max

    def observe(self, header: str | None) -> None:
        """Update from a Sforce-Limit-Info header value."""
        if not header:
            return
        match = _USAGE.search(header)
        if match:
            self.used, self.max = int(match.group(1)), int(match.group(2))

