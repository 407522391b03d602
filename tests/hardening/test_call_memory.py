"""Fault 12 of issue 12: long calls grew the server's memory.

Every caller turn's ``AudioTurn`` (with the whole utterance, ~25 KiB a turn) sat in a
reference cycle (its idle timer's callback was a closure that named itself), so it was
freed only when the cyclic GC's oldest generation ran, which a busy server does rarely.
Held that long, these objects filled and pinned allocator arenas between collections and
RSS kept rising with a call's age. The rule tested here: everything the engine and the
bundled agents create for a turn is freed by reference counting alone when the turn ends.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from byova_media.audio_turn import AudioTurn
from byova_media.loadtest.scenario import speech_pcm

ROOT = Path(__file__).resolve().parents[2]
#: Server-side code: the engine and the bundled plugins (the simulator is the client).
SERVER_CODE = (str(ROOT / "byova_media"), str(ROOT / "plugins"))
CLIENT_CODE = str(ROOT / "byova_media" / "testing")


def _server_side(obj: object) -> str | None:
    """Where a garbage object comes from, if from server-side code of ours."""
    code: types.CodeType | None = None
    if isinstance(obj, types.FunctionType):
        code = obj.__code__
    elif isinstance(obj, types.CoroutineType | types.AsyncGeneratorType | types.GeneratorType):
        code = getattr(obj, "cr_code", None) or getattr(obj, "ag_code", None)
        code = code or getattr(obj, "gi_code", None)
    elif isinstance(obj, types.FrameType):
        code = obj.f_code
    if code is not None:
        where = code.co_filename
        if where.startswith(SERVER_CODE) and not where.startswith(CLIENT_CODE):
            return f"{code.co_qualname} ({Path(where).name})"
        return None
    module = type(obj).__module__
    if module.startswith(("byova_media", "byova_")) and not module.startswith(
        "byova_media.testing"
    ):
        return f"{module}.{type(obj).__qualname__}"
    return None


@pytest.fixture
def cyclic_gc_off() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def _garbage_of_ours() -> collections.Counter[str]:
    gc.set_debug(gc.DEBUG_SAVEALL)
    gc.collect()
    found = collections.Counter(
        where for obj in gc.garbage if (where := _server_side(obj)) is not None
    )
    gc.set_debug(0)
    gc.garbage.clear()
    return found


async def test_finished_turns_are_freed_without_the_cyclic_gc(
    byova_server: Any, webex: Any, cyclic_gc_off: None
) -> None:
    server = await byova_server(plugins=["echo"])
    sim = await webex(server, realtime=False)
    calls = [sim.call("echo") for _ in range(3)]
    for call in calls:
        await call.start()
    gc.collect()  # the set-up's own garbage (start-up, the welcome) is not the point
    speech = speech_pcm(1200)
    for _ in range(4):
        results = await asyncio.gather(*(call.say(speech) for call in calls))
        assert all(r.code.name == "OK" and r.audio for r in results)  # echoed back
    results = await asyncio.gather(*(call.dtmf("12") for call in calls))
    assert all(r.code.name == "OK" for r in results)
    await asyncio.sleep(0.1)  # the completed RPCs' tasks finish

    assert [o for o in gc.get_objects() if isinstance(o, AudioTurn)] == []
    assert _garbage_of_ours() == {}
