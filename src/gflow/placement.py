"""Where jobs run: on this machine, on a Slurm cluster, or either, chosen per job or project.

The configuration's ``executor`` names one executor, or a local one and ``slurm``
separated by a comma: ``"slurm"``, ``"tmux"``, ``"auto,slurm"``, ``"slurm,process"``.
With both, the first is where a job runs unless it asks (``--executor local|slurm``) or
its project has a rule (``[slurm] projects = { train = "slurm" }``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from gflow.errors import InvalidInput, Refused

LOCAL = "local"
SLURM = "slurm"
SITES = (LOCAL, SLURM)
LOCAL_EXECUTORS = ("auto", "tmux", "process")
_EXPECTED = (
    "one of auto, tmux, process, slurm, or a local one and slurm separated by a comma "
    '(the first is the default): "auto,slurm"'
)


@dataclass(frozen=True, slots=True)
class Placement:
    """The executors this daemon has, and which one a job gets."""

    default: str = LOCAL
    local: str | None = "auto"
    """The local executor (``auto``, ``tmux``, ``process``); None: jobs never run here."""
    slurm: bool = False
    projects: Mapping[str, str] = field(default_factory=dict)
    """A project's jobs go here unless they ask otherwise."""

    @classmethod
    def parse(cls, executor: str, projects: Mapping[str, str] | None = None) -> Placement:
        """From the configuration's ``executor`` and ``[slurm] projects``."""
        names = [n.strip().lower() for n in executor.split(",") if n.strip()]
        local = [n for n in names if n in LOCAL_EXECUTORS]
        unknown = [n for n in names if n not in LOCAL_EXECUTORS and n != SLURM]
        if not names or unknown or len(local) > 1 or len(set(names)) != len(names):
            raise InvalidInput("config daemon.executor", executor, _EXPECTED)
        placement = cls(
            default=SLURM if names[0] == SLURM else LOCAL,
            local=local[0] if local else None,
            slurm=SLURM in names,
        )
        rules: dict[str, str] = {}
        for project, site in (projects or {}).items():
            where = f"config slurm.projects.{project}"
            if not isinstance(site, str) or site.strip().lower() not in SITES:
                raise InvalidInput(where, str(site), "local or slurm")
            site = site.strip().lower()
            if not placement.allows(site):
                raise InvalidInput(where, site, f"an executor of executor = {executor!r}")
            rules[project] = site
        return cls(placement.default, placement.local, placement.slurm, rules)

    @property
    def mixed(self) -> bool:
        """Both: a job may run here or on the cluster."""
        return self.slurm and self.local is not None

    def allows(self, site: str) -> bool:
        return self.slurm if site == SLURM else self.local is not None

    def site_for(self, run_on: str | None, project: str | None) -> str:
        """Where a job runs: where it asked, else its project's rule, else the default."""
        if run_on is not None:
            return run_on
        if project is not None and project in self.projects:
            return self.projects[project]
        return self.default

    def check(self, run_on: str | None, project: str | None) -> str:
        """The site of a new or changed job, refused if this daemon does not have it."""
        site = self.site_for(run_on, project)
        if not self.allows(site):
            have = "on a Slurm cluster" if site == LOCAL else "on this machine"
            raise Refused(
                f"--executor {site}: this gflowd runs jobs only {have} (its configuration's "
                f"executor would need {'a local executor' if site == LOCAL else 'slurm'} too)"
            )
        return site

    def describe(self, local_name: str) -> str:
        """``tmux``, ``slurm`` or ``tmux,slurm`` (the default first)."""
        names = ([local_name] if self.local is not None else []) + ([SLURM] if self.slurm else [])
        return ",".join(sorted(names, key=lambda n: (n == SLURM) != (self.default == SLURM)))
