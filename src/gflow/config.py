"""Where an installation lives, and what its configuration file says.

One root for everything: ``$GFLOW_HOME`` when set (config, database, logs, socket all
under it), else the XDG places. A system daemon (root, ``--system``) uses ``/etc/gflow``,
``/var/lib/gflow`` and ``/run/gflow``. ``GFLOW_DAEMON__KEY=value`` overrides
``[daemon] key``; ``GFLOW_FAKE_GPUS`` overrides ``[daemon] fake_gpus``.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gflow.errors import InvalidInput

if TYPE_CHECKING:
    from gflow.placement import Placement
    from gflow.slurmspec import SlurmSettings

SOCKET_NAME = "gflowd.sock"
SYSTEM_CONFIG = Path("/etc/gflow/gflow.toml")
SYSTEM_DATA = Path("/var/lib/gflow")
SYSTEM_RUNTIME = Path("/run/gflow")


@dataclass(frozen=True, slots=True)
class Paths:
    config_file: Path
    data_dir: Path
    runtime_dir: Path

    @property
    def db(self) -> Path:
        return self.data_dir / "gflow.db"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def run_dir(self) -> Path:
        return self.data_dir / "run"

    @property
    def socket(self) -> Path:
        return self.runtime_dir / SOCKET_NAME

    @property
    def lock_file(self) -> Path:
        return self.runtime_dir / "gflowd.lock"

    @property
    def daemon_log(self) -> Path:
        return self.data_dir / "gflowd.log"

    @property
    def token_file(self) -> Path:
        return self.config_file.parent / "token"

    @property
    def fake_procs_file(self) -> Path:
        return self.data_dir / "fake_gpu_procs.json"

    def log_of(self, job_id: int) -> Path:
        return self.logs_dir / f"{job_id}.log"


def _xdg(var: str, fallback: str) -> Path:
    value = os.environ.get(var)
    return Path(value) if value else Path.home() / fallback


def resolve_paths(config: str | None = None, *, system: bool = False) -> Paths:
    """The installation's paths; ``config`` (``--config``) only moves the config file.

    ``system`` selects the machine-wide places unless ``$GFLOW_HOME`` says otherwise.
    """
    home = os.environ.get("GFLOW_HOME")
    if system and not home:
        paths = Paths(SYSTEM_CONFIG, SYSTEM_DATA, SYSTEM_RUNTIME)
    elif home:
        root = Path(home).expanduser().absolute()
        paths = Paths(root / "gflow.toml", root, root)
    else:
        runtime = os.environ.get("XDG_RUNTIME_DIR")
        paths = Paths(
            _xdg("XDG_CONFIG_HOME", ".config") / "gflow" / "gflow.toml",
            _xdg("XDG_DATA_HOME", ".local/share") / "gflow",
            Path(runtime) / "gflow" if runtime else Path(f"/tmp/gflow-{os.getuid()}"),
        )
    if config:
        paths = dataclasses.replace(paths, config_file=Path(config).expanduser().absolute())
    return paths


STRATEGIES = ("sequential", "random")


@dataclass(frozen=True, slots=True)
class DaemonConfig:
    """The ``[daemon]`` table. Every key may be overridden by ``GFLOW_DAEMON__<KEY>``."""

    host: str = "127.0.0.1"
    port: int | None = None
    tcp: bool = False
    gpus: str | None = None
    gpu_allocation_strategy: str = "sequential"
    executor: str = "auto"
    fake_gpus: str | None = None
    kill_grace: float = 10.0
    gpu_poll_interval: float = 10.0
    memory_mb: int | None = None
    max_running: int | None = None
    history_days: float | None = None
    admin_group: str | None = None
    system: bool = False
    auto_close: bool = False
    session_keep: float = 3600.0
    log_level: str = "info"
    log_max_mb: float = 10.0
    log_backups: int = 3
    max_connections_per_user: int = 256
    max_connections: int | None = None
    idle_timeout: float = 10.0
    web: bool = False
    web_port: int = 0

    def placement(self, projects: dict[str, str] | None = None) -> Placement:
        """Which executors run jobs, and which one a job gets (``[slurm] projects``)."""
        from gflow.placement import Placement

        return Placement.parse(self.executor, projects)

    @property
    def tcp_port(self) -> int:
        """``port``, else 59000 for the system daemon and :func:`user_port` for others."""
        if self.port is not None:
            return self.port
        return SYSTEM_PORT if self.system else user_port(os.getuid())


SYSTEM_PORT = 59000


def user_port(uid: int) -> int:
    """A per-user daemon's default TCP port: 59001 + uid mod 999 (uid 1000: 59002)."""
    return SYSTEM_PORT + 1 + uid % 999


BOUNDS: dict[str, tuple[float, float, str]] = {
    "port": (1, 65535, "a TCP port from 1 to 65535"),
    "log_max_mb": (0.001, 1e6, "a size in MB, more than 0"),
    "log_backups": (1, 1000, "a whole number from 1 to 1000"),
    "max_connections_per_user": (1, 1 << 20, "a whole number from 1"),
    "max_connections": (1, 1 << 24, "a whole number from 1"),
    "idle_timeout": (0.01, 86400, "seconds, more than 0 and at most a day"),
    "session_keep": (0, 10 * 366 * 86400, "seconds from 0 (close at once)"),
    "web_port": (0, 65535, "a port from 0 to 65535"),
}


def _coerce(name: str, kind: Any, value: Any, table: str = "daemon") -> Any:
    text = str(value).strip()
    empty = value is None or (isinstance(value, str) and text.lower() in ("", "none", "null"))
    if empty and "None" in str(kind):
        return None
    if "bool" in str(kind):
        if isinstance(value, bool):
            return value
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise InvalidInput(f"config {table}.{name}", value, "true or false")
    if "int" in str(kind):
        try:
            return int(text)
        except ValueError:
            raise InvalidInput(f"config {table}.{name}", value, "a whole number") from None
    if "float" in str(kind):
        try:
            return float(text)
        except ValueError:
            raise InvalidInput(f"config {table}.{name}", value, "a number") from None
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return text


def _read_toml(path: Path) -> dict[str, Any]:
    import tomllib

    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput("config file", str(path), f"valid TOML ({exc})") from None
    except OSError as exc:
        raise InvalidInput("config file", str(path), f"a readable file ({exc.strerror})") from None


def load_daemon_config(paths: Paths, overrides: dict[str, Any] | None = None) -> DaemonConfig:
    """Defaults, then the file's ``[daemon]`` table, then the environment, then ``overrides``."""
    raw: dict[str, Any] = dict(_read_toml(paths.config_file).get("daemon", {}))
    prefix = "GFLOW_DAEMON__"
    for key, value in os.environ.items():
        if key.startswith(prefix):
            raw[key[len(prefix) :].lower()] = value
    if os.environ.get("GFLOW_FAKE_GPUS"):
        raw["fake_gpus"] = os.environ["GFLOW_FAKE_GPUS"]
    raw.update({k: v for k, v in (overrides or {}).items() if v is not None})
    fields = {f.name: f.type for f in dataclasses.fields(DaemonConfig)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in fields:
            raise InvalidInput("config key", f"daemon.{key}", f"one of {', '.join(fields)}")
        values[key] = _coerce(key, fields[key], value)
    cfg = DaemonConfig(**values)
    if cfg.gpu_allocation_strategy not in STRATEGIES:
        raise InvalidInput(
            "gpu_allocation_strategy", cfg.gpu_allocation_strategy, " or ".join(STRATEGIES)
        )
    cfg.placement()  # a clear error now for an executor that is not one
    for key, (low, high, expected) in BOUNDS.items():
        value = getattr(cfg, key)
        if value is not None and not low <= value <= high:  # NaN fails too
            raise InvalidInput(f"config daemon.{key}", value, expected)
    return cfg


def load_slurm_settings(paths: Paths) -> SlurmSettings:
    """The ``[slurm]`` table (``GFLOW_SLURM__KEY`` overrides a key)."""
    from gflow.slurmspec import SlurmSettings

    raw: dict[str, Any] = dict(_read_toml(paths.config_file).get("slurm", {}))
    prefix = "GFLOW_SLURM__"
    raw.update({k[len(prefix) :].lower(): v for k, v in os.environ.items() if k.startswith(prefix)})
    fields = {f.name: f.type for f in dataclasses.fields(SlurmSettings)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in fields:
            raise InvalidInput("config key", f"slurm.{key}", f"one of {', '.join(fields)}")
        values[key] = _slurm_value(key, str(fields[key]), value)
    settings = SlurmSettings(**values)
    if settings.shared_dir is not None and not os.path.isabs(settings.shared_dir):
        raise InvalidInput("config slurm.shared_dir", settings.shared_dir, "an absolute path")
    return settings


def _slurm_value(key: str, kind: str, value: Any) -> Any:
    import shlex

    where = f"config slurm.{key}"
    if key == "sbatch_args":
        if isinstance(value, list):
            return tuple(str(v) for v in value)
        try:
            return tuple(shlex.split(str(value)))
        except ValueError as exc:
            raise InvalidInput(where, value, f"shell-quoted flags ({exc})") from None
    if key == "projects":
        return _projects(where, value)
    if key == "poll_interval":
        number = _coerce(key, "float", value, "slurm")
        if not 0.05 <= number <= 3600:
            raise InvalidInput(where, value, "seconds, 0.05 to 3600")
        return number
    return _coerce(key, kind, value, "slurm")


def _projects(where: str, value: Any) -> dict[str, str]:
    """``{ train = "slurm" }``, or as an environment variable ``train=slurm,quick=local``."""
    if isinstance(value, str):
        pairs = [p.partition("=") for p in value.split(",") if p.strip()]
        if any(not sep for _, sep, _ in pairs):
            raise InvalidInput(where, value, "project=local or project=slurm, comma-separated")
        value = {k.strip(): v.strip() for k, _, v in pairs}
    if not isinstance(value, dict):
        raise InvalidInput(where, str(value), 'a table such as { train = "slurm" }')
    return {str(k): str(v) for k, v in value.items()}


DEFAULT_CONFIG = """\
# gflow configuration. Every key can also be set with GFLOW_DAEMON__<KEY>=value.
[daemon]
# Which GPUs gflow may hand out: "all", "0,2" or "0-3". Set here, it replaces at every
# start what "gctl set-gpus" stored; left out, the stored choice stays (default: all).
# gpus = "all"
# How free GPUs are picked: "sequential" (lowest index first) or "random".
gpu_allocation_strategy = "sequential"
# How jobs run: "tmux" (attachable sessions), "process" (plain process groups), "auto",
# or "slurm" (on a Slurm cluster: see the [slurm] table below). Both a local one and
# slurm, e.g. "auto,slurm": the first is the default, a job may ask for the other
# (gbatch --executor local|slurm).
executor = "auto"
# Seconds between SIGINT, SIGTERM and SIGKILL when a job is cancelled or times out.
kill_grace = 10
# Seconds an ended job's tmux session is kept for gjob attach (0: closed at once, as
# with gbatch --auto-close); gjob close-sessions closes them earlier.
session_keep = 3600
# Seconds between checks for GPU processes gflow did not start.
gpu_poll_interval = 10
# Fake GPUs for machines without NVIDIA hardware, e.g. "4" or "4x24G".
# fake_gpus = "2x24G"
# Host memory (MB) gflow may hand out to jobs with --memory; default: all of it.
# memory_mb = 65536
# Listen on loopback TCP as well as the Unix socket. Clients use it only when asked
# (GFLOW_TCP=1) and sign each request with the token file made next to this one.
tcp = false
host = "127.0.0.1"
# Default: 59000 for the system daemon, 59001 + (uid mod 999) for a per-user one.
# port = 59000
# Remove finished jobs older than this many days from the history (default: keep all).
# history_days = 90
# The daemon log is rotated at this size (MB), keeping this many old files.
log_max_mb = 10
log_backups = 3
# Connections one user may hold open at once (a gjob wait holds one), and in all
# (default: about what the limit of open files allows; root may always connect).
max_connections_per_user = 256
# max_connections = 10000
# Seconds a connection may take to send its request, or stay idle between requests.
# Requests being answered (gjob wait, long listings) are never cut short.
idle_timeout = 10
# The web dashboard on 127.0.0.1 ("gflow web" prints your personal address). web_port 0
# picks a free port the first time and keeps it.
web = false
web_port = 0

# With slurm among the executors: where and how jobs are submitted to the cluster.
[slurm]
# partition = "gpu"
# account = "mylab"
# qos = "normal"
# Extra sbatch flags for every job, as one shell-quoted string.
# sbatch_args = "--constraint=a100"
# Seconds between two looks at the cluster (one squeue for all active jobs).
poll_interval = 2
# A directory every node sees at the same path, for run files and logs
# (default: the data directory, which must then be shared).
# shared_dir = "/shared/gflow"
# false: gflow keeps a job until what it waits for is decided and submits it then
# (only jobs that can start wait in Slurm, for sites that cap queued jobs per user).
native_dependencies = true
# With both executors: where a project's jobs go unless they ask (--executor).
# projects = { train = "slurm", quick = "local" }

# Mail and webhooks when jobs change state, and the Prometheus metrics: see the page
# "Notifications and metrics". Secret files must be readable by gflowd's user only.
# [mail]
# host = "smtp.lab.example.org"
# security = "starttls"                        # none, starttls or tls
# credentials_file = "/etc/gflow/smtp.secret"  # user name, then password (chmod 600)
# from = "gflow@gpu1.lab.example.org"
# domain = "lab.example.org"                   # default address: user@domain
# [notifications]
# retry_for = 86400                            # seconds a delivery is tried
# [[notifications.webhooks]]
# url = "https://hooks.slack.com/services/T000/B000/XXXX"
# events = ["job_failed", "job_timeout"]
# secret_file = "/etc/gflow/hook.secret"       # signs each body (HMAC-SHA256)
# [metrics]
# bearer_token_file = "/etc/gflow/metrics.token"  # for a scraper of loopback TCP
"""
