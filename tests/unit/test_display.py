"""What the CLIs print of other users' data: safe for a terminal, and any depth of chain."""

from __future__ import annotations

from typing import Any

from gflow.cli.common import safe, table
from gflow.cli.gqueue import TREE_DEPTH, _tree_rows


def test_control_characters_are_shown_escaped() -> None:
    assert safe("plain name, with spaces") == "plain name, with spaces"
    assert safe("\x1b[2Jgone\nnext\x00\u202eevil\ud800") == (
        "\\x1b[2Jgone\\nnext\\x00\\u202eevil\\ud800"
    )
    shown = table(["NAME"], [["\x1b]0;title\x07"]])
    assert "\x1b" not in shown and "\x07" not in shown and "\\x1b]0;title\\x07" in shown


def _chain(length: int) -> list[dict[str, Any]]:
    return [
        {"id": i, "name": f"j{i}", "parents": [i - 1] if i > 1 else []}
        for i in range(1, length + 1)
    ]


def test_a_tree_of_any_depth_is_drawn_at_a_bounded_width() -> None:
    rows = _tree_rows(_chain(5000), ["JOBID", "NAME"], 0.0)
    assert [r[1] for r in rows] == [f"j{i}" for i in range(1, 5001)]
    assert rows[1][0] == "└─2" and rows[2][0] == "  └─3"
    assert max(len(r[0]) for r in rows) <= 2 * TREE_DEPTH + 8
    assert rows[-1][0].startswith("…") and rows[-1][0].endswith("└─5000")


def test_a_tree_keeps_its_branches() -> None:
    jobs = [
        {"id": 1, "name": "a", "parents": []},
        {"id": 2, "name": "b", "parents": [1]},
        {"id": 3, "name": "c", "parents": [1]},
        {"id": 4, "name": "d", "parents": [2, 3]},
        {"id": 5, "name": "e", "parents": []},
    ]
    rows = _tree_rows(jobs, ["JOBID", "NAME"], 0.0)
    assert rows == [
        ["1", "a"],
        ["├─2", "b"],
        ["│ └─4", "d (also after 3)"],
        ["└─3", "c"],
        ["5", "e"],
    ]
