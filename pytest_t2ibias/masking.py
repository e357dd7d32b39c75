"""Credentials never reach a log, an error, a report or the terminal: every user-given location (a model,
scorer, cache, card, suite or report path may be a URL with a password or a signed query) is masked here.

A module of its own, importing nothing of the package: :class:`~pytest_t2ibias.errors.T2IBiasError` masks
its message as it is made, and every other module imports that.
"""

from __future__ import annotations

import re

#: A URL in free text: a scheme, ``://``, then everything up to white space or a quote (error messages show
#: locations inside ``'...'``). The password may hold any other character, so nothing else ends it. One
#: slash is enough: ``Path("https://u:p@h/x")`` prints as ``https:/u:p@h/x``, and errors show such paths.
_URL = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*:/{1,3})(?P<rest>[^\s'\"<>`]*)")
#: What may follow a user-info's ``@``: a host name, an IP (v6 in brackets) and a port.
_HOST = re.compile(r"[A-Za-z0-9._~%!$&()*+,;=\[\]:\-]*")
#: A query (or fragment) parameter whose name says it holds a secret, matched against the name lower-cased,
#: with camelCase humps and ``-`` / ``.`` turned into ``_``: ``X-Amz-Signature``, ``X-Goog-Credential``,
#: ``client_secret``, ``private_token``, ``api-key``, ``apiKey``, ``sig`` (Azure SAS), ``auth``... A whole
#: ``_``-separated word is required (``key`` but not ``monkey``, ``sig`` but not ``design``).
SECRET_PARAMETER = re.compile(
    r"(?:^|_)(?:secret|token|key|password|passwd|pwd|signature|sig|credentials?|auth"
    r"|apikey|accesstoken|authtoken|sessiontoken|secretkey|accesskey|privatekey)(?:_|$)"
)
_MASK = "***"


def secret_parameter(name: str) -> bool:
    """Whether a URL parameter named ``name`` holds a secret (see :data:`SECRET_PARAMETER`).

    >>> [secret_parameter(n) for n in ("X-Amz-Signature", "apiKey", "sig", "rev", "monkey", "design")]
    [True, True, True, False, False, False]
    """
    from urllib.parse import unquote_plus

    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", unquote_plus(name).strip())
    return SECRET_PARAMETER.search(re.sub(r"[^a-z0-9]+", "_", words.lower())) is not None


def _mask_pairs(text: str) -> str:
    """A query string (or fragment) with the value of every secret-named parameter replaced by ``***``.

    Split by hand rather than with ``parse_qsl``/``urlencode``: those decode and re-encode every value,
    and the masked text must show the other parameters exactly as given.
    """
    pairs = re.split(r"([&;])", text)
    for i in range(0, len(pairs), 2):
        name, eq, _ = pairs[i].partition("=")
        if eq and secret_parameter(name):
            pairs[i] = f"{name}={_MASK}"
    return "".join(pairs)


def _userinfo_end(rest: str) -> int:
    """Where the user-info of ``rest`` (a URL after ``://``) ends: the index of its ``@``, or -1 if none.

    ``urlsplit`` ends the authority at the first ``/``, ``?`` or ``#``, so it reads
    ``s3://AKIA:wJal/K7MDENG@bucket/c`` as host ``AKIA``, path ``/K7MDENG@bucket/c`` and leaves the
    password in what it calls the path. Unencoded, those characters are common in cloud secret keys, so
    the authority is found here instead: the user-info runs to the LAST ``@`` that a host name follows.
    A ``user:`` prefix (a colon not followed by a port number) says that a password with such a character
    follows; without one (``https://host/a/user@example.com``) an ``@`` after the first ``/`` is in the path.
    """
    first = re.search(r"[/?#]", rest)
    head = rest if first is None else rest[: first.start()]
    if first is not None:
        _, colon, port = head.partition(":")
        if colon and not port.isdigit() and port and "@" not in head:
            # the password goes on past the / ? or #: the last @ that a host follows ends it
            for at in range(len(rest) - 1, first.start(), -1):
                if rest[at] != "@":
                    continue
                host = _HOST.match(rest, at + 1)
                end = host.end() if host else at + 1
                if end > at + 1 and (end == len(rest) or rest[end] in "/?#"):
                    return at
    return head.rfind("@")


def _mask_url(scheme: str, rest: str) -> str:
    """One URL (``scheme`` with its slashes, then the ``rest``) with its user info and secret parameters masked."""
    at = _userinfo_end(rest)
    if at >= 0:
        rest = f"{_MASK}@{rest[at + 1 :]}"
    # the query runs from the first ? to the first #, the fragment from there (urlsplit's rule); split by
    # hand so that a URL whose scheme lost a slash (a Path of it) comes back exactly as it was, masked
    rest, hash_, fragment = rest.partition("#")
    rest, mark, query = rest.partition("?")
    return f"{scheme}{rest}{mark}{_mask_pairs(query)}{hash_}{_mask_pairs(fragment)}"


def mask_credentials(text: str) -> str:
    """``text`` with the credentials of every URL in it replaced by ``***``: the user info
    (``scheme://user:secret@host``, the password may hold ``/``, ``?``, ``#`` or ``@``) and the value of
    every secret-named query or fragment parameter (``?X-Amz-Signature=...``, ``&token=...``, see
    :func:`secret_parameter`). Credentials never reach a log, an error, a report or the terminal.

    Example:
        >>> mask_credentials("https://user:secret@host/model?token=abc&rev=2")
        'https://***@host/model?token=***&rev=2'
        >>> mask_credentials("cannot open 's3://AKIA:wJal/K7MDENG@bucket/c': denied")
        "cannot open 's3://***@bucket/c': denied"
    """
    if ":/" not in text:
        return text
    return _URL.sub(lambda m: _mask_url(m.group("scheme"), m.group("rest")), text)
