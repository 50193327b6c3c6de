"""Mail addresses and webhook URLs, as a job's options and the configuration name them.

Pure: the option table (:mod:`gflow.options`) checks ``--mail-user`` and ``--notify-url``
with these, and the configuration (:mod:`gflow.notifyconfig`) its addresses and webhooks.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

MAX_URL = 2048
_ADDRESS = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9.-]{1,253}$")


def is_http_url(text: str) -> bool:
    """An ``http://`` or ``https://`` URL with a host, on one line, of bounded length."""
    if len(text) > MAX_URL or not text.isprintable() or " " in text:
        return False
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and port != 0


def is_address(text: str) -> bool:
    """A plain mail address, ``local@domain``: no display name, no spaces, one line."""
    return bool(_ADDRESS.match(text)) and not text.endswith(".") and ".." not in text
