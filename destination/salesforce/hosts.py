"""Host safety: every URL the client calls is https and on a Salesforce domain, or explicitly allowed."""

from __future__ import annotations

from urllib.parse import urlsplit

from .errors import HostNotAllowed

SALESFORCE_DOMAINS = ("salesforce.com", "force.com", "my.salesforce.com", "sandbox.my.salesforce.com",
                      "salesforce.mil", "cloudforce.com")


def check_url(url: str, allowed_hosts: tuple[str, ...] = ()) -> str:
    """Return `url` unchanged when it is safe to send credentials to; raise HostNotAllowed otherwise."""
    parts = urlsplit(url)
    if parts.scheme != "https":
        raise HostNotAllowed(f"refusing non-https URL {url!r}: Salesforce is only reached over https")
    host = (parts.hostname or "").lower().rstrip(".")
    if host in {h.lower() for h in allowed_hosts}:
        return url
    if any(host == d or host.endswith("." + d) for d in SALESFORCE_DOMAINS):
        return url
    raise HostNotAllowed(f"refusing host {host!r}: not a Salesforce domain and not in allowed_hosts")
