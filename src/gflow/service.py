"""systemd units that keep gflowd running: per user, or machine-wide (system daemon)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

USER_UNIT = Path("~/.config/systemd/user/gflowd.service")
SYSTEM_UNIT = Path("/etc/systemd/system/gflowd.service")


def unit_path(system: bool) -> Path:
    return SYSTEM_UNIT if system else USER_UNIT.expanduser()


def unit_text(system: bool) -> str:
    command = f"{sys.executable} -m gflow.cli.gflowd up --foreground"
    lines = [
        "[Unit]",
        "Description=gflow job scheduler" + (" (all users)" if system else ""),
        "After=network.target",
        "",
        "[Service]",
        "Type=simple",
        f"ExecStart={command}" + (" --system" if system else ""),
        "ExecStop=" + f"{sys.executable} -m gflow.cli.gflowd down",
        "KillMode=process",
        "Restart=on-failure",
    ]
    for key in ("GFLOW_HOME", "GFLOW_FAKE_GPUS"):
        if os.environ.get(key):
            lines.append(f"Environment={key}={os.environ[key]}")
    lines += ["", "[Install]", "WantedBy=" + ("multi-user.target" if system else "default.target")]
    return "\n".join(lines) + "\n"


def install(system: bool) -> str:
    """Write the unit; return what the user should run next."""
    path = unit_path(system)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(unit_text(system))
    ctl = "systemctl" if system else "systemctl --user"
    return (
        f"Wrote {path}\nNext: {ctl} daemon-reload && {ctl} enable --now gflowd\n"
        "(KillMode=process: stopping the service leaves running jobs alone.)"
    )


def uninstall(system: bool) -> str:
    path = unit_path(system)
    if not path.exists():
        return f"No unit at {path}."
    path.unlink()
    ctl = "systemctl" if system else "systemctl --user"
    return f"Removed {path}\nNext: {ctl} daemon-reload"
