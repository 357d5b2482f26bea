"""A pass over targets after the matrix (the cost pass, the profile pass): one server at a time,
one record per target, a target that cannot be measured recorded with the reason."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from loadgen.envs import Env
from loadgen.targets import Target

R = TypeVar("R")


def each_target(
    kind: str,
    targets: Sequence[tuple[Target, Env | None, str]],
    *,
    measure: Callable[[Target, Env, Callable[[str], None]], R],
    failed: Callable[[Target, str], R],
    problem: Callable[[R], str],
    on_record: Callable[[R], None] = lambda _: None,
    say: Callable[[str], None] = lambda _: None,
) -> list[R]:
    """``measure(target, env, tell)`` every ``(target, env or None, why not)`` in turn; a target
    without an environment gets ``failed(target, why)``. Each record goes to ``on_record`` as it
    is made (an interrupted pass keeps the finished ones); ``problem(record)``, when not empty,
    is said as the target's failure."""
    out: list[R] = []
    for i, (target, env, why) in enumerate(targets, 1):
        say(f"{kind} [{i}/{len(targets)}] {target.name}")
        if env is None:
            rec = failed(target, why or "no environment")
        else:

            def tell(text: str, name: str = target.name) -> None:
                say(f"    {name}: {text}")

            rec = measure(target, env, tell)
        trouble = problem(rec)
        if trouble:
            say(f"    {target.name}: FAILED: {trouble}")
        on_record(rec)
        out.append(rec)
    return out
