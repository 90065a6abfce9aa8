"""API versions the emulator serves, and the release label of each."""

from __future__ import annotations

MIN_VERSION = 20
MAX_VERSION = 67
CURRENT = f"{MAX_VERSION}.0"

def label(major: int) -> str:
    """Release label of a version: v20.0 is Winter '11, three releases a year."""
    index = major - 20  # Winter '11, Spring '11, Summer '11, Winter '12, ...
    season = ("Winter", "Spring", "Summer")[index % 3]
    year = 11 + index // 3
    return f"{season} '{year:02d}"


def all_versions() -> list[dict[str, str]]:
    """The body of GET /services/data/."""
    return [
        {"version": f"{v}.0", "url": f"/services/data/v{v}.0", "label": label(v)}
        for v in range(MIN_VERSION, MAX_VERSION + 1)
    ]


def parse(version: str) -> float | None:
    """Parse a path segment like 'v62.0'; None when it is not a served version."""
    if not version.startswith("v"):
        return None
    try:
        value = float(version[1:])
    except ValueError:
        return None
    return value if MIN_VERSION <= value <= MAX_VERSION else None
