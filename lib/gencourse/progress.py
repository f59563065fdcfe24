"""Progress bars for a terminal, one plain line each for a log.

tqdm redraws its bar with a carriage return several times a second; in a file, a CI log
or `make demo > log` every redraw stays (the demo's log was 66 kB of them). This `tqdm`
draws the bar only where it can be redrawn: a terminal, or a notebook's widget. Anywhere
else it draws nothing and, when it closes, writes one line: what it counted and how long
it took (one line per epoch of a training run, per batch of submissions).
"""

from __future__ import annotations

import sys
import time

from tqdm.auto import tqdm as _tqdm


def _redrawable(stream) -> bool:
    """A bar can be redrawn on `stream`: a terminal, or tqdm.auto's notebook widget."""
    if _tqdm.__module__.startswith("tqdm.notebook"):
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class tqdm(_tqdm):
    """tqdm.auto's bar on a terminal or in a notebook; elsewhere a single line at the end."""

    def __init__(self, *args, disable=False, **kwargs):
        self._stream = kwargs.get("file") or sys.stderr
        self._plain = not disable and not _redrawable(self._stream)
        self._desc, self._unit, self._total = kwargs.get("desc"), kwargs.get("unit", "it"), kwargs.get("total")
        self._count, self._start = 0, time.monotonic()
        super().__init__(*args, disable=disable or self._plain, **kwargs)

    def update(self, n=1):
        self._count += n
        return super().update(n)

    def close(self):
        if self._plain:
            self._plain = False                   # close() runs again from __del__: one line only
            of = f"/{self._total:g}" if self._total is not None else ""
            what = f"{self._desc}: " if self._desc else ""
            print(f"{what}{self._count:g}{of} {self._unit} in {time.monotonic() - self._start:.1f} s",
                  file=self._stream, flush=True)
        return super().close()
