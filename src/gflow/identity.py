"""Who is on the other end of the socket, and who a job runs as.

Identity comes from the kernel (``SO_PEERCRED`` on the Unix socket), never from what
the client says about itself: a client that sets ``USER=root`` is still itself.
"""

from __future__ import annotations

import grp
import os
import pwd
import socket
import struct

from gflow.launchspec import RunAs


def peer_credentials(sock: socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the process connected to a Unix socket."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", raw)
    return pid, uid, gid


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def uid_of(name: str) -> int | None:
    """The uid of a user name, or None if there is no such user (or the name is garbage)."""
    try:
        return pwd.getpwnam(name).pw_uid
    except (KeyError, ValueError):
        return None


def is_admin(uid: int, admin_group: str | None) -> bool:
    """Root always; members of ``admin_group`` when one is configured."""
    if uid == 0:
        return True
    if not admin_group:
        return False
    try:
        group = grp.getgrnam(admin_group)
        entry = pwd.getpwuid(uid)
    except KeyError:
        return False
    return entry.pw_name in group.gr_mem or entry.pw_gid == group.gr_gid


def run_as(uid: int) -> RunAs:
    """The identity (primary and supplementary groups, home) to start a job of ``uid`` with."""
    entry = pwd.getpwuid(uid)
    groups = tuple(os.getgrouplist(entry.pw_name, entry.pw_gid))
    return RunAs(uid, entry.pw_gid, groups, entry.pw_dir, entry.pw_name)
