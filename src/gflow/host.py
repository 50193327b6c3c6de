"""What request handlers may use of the running daemon: three small interfaces.

The HTTP API (:mod:`gflow.api`), the runtime controls (:mod:`gflow.admin`), the listings
(:mod:`gflow.listing`) and the dashboard (:mod:`gflow.web`) are handed one of these, not
the runtime: they read the engine's state, change it only through :mod:`gflow.commands`
(or the quota and reservation handlers), and ask the runtime for the few services named
here. :class:`gflow.daemon.Runtime` is all three; nothing above it imports it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from gflow.config import DaemonConfig, Paths
    from gflow.delivery import Deliveries
    from gflow.engine import Engine
    from gflow.executors import Executor
    from gflow.gpuwatch import GpuWatch
    from gflow.listener import Listener
    from gflow.notifyconfig import Notifications
    from gflow.slurmrun import SlurmRunner

T = TypeVar("T")


class View(Protocol):
    """Enough to describe jobs: the engine's state and where their files are."""

    @property
    def engine(self) -> Engine: ...

    @property
    def paths(self) -> Paths: ...

    def tmux_socket(self, uid: int) -> str | None:
        """The tmux socket ``uid``'s jobs run on (None: they do not run under tmux)."""
        ...


class Host(View, Protocol):
    """What a request needs besides: whom the daemon serves, and acting on a change."""

    @property
    def config(self) -> DaemonConfig: ...

    @property
    def system(self) -> bool: ...

    @property
    def uid(self) -> int:
        """The daemon's own user."""
        ...

    @property
    def started(self) -> float: ...

    def drain(self) -> None:
        """Carry out what the engine asked for (launches, signals, waking waiters)."""
        ...

    async def wait_for(
        self, ids: list[int], timeout: float, *, first: bool = False, submitter: int | None = None
    ) -> None:
        """Return when these jobs have ended (``first``: any one of them, or, given a
        ``submitter``, that user's next submission), or after ``timeout`` seconds."""
        ...

    def submitted(self, uid: int) -> None:
        """``uid`` submitted jobs: answer the waits for that user's next submission."""
        ...

    def stop(self) -> None: ...


class Admin(Host, Protocol):
    """What the runtime controls need besides: the GPUs, the executor, the connections,
    the notifications."""

    @property
    def gpus(self) -> GpuWatch: ...

    @property
    def executor(self) -> Executor: ...

    @property
    def listener(self) -> Listener: ...

    @property
    def slurm(self) -> SlurmRunner | None:
        """The Slurm executor's follower (None: jobs run on this machine)."""
        ...

    @property
    def tcp(self) -> str | None:
        """Where loopback TCP listens, or why it does not (None: not asked for)."""
        ...

    @property
    def notify_conf(self) -> Notifications: ...

    @property
    def deliveries(self) -> Deliveries:
        """The outbox of notifications, sending in the background."""
        ...

    def reload(self) -> list[str]:
        """Re-read the configuration; the changed settings only a restart applies."""
        ...

    async def in_thread(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a worker thread (it may block on a subprocess)."""
        ...
