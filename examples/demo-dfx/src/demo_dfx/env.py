"""The tool's view of the outside world, in one object a simulation can replace.

A real run reads ``os.environ`` and the working directory and sleeps for real (a few
milliseconds: the tool only pretends to work). ``scripts/demo.py`` passes each simulated user's
own environment and a ``sleep`` that advances a simulated clock instead, so a "25-second"
command costs nothing and still shows up as slow.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping

#: A real run sleeps this fraction of the nominal duration of the simulated work.
REAL_SCALE = 0.001


class Env:
    """Environment variables, working directory and the clock of the simulated work."""

    def __init__(
        self,
        environ: Mapping[str, str] | None = None,
        cwd: str | None = None,
        sleep: Callable[[float], object] | None = None,
        scale: float | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.environ: Mapping[str, str] = os.environ if environ is None else environ
        self.cwd = os.getcwd() if cwd is None else cwd
        self._sleep = time.sleep if sleep is None else sleep
        self._scale = (REAL_SCALE if sleep is None else 1.0) if scale is None else scale
        #: Seconds, for measuring the simulated work (a simulation passes its own clock).
        self.clock = time.monotonic if clock is None else clock
        # DEMO_DFX_SIMULATE_SECONDS=12 makes the next piece of work take 12 real seconds: how
        # the end-to-end tests cross the slow-command threshold.
        forced = self.environ.get("DEMO_DFX_SIMULATE_SECONDS", "")
        self._forced = float(forced) if forced.replace(".", "", 1).isdigit() else None

    @property
    def home(self) -> str:
        return self.environ.get("HOME") or os.path.expanduser("~")

    def work(self, nominal_seconds: float) -> None:
        """Pretend to work for ``nominal_seconds``."""
        if self._forced is not None:
            seconds, self._forced = self._forced, None
            self._sleep(seconds)
            return
        self._sleep(nominal_seconds * self._scale)
