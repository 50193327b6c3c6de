"""A layered drawing of a dependency graph (pure: ids and edges in, coordinates out).

Jobs are put in columns by the longest chain of parents before them (a job is always
right of everything it waits for), then ordered inside each column by the average
position of their neighbours, sweeping left and right a few times, which removes most
edge crossings. It is linear in the size of the graph per sweep, so a pipeline of
thousands of jobs is laid out in milliseconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

NODE_W = 180
NODE_H = 30
GAP_X = 70
GAP_Y = 12
MARGIN = 10
SWEEPS = 4


@dataclass(frozen=True, slots=True)
class Edge:
    parent: int
    child: int
    label: str


@dataclass(frozen=True, slots=True)
class Placed:
    x: int
    y: int
    column: int


@dataclass(frozen=True, slots=True)
class Layout:
    nodes: dict[int, Placed]
    edges: tuple[Edge, ...]
    width: int
    height: int

    def path(self, edge: Edge) -> str:
        """An SVG path from the parent's right side to the child's left side."""
        a, b = self.nodes[edge.parent], self.nodes[edge.child]
        x1, y1 = a.x + NODE_W, a.y + NODE_H // 2
        x2, y2 = b.x, b.y + NODE_H // 2
        bend = max((x2 - x1) // 2, 20)
        return f"M{x1},{y1} C{x1 + bend},{y1} {x2 - bend},{y2} {x2},{y2}"

    def middle(self, edge: Edge) -> tuple[int, int]:
        a, b = self.nodes[edge.parent], self.nodes[edge.child]
        return (a.x + NODE_W + b.x) // 2, (a.y + b.y + NODE_H) // 2


def columns(ids: Iterable[int], edges: Sequence[Edge]) -> dict[int, int]:
    """Each node's column: one more than its furthest parent's (cycles cannot occur, but a
    node caught in one would simply keep column 0)."""
    nodes = sorted(set(ids))
    kids: dict[int, list[int]] = {n: [] for n in nodes}
    indegree = dict.fromkeys(nodes, 0)
    for e in edges:
        kids[e.parent].append(e.child)
        indegree[e.child] += 1
    column = dict.fromkeys(nodes, 0)
    ready = [n for n in nodes if indegree[n] == 0]
    while ready:
        node = ready.pop()
        for kid in kids[node]:
            column[kid] = max(column[kid], column[node] + 1)
            indegree[kid] -= 1
            if indegree[kid] == 0:
                ready.append(kid)
    return column


def _sweep(order: list[list[int]], neighbours: dict[int, list[int]], backwards: bool) -> None:
    """Re-order each column by the mean position of its neighbours in the previous one."""
    span = range(len(order) - 2, -1, -1) if backwards else range(1, len(order))
    for c in span:
        ref = order[c + 1] if backwards else order[c - 1]
        where = {n: i for i, n in enumerate(ref)}

        def key(n: int, i: int, where: dict[int, int] = where) -> tuple[float, int]:
            spots = [where[m] for m in neighbours[n] if m in where]
            return (sum(spots) / len(spots) if spots else float(i), i)

        order[c] = [n for _, n in sorted((key(n, i), n) for i, n in enumerate(order[c]))]


def layout(ids: Iterable[int], edges: Iterable[Edge]) -> Layout:
    """Place every node; edges between unknown nodes are dropped."""
    nodes = set(ids)
    kept = tuple(e for e in edges if e.parent in nodes and e.child in nodes and e.parent != e.child)
    column = columns(nodes, kept)
    order: list[list[int]] = [[] for _ in range(max(column.values(), default=-1) + 1)]
    for node in sorted(nodes):
        order[column[node]].append(node)
    parents: dict[int, list[int]] = {n: [] for n in nodes}
    children: dict[int, list[int]] = {n: [] for n in nodes}
    for e in kept:
        parents[e.child].append(e.parent)
        children[e.parent].append(e.child)
    for _ in range(SWEEPS):
        _sweep(order, parents, backwards=False)
        _sweep(order, children, backwards=True)
    tallest = max((len(col) for col in order), default=0)
    placed: dict[int, Placed] = {}
    for c, col in enumerate(order):
        offset = (tallest - len(col)) / 2
        for i, node in enumerate(col):
            y = MARGIN + round((i + offset) * (NODE_H + GAP_Y))
            placed[node] = Placed(MARGIN + c * (NODE_W + GAP_X), y, c)
    width = 2 * MARGIN + max(len(order) * (NODE_W + GAP_X) - GAP_X, 0)
    height = 2 * MARGIN + max(tallest * (NODE_H + GAP_Y) - GAP_Y, 0)
    return Layout(placed, kept, width, height)
