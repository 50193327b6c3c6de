"""Personal dashboard tokens: one per Unix user, issued over the Unix socket.

The daemon keeps only a SHA-256 of each token (tokens are 256 random bits, so a plain
hash is enough), and beside it a per-user key with which it proves to that user's open
pages that it is really this daemon answering on the port (see ``/hello``). Both live
in the database's settings, so they survive restarts; ``gflow web --new-token``
replaces them, which revokes the old token at once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from gflow.store import Store

SETTING = "web_tokens"
MAX_TOKEN = 128


@dataclass(frozen=True, slots=True)
class Entry:
    uid: int
    digest: str
    key: bytes


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Tokens:
    def __init__(self, store: Store) -> None:
        self.store = store
        raw = store.setting(SETTING) or {}
        self.by_uid: dict[int, Entry] = {
            int(uid): Entry(int(uid), e["hash"], bytes.fromhex(e["key"])) for uid, e in raw.items()
        }
        self.by_digest = {e.digest: e for e in self.by_uid.values()}

    def identify(self, token: str | None) -> Entry | None:
        """The user a token belongs to, or None for a missing, malformed or revoked one."""
        if not token or len(token) > MAX_TOKEN or not token.isascii():
            return None
        return self.by_digest.get(digest(token))

    def issue(self, uid: int, current: str | None, renew: bool) -> tuple[str, str | None]:
        """The user's token: ``current`` if it is still theirs, else a new one.

        Returns the token and the digest it replaced (None when nothing was revoked).
        """
        entry = self.identify(current)
        if entry is not None and entry.uid == uid and not renew:
            assert current is not None
            return current, None
        token = secrets.token_urlsafe(32)
        old = self.by_uid.get(uid)
        new = Entry(uid, digest(token), secrets.token_bytes(32))
        table = {str(e.uid): {"hash": e.digest, "key": e.key.hex()} for e in self.by_uid.values()}
        table[str(uid)] = {"hash": new.digest, "key": new.key.hex()}
        with self.store.tx():
            self.store.set_setting(SETTING, table)
        if old is not None:
            self.by_digest.pop(old.digest, None)
        self.by_uid[uid] = new
        self.by_digest[new.digest] = new
        return token, old.digest if old else None

    def proof(self, uid: int, nonce: str) -> str | None:
        """HMAC of ``nonce`` with the user's key: a page checks it before reconnecting."""
        entry = self.by_uid.get(uid)
        if entry is None:
            return None
        return hmac.new(entry.key, nonce.encode(), hashlib.sha256).hexdigest()
