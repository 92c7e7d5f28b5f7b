r"""Where to go on after a step that a request names: a path on this site, never another site.

A target taken from the request (``next`` after signing in, the page to come back to after a
fresh sign-in) is read as a browser will read the ``Location`` it ends up in. Browsers follow
the WHATWG URL standard: they drop leading and trailing C0 controls and spaces, remove every tab
and newline anywhere, and take a backslash for a slash in http(s) URLs, so ``/\t/evil.example``
and ``/\evil.example`` both go to ``//evil.example``, another host. The target is normalised the
same way first and then parsed with :func:`urllib.parse.urlsplit`: only a path on this host (no
scheme, no host, one leading slash) is accepted, and the normalised form is what is sent.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from flask import url_for

#: C0 controls and space, which browsers strip from both ends of a URL.
_EDGES = "".join(chr(c) for c in range(0x21))
#: What browsers remove anywhere in a URL.
_TAB_OR_NEWLINE = re.compile("[\t\n\r]")
#: Anything else below space, and DEL: never part of a path we send.
_CONTROL = re.compile("[\x00-\x1f\x7f]")


def local_path(value: str | None) -> str | None:
    """Return ``value`` as the path on this site a browser would go to, or None if it leaves the site."""
    if not value:
        return None
    text = _TAB_OR_NEWLINE.sub("", value.strip(_EDGES)).replace("\\", "/")
    if _CONTROL.search(text) or not text.startswith("/") or text.startswith("//"):
        return None
    parts = urlsplit(text)
    if parts.scheme or parts.netloc or not parts.path.startswith("/"):
        return None
    return text


def safe_next(value: str | None, default: str = "auth.account") -> str:
    """Return a local path to go on to, else the page of endpoint ``default``."""
    return local_path(value) or url_for(default)
