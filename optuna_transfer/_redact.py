"""Keep credentials in storage URLs out of logs, tables and study attributes."""

from __future__ import annotations

import re
from typing import Any


# scheme://user:password@host -> scheme://user:***@host. The password may hold any character
# but '@' only when percent-encoded, so the last '@' before the host ends it.
_PASSWORD_RE = re.compile(
    r"^(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@]*:)(?P<pw>.*)(?P<tail>@[^@]*)$"
)


_QUERY_PASSWORD_RE = re.compile(r"(?i)([?&](?:password|sslpassword)=)[^&#]*")


def redact_url(url: Any) -> str:
    """Return ``url`` as text with any password replaced by ``***``.

    Works on plain strings and on Optuna storage objects (whose ``str`` may embed the URL), so
    callers can pass whatever the user gave them.

    Example:

        .. testcode::

            from optuna_transfer import redact_url

            assert redact_url("postgresql://bob:s3cret@db/hpo") == "postgresql://bob:***@db/hpo"
    """
    text = url if isinstance(url, str) else _storage_description(url)
    # libpq and SQLAlchemy also take the password as a query parameter.
    text = _QUERY_PASSWORD_RE.sub(r"\1***", text)
    match = _PASSWORD_RE.match(text)
    if match is None:
        return text
    return f"{match.group('head')}***{match.group('tail')}"


def _storage_description(storage: Any) -> str:
    # RDBStorage keeps the URL it was built from; describe other storages by class only so that
    # nothing credential-bearing in their repr can leak.
    url = getattr(storage, "url", None)
    if isinstance(url, str):
        return url
    return type(storage).__name__
