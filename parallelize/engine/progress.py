"""Progress: a tqdm bar where one can be drawn, plain lines where it cannot; updated once per batch.

``progress=`` (``RunOptions.progress``, checked when given) becomes one object
with ``update(n)`` and ``close()``::

    False ──────────────────────────────> None (nothing shown)
    True ── a terminal or a notebook? ─yes─> tqdm.auto.tqdm (the notebook bar in Jupyter)
              └─ no (a log file, CI) ──────> PlainProgress: a line every PLAIN_INTERVAL_SECONDS
    {"desc": "fit", ...} ───────────────> tqdm.auto.tqdm(**defaults, **options)
    a tqdm class / callable ────────────> cls(**defaults)

tqdm is imported only when a bar is made.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Mapping
from typing import IO, Any

from ..options import ProgressOption
from ..validate import check_seconds

__all__ = ["PLAIN_INTERVAL_SECONDS", "PlainProgress", "make_progress"]

#: Seconds between two lines of ``PlainProgress``, the report used when stderr
#: is neither a terminal nor a notebook: frequent enough to watch a CI job, rare
#: enough that a day-long run writes a readable log (some 8,600 lines).
PLAIN_INTERVAL_SECONDS = 10.0


def _clock(seconds: float) -> str:
    """``4:10`` or ``1:04:10``."""
    whole = int(seconds + 0.5)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _rate(per_second: float) -> str:
    if per_second >= 100:
        return f"{per_second:,.0f}"
    return f"{per_second:.1f}" if per_second >= 1 else f"{per_second:.2g}"


class PlainProgress:
    """Progress as plain lines, for log files and CI, where a bar's carriage returns would pile up.

    Each line reads ``parallelize: 1,200/10,000 tasks (12%), 35.1 tasks/s, 4:10 left``.
    One is written when tasks finish at least ``interval`` seconds after the
    previous one, and a last one (``done in 4:45``) at the end. No carriage
    return, no ANSI codes.

    It takes tqdm's keywords, so it is also a value for ``progress=``:
    ``progress=PlainProgress`` writes lines even on a terminal, and
    ``progress=functools.partial(PlainProgress, interval=60)`` once a minute.

    Args:
        total: tasks expected, or ``None`` when unknown.
        desc: the label each line starts with (default ``"parallelize"``).
        unit: what is counted (default ``"task"``; lines say ``"tasks"``).
        file: where lines go (default: ``sys.stderr`` as it is when the report is made).
        interval: seconds between two lines, > 0 (default ``PLAIN_INTERVAL_SECONDS``).
        **tqdm_options: tqdm's other keywords (``dynamic_ncols``, ``smoothing``,
            ``colour``...) shape a bar, not a line: accepted and ignored.

    Raises:
        ConfigError: ``interval`` is not a positive number of seconds.
    """

    def __init__(
        self,
        total: int | None = None,
        desc: str | None = "parallelize",
        unit: str = "task",
        file: IO[str] | None = None,
        interval: float = PLAIN_INTERVAL_SECONDS,
        **tqdm_options: Any,
    ) -> None:
        self.total = total
        self.n = 0
        self.desc = desc or ""
        self.units = unit if unit.endswith("s") else unit + "s"
        self.interval = check_seconds("interval", interval, allow_zero=False)
        self._file = file if file is not None else sys.stderr
        self._lock = threading.Lock()
        self._start = time.monotonic()
        self._next_line = self._start + self.interval
        self._closed = False

    def update(self, n: int = 1) -> None:
        """Count ``n`` more finished tasks; write a line if ``interval`` has passed."""
        with self._lock:
            self.n += n
            now = time.monotonic()
            if self._closed or now < self._next_line:
                return
            self._next_line = now + self.interval
            line = self.format_line(now - self._start, final=False)
        self._write(line)

    def close(self) -> None:
        """Write the last line (once; later calls do nothing)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            line = self.format_line(time.monotonic() - self._start, final=True)
        self._write(line)

    def format_line(self, elapsed: float, *, final: bool) -> str:
        """The line for ``self.n`` tasks after ``elapsed`` seconds (``final``: the run's end)."""
        n, total, units = self.n, self.total, self.units
        parts = [
            f"{n:,}/{total:,} {units} ({100 * n // total if total else 100}%)"
            if total is not None
            else f"{n:,} {units}"
        ]
        rate = n / elapsed if elapsed > 0 else 0.0
        if rate > 0:
            parts.append(f"{_rate(rate)} {units}/s")
        if final:
            finished = total is None or n >= total
            parts.append(f"{'done in' if finished else 'stopped after'} {_clock(elapsed)}")
        elif total is not None and rate > 0:
            parts.append(f"{_clock(max(total - n, 0) / rate)} left")
        return f"{self.desc}: {', '.join(parts)}" if self.desc else ", ".join(parts)

    def _write(self, line: str) -> None:
        file = self._file
        if file is None:  # no stderr at all (pythonw)
            return
        try:
            file.write(line + "\n")
            file.flush()
        except (OSError, ValueError):  # closed or broken: progress never fails a run
            pass

    def __repr__(self) -> str:
        return f"<PlainProgress {self.n}/{self.total} every {self.interval} s>"


def _in_notebook() -> bool:
    """Whether this is a Jupyter kernel (the test tqdm.autonotebook makes)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
        return shell is not None and "IPKernelApp" in shell.config
    except Exception:  # an IPython too old or too odd to ask: not a notebook we know
        return False


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # None, closed, or not a file
        return False


def make_progress(option: ProgressOption, total: int | None, desc: str = "parallelize") -> Any:
    """The progress report ``option`` asks for, counting finished tasks, or ``None`` for none.

    Args:
        option: ``RunOptions.progress``: ``False``, ``True``, tqdm keyword
            options, or a tqdm class (any callable taking tqdm's keywords).
        total: the number of tasks, if known (else it counts without a total).
        desc: the label.

    Returns:
        An object with ``update(n)`` and ``close()`` (a tqdm bar or a
        ``PlainProgress``), or ``None``. A class is called as
        ``cls(total=total, desc=desc, unit="task", dynamic_ncols=True, smoothing=0.1)``;
        mapping options are added to (and override) those keywords.
    """
    if option is False:
        return None
    keywords: dict[str, Any] = {"total": total, "desc": desc, "unit": "task", "dynamic_ncols": True, "smoothing": 0.1}
    if option is True:
        if not _in_notebook() and not _is_terminal(sys.stderr):
            return PlainProgress(total=total, desc=desc, unit="task")
        from tqdm.auto import tqdm

        return tqdm(**keywords)
    if isinstance(option, Mapping):
        from tqdm.auto import tqdm

        return tqdm(**{**keywords, **option})
    return option(**keywords)
