"""A progress bar on stderr for long CLI work (streams, batch jobs).

Shown only where someone can see it: by default when both stdout and stderr
are terminals; ``--progress`` shows it whenever stderr is a terminal;
``--no-progress`` never. Logs and pipes get no control characters.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Any

import click


def progress_enabled(flag: bool | None) -> bool:
    """``flag`` from --progress/--no-progress (None: automatic)."""
    if flag is False or not sys.stderr.isatty():
        return False
    return True if flag else sys.stdout.isatty()


class Progress:
    """``with Progress(total, "label", enabled) as p: p.advance(k)`` — bar, count, rate, ETA."""

    def __init__(self, total: int, label: str, enabled: bool, unit: str = "img") -> None:
        self.total = total
        self.done = 0
        self.unit = unit
        self._started = time.monotonic()
        self._bar: Any = None
        if enabled and total > 0:
            self._bar = click.progressbar(
                length=total,
                label=label,
                file=sys.stderr,
                show_eta=False,
                show_pos=True,
                show_percent=True,
                item_show_func=lambda _item: self.rate_text(),
            )

    def rate_text(self) -> str:
        """E.g. ``1,234 img/s  eta 0:01:05`` (the rate since the start)."""
        elapsed = time.monotonic() - self._started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        text = f"{rate:,.0f} {self.unit}/s"
        if 0 < self.done < self.total and rate > 0:
            left = int((self.total - self.done) / rate + 0.5)
            text += f"  eta {left // 3600}:{left // 60 % 60:02d}:{left % 60:02d}"
        return text

    def advance(self, n: int) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)

    def __enter__(self) -> Progress:
        if self._bar is not None:
            self._bar.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.__exit__(exc_type, exc, tb)
