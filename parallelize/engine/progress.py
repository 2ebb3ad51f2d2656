"""Progress bars: a thin, lazily imported tqdm wrapper, updated once per batch."""

from __future__ import annotations

from typing import Any

__all__ = ["make_progress"]


def make_progress(enabled: bool, total: int | None, desc: str = "parallelize") -> Any:
    """A tqdm bar counting finished tasks, or ``None`` when disabled.

    Args:
        enabled: whether to show a bar.
        total: the number of tasks, if known (else the bar counts without a total).
        desc: the bar's label.
    """
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="task", dynamic_ncols=True, smoothing=0.1)
