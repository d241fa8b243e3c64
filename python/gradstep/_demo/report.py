"""Text output: aligned tables on stdout and a dependency-free progress bar on stderr."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import TextIO

__all__ = ["Progress", "table"]


def _can_encode(stream: TextIO, text: str) -> bool:
    try:
        text.encode(getattr(stream, "encoding", None) or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], align: str = "",
          stream: TextIO | None = None) -> str:
    """Rows of strings as an aligned table; ``align`` has one of "l"/"r" per column
    (default: left for the first column, right for the rest)."""
    stream = stream or sys.stdout
    ncol = len(headers)
    align = align or "l" + "r" * (ncol - 1)
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(ncol)]

    def fmt(cells: Sequence[str]) -> str:
        out = []
        for i, cell in enumerate(cells):
            cell = str(cell)
            out.append(cell.ljust(widths[i]) if align[i] == "l" else cell.rjust(widths[i]))
        return "  ".join(out).rstrip()

    rule_char = "─" if _can_encode(stream, "─") else "-"
    rule = "  ".join(rule_char * w for w in widths)
    lines = [fmt(headers), rule, *(fmt(r) for r in rows)]
    return "\n".join(lines)


class Progress:
    """``label [#####.....] 12/30 note`` redrawn in place on stderr.

    Draws only when stderr is a terminal (so logs and pipes stay clean); ``close``
    clears the line. No dependency, no threads.
    """

    def __init__(self, total: int, label: str, stream: TextIO | None = None,
                 enabled: bool | None = None, width: int = 28) -> None:
        self.total = max(1, total)
        self.label = label
        self.stream = stream or sys.stderr
        isatty = getattr(self.stream, "isatty", lambda: False)
        self.enabled = isatty() if enabled is None else enabled
        self.width = width
        self.done = 0
        self.start = time.perf_counter()
        self._last = 0.0
        self._full, self._empty = ("█", "·") if _can_encode(self.stream, "█·") else ("#", ".")
        self._shown = 0
        self.update(0)

    def update(self, n: int = 1, note: str = "") -> None:
        self.done = min(self.total, self.done + n)
        if not self.enabled:
            return
        now = time.perf_counter()
        if self.done < self.total and n and now - self._last < 0.05:
            return
        self._last = now
        filled = int(self.width * self.done / self.total)
        bar = self._full * filled + self._empty * (self.width - filled)
        elapsed = now - self.start
        line = f"  {self.label:<10} [{bar}] {self.done:>3}/{self.total}  {elapsed:4.1f}s  {note}"
        line = line[:100]
        pad = max(0, self._shown - len(line))
        self.stream.write("\r" + line + " " * pad)
        self.stream.flush()
        self._shown = len(line)

    def close(self) -> None:
        if self.enabled and self._shown:
            self.stream.write("\r" + " " * self._shown + "\r")
            self.stream.flush()
        self._shown = 0

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
