"""How numbers read in every report format (HTML, Markdown, terminal): one place, one style."""

from __future__ import annotations

from collections.abc import Sequence

DASH = "—"


def rps(v: float | None) -> str:
    if v is None:
        return DASH
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:,.1f}"


def ci(v: tuple[float, float] | None) -> str:
    return DASH if v is None else f"[{rps(v[0])}, {rps(v[1])}]"


def ms(v: float | None) -> str:
    """Latency in ms with about three significant digits."""
    if v is None:
        return DASH
    a = abs(v)
    if a >= 100:
        return f"{v:,.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def pct(v: float | None, digits: int = 1) -> str:
    """A fraction (0.05) as a percentage ("5.0 %")."""
    return DASH if v is None else f"{100.0 * v:.{digits}f} %"


def ratio(v: float | None) -> str:
    return DASH if v is None else f"{v:.2f}x"


def mib(v: float | None) -> str:
    return DASH if v is None else f"{v / 2**20:,.1f}"


def seconds(v: float | None) -> str:
    return DASH if v is None else f"{v:.2f}"


def num(v: float | None, digits: int = 3) -> str:
    return DASH if v is None else f"{v:.{digits}f}"


def count(v: int | None) -> str:
    return DASH if v is None else f"{v:,}"


def ranks(items: Sequence[int]) -> str:
    """``[2, 3, 4, 7]`` -> ``"2–4, 7"``."""
    out: list[str] = []
    nums = sorted(items)
    i = 0
    while i < len(nums):
        j = i
        while j + 1 < len(nums) and nums[j + 1] == nums[j] + 1:
            j += 1
        out.append(str(nums[i]) if i == j else f"{nums[i]}–{nums[j]}")
        i = j + 1
    return ", ".join(out)


def tie(items: Sequence[int], *, interval: bool = True, trials: int = 1) -> str:
    """The tie column of a ranked row: the ranks it ties with; a row without an interval (a
    single trial) ties with nothing, and says so."""
    if not interval:
        return f"{trials} trial{'' if trials == 1 else 's'}: no interval"
    return f"tie with {ranks(items)}" if items else ""


def version(name: str, ver: str) -> str:
    return f"{name} {ver}".strip()


def errors(kinds: dict[str, int]) -> str:
    if not kinds:
        return "0"
    return ", ".join(f"{k} {v:,}" for k, v in kinds.items())
