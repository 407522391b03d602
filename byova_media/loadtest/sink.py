"""The baseline: a bare grpc.aio ``VoiceVirtualAgent`` server with no framework in it.

It reads every request of an RPC, keeps the last second of caller audio, and when the
client half-closes answers with that audio as one CHUNK followed by an empty FINAL (or
just a FINAL for event/DTMF RPCs). Comparing the framework with it on the same load
shows what the codec, jitter buffer, VAD and state cost per frame.

Run it on its own: ``python -m byova_media.loadtest.sink --port 0`` prints
``sink listening on HOST:PORT`` once it serves.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import sys
from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc

from byova_media._proto import voicevirtualagent_pb2 as pb
from byova_media._proto import voicevirtualagent_pb2_grpc as pb_grpc

__all__ = ["SinkServicer", "main", "serve_sink"]

_KEEP_FRAMES = 50  # one second of 20 ms frames


class SinkServicer(pb_grpc.VoiceVirtualAgentServicer):
    """Receives frames and replies at end of stream; counts what it received."""

    def __init__(self) -> None:
        self.frames = 0
        self.rpcs = 0

    async def ProcessCallerInput(
        self,
        request_iterator: AsyncIterator[pb.VoiceVARequest],
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[pb.VoiceVAResponse]:
        self.rpcs += 1
        recent: collections.deque[bytes] = collections.deque(maxlen=_KEEP_FRAMES)
        async for request in request_iterator:
            audio = request.audio_input.caller_audio
            if len(audio) >= 16:
                recent.append(audio)
                self.frames += 1
        if recent:
            yield pb.VoiceVAResponse(
                prompts=[pb.Prompt(audio_content=b"".join(recent), is_barge_in_enabled=True)],
                response_type=pb.VoiceVAResponse.CHUNK,
            )
        yield pb.VoiceVAResponse(response_type=pb.VoiceVAResponse.FINAL)


async def serve_sink(host: str = "127.0.0.1", port: int = 0) -> tuple[grpc.aio.Server, int]:
    """Start a sink server; return it and its bound port."""
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    pb_grpc.add_VoiceVirtualAgentServicer_to_server(SinkServicer(), server)  # type: ignore[no-untyped-call]
    bound = server.add_insecure_port(f"{host}:{port}")
    if not bound:
        raise OSError(f"cannot bind {host}:{port}")
    await server.start()
    return server, bound


async def _run(host: str, port: int) -> None:
    server, bound = await serve_sink(host, port)
    print(f"sink listening on {host}:{bound}", flush=True)
    try:
        await server.wait_for_termination()
    finally:
        await server.stop(0)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until killed (the load generator starts and stops it)."""
    parser = argparse.ArgumentParser(prog="python -m byova_media.loadtest.sink")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        import uvloop
    except ImportError:  # same loop choice as `byova-media serve`
        asyncio.run(_run(args.host, args.port))
    else:
        uvloop.run(_run(args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
