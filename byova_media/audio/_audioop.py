"""The C G.711 codec: stdlib ``audioop`` below Python 3.13, ``audioop-lts`` from 3.13 on.

Importing stdlib ``audioop`` on 3.11/3.12 emits a DeprecationWarning (PEP 594); it is
silenced here, once, so test suites running with warnings-as-errors still import us.
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

__all__ = ["audioop"]
