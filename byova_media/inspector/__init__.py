"""The call inspector: what each RPC of the last calls did, as JSON and as a timeline chart.

The engine feeds a :class:`CallInspector` at the RPC edge (the request stream and the
:class:`~byova_media.rpc.RpcOutput`); it is off unless ``inspector`` (or ``playground``)
is set, and then costs nothing on the frame path of a server that does not use it.
"""

from __future__ import annotations

from byova_media.inspector.recorder import CallInspector
from byova_media.inspector.timeline import render_html, render_svg

__all__ = ["CallInspector", "render_html", "render_svg"]
