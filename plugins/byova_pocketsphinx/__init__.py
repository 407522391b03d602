"""The ``pocketsphinx`` plugin: offline speech recognition, registered as ``pocketsphinx``.

Options (per virtual agent, e.g. ``[plugin.demo.stt_options]``): ``grammar`` (JSGF
text) or ``keyphrases`` (a list), ``dither_dbfs``, ``streaming``. See
:class:`PocketsphinxSettings`.
"""

from __future__ import annotations

from collections.abc import Callable

import byova_media
from byova_media.adapters import SttFactory
from byova_media.app import App
from byova_pocketsphinx.stt import PocketsphinxSettings, PocketsphinxStream, PocketsphinxSTT

__all__ = ["PocketsphinxSTT", "PocketsphinxSettings", "PocketsphinxStream"]


@byova_media.hookimpl
def byova_register_stt_engines(app: App, register: Callable[[str, SttFactory], None]) -> None:
    register("pocketsphinx", PocketsphinxSTT.from_options)
