"""The load generator: concurrent real-time simulated calls, a bare baseline sink, reports.

``byova-media loadtest HOST:PORT`` is the command; :class:`Scenario` and
:func:`run_callers` are the pieces for scripts and benchmarks.
"""

from __future__ import annotations

from byova_media.loadtest.caller import Tally, run_callers
from byova_media.loadtest.scenario import Scenario, Step, parse_script

__all__ = ["Scenario", "Step", "Tally", "parse_script", "run_callers"]
