"""Keep credentials in storage URLs out of logs, tables and study attributes."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote
from urllib.parse import unquote_plus


# scheme://user: -- the user part as SQLAlchemy reads it (anything up to ':' or '/').
_USERINFO_HEAD_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://[^:/]*:")

# Query keys whose value is a secret, compared lower-cased after percent-decoding (SQLAlchemy
# decodes keys before handing them to the driver, so "pass%77ord" is a password too).
_CREDENTIAL_KEYS = frozenset(
    {
        # libpq (psycopg2, psycopg, asyncpg read the same keys): the password, the passphrase
        # of the client key, and an OAuth client secret.
        "password",
        "sslpassword",
        "oauth_client_secret",
        # MySQL drivers: mysqlclient and PyMySQL take ``passwd`` as well as ``password``;
        # PyMySQL has the passphrase of the client key; mysql-connector takes up to three
        # passwords for multi-factor authentication.
        "passwd",
        "ssl_key_password",
        "password1",
        "password2",
        "password3",
        # ODBC (SQLAlchemy's mssql+pyodbc passes unknown keys into the connection string, and
        # ``odbc_connect`` is a whole connection string that may hold PWD=).
        "pwd",
        "odbc_connect",
    }
)

_MASK = "***"


def redact_url(url: Any) -> str:
    """Return ``url`` as text with any password replaced by ``***``.

    Works on plain strings and on Optuna storage objects (whose ``str`` may embed the URL), so
    callers can pass whatever the user gave them. The password in ``user:password@`` is hidden,
    and so is the value of every query parameter that carries a credential (``password``,
    ``passwd``, ``pwd``, ``sslpassword`` and the like); other parameters are shown as given.

    Example:

        .. testcode::

            from optuna_transfer import redact_url

            assert redact_url("postgresql://bob:s3cret@db/hpo") == "postgresql://bob:***@db/hpo"
    """
    text = url if isinstance(url, str) else _storage_description(url)
    head, password, rest = _split_password(text)
    if password is not None:
        text = head + _MASK + rest
        query_at = len(head) + len(_MASK) + _query_start(rest)
    else:
        query_at = _query_start(text)
    if query_at >= len(text):
        return text
    return text[: query_at + 1] + _redact_query(text[query_at + 1 :])


def redact_text(text: str, url: Any) -> str:
    """``text`` (an error message, say) with every secret of ``url`` in it replaced by ``***``.

    Drivers sometimes echo the URL or the password they were given; this hides both, in the
    forms they may take (as written, or percent-decoded).
    """
    raw = url if isinstance(url, str) else _storage_description(url)
    if raw:
        text = text.replace(raw, redact_url(raw))
    for secret in sorted(_secrets(raw), key=len, reverse=True):
        text = text.replace(secret, _MASK)
    return text


def _split_password(text: str) -> tuple[str, str | None, str]:
    """``(head, password, rest)`` with ``head + password + rest == text``; password None if
    there is none.

    SQLAlchemy ends the password at its first '@'. A user who left an '@' unencoded in the
    password means a later one, so the password is taken to run to the last '@' before the
    query: never less than SQLAlchemy's reading, and never into the query, where '@' is
    common (key files, user names).
    """
    match = _USERINFO_HEAD_RE.match(text)
    if match is None:
        return text, None, ""
    start = match.end()
    first_at = text.find("@", start)
    if first_at < 0:
        return text, None, ""
    query_at = first_at + _query_start(text[first_at:])
    end = text.rfind("@", first_at, query_at)
    return text[:start], text[start:end], text[end:]


def _query_start(text: str) -> int:
    # Host, port and database never hold a '?' (SQLAlchemy's grammar), so the first one starts
    # the query. len(text) when there is none.
    at = text.find("?")
    return len(text) if at < 0 else at


def _redact_query(query: str) -> str:
    # SQLAlchemy splits the query on '&' only and keeps the rest ('#' included) in the value.
    parts = []
    for part in query.split("&"):
        key, sep, _ = part.partition("=")
        if sep and _is_credential_key(key):
            part = f"{key}={_MASK}"
        parts.append(part)
    return "&".join(parts)


def _is_credential_key(key: str) -> bool:
    return unquote_plus(key).strip().lower() in _CREDENTIAL_KEYS


def _secrets(text: str) -> set[str]:
    _, password, rest = _split_password(text)
    found = [] if password is None else [password]
    after_host = text if password is None else rest
    query = after_host[_query_start(after_host) + 1 :]
    for part in query.split("&") if query else []:
        key, sep, value = part.partition("=")
        if sep and _is_credential_key(key):
            found.append(value)
    out: set[str] = set()
    for secret in found:
        out.update({secret, unquote(secret), unquote_plus(secret)})
    out.discard("")
    return out


def _storage_description(storage: Any) -> str:
    # RDBStorage keeps the URL it was built from; describe other storages by class only so that
    # nothing credential-bearing in their repr can leak.
    url = getattr(storage, "url", None)
    if isinstance(url, str):
        return url
    return type(storage).__name__
