"""The files job options name, read by the client as its user (:data:`READERS`).

The daemon never opens a path a user gives: the client reads the file (``--param-file``:
sweep rows) and sends what it holds (``param_rows``), which the daemon checks like any
other value.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from typing import Any

from gflow import limits
from gflow.errors import InvalidInput
from gflow.parse import param_rows


def read_param_file(path: str) -> list[dict[str, str]]:
    """Sweep combinations from a CSV file: a header row of keys, then one row per job."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle, skipinitialspace=True)
            return param_rows(path, ((reader.line_num, row) for row in reader))
    except (OSError, ValueError, csv.Error) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InvalidInput(
            "param file", limits.brief(path), f"a readable UTF-8 CSV file ({reason})"
        ) from exc


READERS: dict[str, Callable[[str], Any]] = {"param_file": read_param_file}
"""How the client reads the file of each local option (:attr:`gflow.options.Option.local`),
by keyword."""
