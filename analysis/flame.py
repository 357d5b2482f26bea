"""Flame graphs from collapsed stacks, as pure functions: the tree, the function table, the diff.

Collapsed stacks (:func:`loadgen.records.parse_collapsed`) map each distinct stack, root
first, to its sample count. From them:

- :func:`build_tree`: the flame tree. A node is a frame at one place in the call tree; its
  ``value`` is the samples of every stack through it, its ``self_value`` those that ended in it.
- :func:`function_table`: per function, the samples spent in it (self) and under it (total;
  a stack that holds a function twice, by recursion, counts once).
- :func:`diff`: between a good and a bad profile, which functions gained or lost samples per
  request (per 1,000 requests, so profiles of windows that answered different counts compare),
  sorted by the size of the change: the differential view. :func:`diff_tree` is the same as a
  tree: the bad profile's shape, each frame with its change against the same frame in the good.

Frames are py-spy's ``function (file:line)``; profiles of different runs name the same function
at different lines (a release moved it) and the server at a different PID, so the diff compares
:func:`function_key`\\ s: the frame without its line number and without the PID.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

Stacks = Mapping[tuple[str, ...], int]

_LINE = re.compile(r"^(?P<fn>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")
_PROCESS = re.compile(r'^process \d+:"?(?P<cmd>.*?)"?$')


def function_key(frame: str) -> str:
    """The frame as the diff compares it: ``f (pkg/mod.py:12)`` -> ``f (pkg/mod.py)``;
    ``process 123:"python app.py"`` -> ``process python app.py`` (no line, no PID)."""
    p = _PROCESS.match(frame)
    if p:
        return "process " + _short_command(p.group("cmd"))
    m = _LINE.match(frame)
    if m:
        return f"{m.group('fn')} ({m.group('file')})"
    return frame


def frame_label(frame: str) -> str:
    """The frame as a graph shows it: a process frame shortened to its PID and program."""
    p = re.match(r'^process (?P<pid>\d+):"?(?P<cmd>.*?)"?$', frame)
    if p:
        return f"process {p.group('pid')}: {_short_command(p.group('cmd'))}"
    return frame


def _short_command(cmd: str) -> str:
    """``/x/bin/python /x/bin/uvicorn app:app --port 1`` -> ``uvicorn app:app`` (no flags)."""
    words = cmd.split()
    while len(words) > 1 and "python" in words[0].rsplit("/", 1)[-1]:
        words = words[1:]
    kept = [words[0].rsplit("/", 1)[-1]] if words else []
    for w in words[1:]:
        if w.startswith("-"):
            break
        kept.append(w)
    return " ".join(kept)


def normalize(stacks: Stacks) -> dict[tuple[str, ...], int]:
    """The stacks with every frame replaced by its :func:`function_key` (equal ones summed)."""
    out: dict[tuple[str, ...], int] = {}
    for stack, n in stacks.items():
        key = tuple(function_key(f) for f in stack)
        out[key] = out.get(key, 0) + n
    return out


def total_samples(stacks: Stacks) -> int:
    return sum(stacks.values())


# --- the tree ----------------------------------------------------------------------------------


@dataclass
class Node:
    """A frame at one place of the call tree (the root is every sample: ``all``)."""

    name: str
    value: float = 0.0  # samples (or samples per 1,000 requests) through this frame
    self_value: float = 0.0  # of which ended here
    children: dict[str, Node] = field(default_factory=dict)
    delta: float | None = None  # diff trees: value minus the good profile's at the same place

    def child(self, name: str) -> Node:
        node = self.children.get(name)
        if node is None:
            node = self.children[name] = Node(name)
        return node

    def sorted_children(self) -> list[Node]:
        """Children by name: a graph's order does not move with the counts."""
        return [self.children[k] for k in sorted(self.children)]

    def depth(self) -> int:
        """Frames on the deepest path below and including this one."""
        return 1 + max((c.depth() for c in self.children.values()), default=0)

    def find(self, path: Iterable[str]) -> Node | None:
        node: Node | None = self
        for name in path:
            node = node.children.get(name) if node else None
        return node


def build_tree(stacks: Stacks, scale: float = 1.0) -> Node:
    """The flame tree of ``stacks``, every count multiplied by ``scale``."""
    root = Node("all")
    for stack, n in stacks.items():
        v = n * scale
        root.value += v
        node = root
        for frame in stack:
            node = node.child(frame)
            node.value += v
        node.self_value += v
    return root


# --- the function table ------------------------------------------------------------------------


@dataclass(frozen=True)
class FunctionRow:
    function: str
    self_samples: int
    total_samples: int


def function_table(stacks: Stacks, key: bool = False) -> list[FunctionRow]:
    """Per function: self and total samples, most self samples first (then total, then name).

    ``key``: functions compared by :func:`function_key` (lines and PIDs merged)."""
    own: dict[str, int] = {}
    under: dict[str, int] = {}
    for stack, n in stacks.items():
        frames = [function_key(f) for f in stack] if key else list(stack)
        if not frames:
            continue
        own[frames[-1]] = own.get(frames[-1], 0) + n
        for f in set(frames):
            under[f] = under.get(f, 0) + n
    rows = [FunctionRow(f, own.get(f, 0), t) for f, t in under.items()]
    rows.sort(key=lambda r: (-r.self_samples, -r.total_samples, r.function))
    return rows


# --- the differential view ---------------------------------------------------------------------


@dataclass(frozen=True)
class DiffRow:
    """One function's samples per 1,000 requests in the good and the bad profile."""

    function: str
    good: float  # self samples per 1,000 requests
    bad: float
    good_total: float  # total (self and below) samples per 1,000 requests
    bad_total: float

    @property
    def change(self) -> float:
        """Self samples per 1,000 requests gained (positive) or lost (negative)."""
        return self.bad - self.good

    @property
    def total_change(self) -> float:
        return self.bad_total - self.good_total

    @property
    def change_pct(self) -> float | None:
        """The change of self samples in % of the good ones (None when the good had none)."""
        return (self.bad / self.good - 1.0) * 100.0 if self.good else None


def per_1k(requests: int) -> float:
    """The factor from samples to samples per 1,000 requests (ValueError without requests)."""
    if requests <= 0:
        raise ValueError("a profile without answered requests cannot be read per request")
    return 1000.0 / requests


def diff(good: Stacks, bad: Stacks, good_requests: int, bad_requests: int) -> list[DiffRow]:
    """Which functions gained or lost samples per request from ``good`` to ``bad``: one row per
    function of either, by the size of the change of self samples (largest first; then of
    total samples, then by name)."""
    g, b = per_1k(good_requests), per_1k(bad_requests)
    gt = {r.function: r for r in function_table(good, key=True)}
    bt = {r.function: r for r in function_table(bad, key=True)}
    rows = []
    for f in set(gt) | set(bt):
        gr, br = gt.get(f), bt.get(f)
        rows.append(
            DiffRow(
                f,
                good=(gr.self_samples if gr else 0) * g,
                bad=(br.self_samples if br else 0) * b,
                good_total=(gr.total_samples if gr else 0) * g,
                bad_total=(br.total_samples if br else 0) * b,
            )
        )
    rows.sort(key=lambda r: (-abs(r.change), -abs(r.total_change), r.function))
    return rows


def diff_tree(good: Stacks, bad: Stacks, good_requests: int, bad_requests: int) -> Node:
    """The bad profile's tree per 1,000 requests (frames compared by :func:`function_key`),
    each node's ``delta`` its value minus the good tree's at the same place (a frame the good
    profile did not have gained all of it). Frames only the good had are not in the tree: the
    :func:`diff` table lists them."""
    gtree = build_tree(normalize(good), per_1k(good_requests))
    btree = build_tree(normalize(bad), per_1k(bad_requests))

    def mark(node: Node, other: Node | None) -> None:
        node.delta = node.value - (other.value if other else 0.0)
        for name, c in node.children.items():
            mark(c, other.children.get(name) if other else None)

    mark(btree, gtree)
    return btree
