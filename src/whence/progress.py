"""Progress bars for the work that takes more than a second (retraining, gradient stores, saving, replays).

One bar implementation for the whole library: tqdm's (a dependency), on stderr, shown only once the work has
taken ``delay`` seconds, so that quick calls print nothing.  ``WHENCE_PROGRESS=0`` in the environment turns
every bar off.

Examples
--------
>>> from whence.progress import progress_bar
>>> with progress_bar(3, "steps", enabled=False) as bar:
...     for _ in range(3):
...         bar.update(1)
>>> bar.n
3
"""

from __future__ import annotations

import os
import sys
from typing import Any

__all__ = ["progress_bar", "ProgressBar"]


def _enabled(flag: object) -> bool:
    return bool(flag) and os.environ.get("WHENCE_PROGRESS", "1") not in ("0", "false", "no", "off")


class ProgressBar:
    """A bar that counts ``n`` of ``total`` units; a no-op when disabled.

    Parameters
    ----------
    total : int
        Units of work in all.
    desc : str
        What is being done, shown on the left of the bar.
    enabled : bool, default True
        False: count without drawing (also when ``WHENCE_PROGRESS=0``).
    delay : float, default 1.0
        Seconds before the bar first appears.
    unit : str, default "it"
        The unit shown in the rate.
    """

    def __init__(self, total: int, desc: str, enabled: bool = True, delay: float = 1.0, unit: str = "it") -> None:
        self.total, self.desc, self.n = int(total), desc, 0
        self._bar: Any = None
        if _enabled(enabled) and self.total > 0:
            from tqdm.auto import tqdm
            self._bar = tqdm(total=self.total, desc=desc, unit=unit, delay=delay, file=sys.stderr,
                             leave=False, dynamic_ncols=True)

    # the attribute the bars had before they were shared (kept for callers that read it)
    @property
    def done(self) -> int:
        return self.n

    def update(self, k: int = 1) -> None:
        """Add ``k`` units of finished work."""
        self.n += k
        if self._bar is not None:
            self._bar.update(k)

    def set_description(self, desc: str) -> None:
        """Change the text on the left of the bar (for a multi-step job)."""
        self.desc = desc
        if self._bar is not None:
            self._bar.set_description(desc, refresh=False)

    def close(self) -> None:
        """Remove the bar from the terminal."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress_bar(total: int, desc: str, enabled: bool = True, delay: float = 1.0,
                 unit: str = "it") -> ProgressBar:
    """A :class:`ProgressBar` (use it as a context manager so that it always closes)."""
    return ProgressBar(total, desc, enabled=enabled, delay=delay, unit=unit)
