"""The long-call memory soak of issue 12, with the data-source JWS on, in one command.

Starts a local identity broker (the tests' fake, serving a JWKS on 127.0.0.1), a
``byova-media serve --plugin echo --plugin control`` process that verifies every RPC's
token against it, and ``byova-media loadtest --long-calls`` with a freshly minted token;
then prints the server's RSS slope after the warm-up. Run from the project root::

    python benchmarks/soak.py --calls 150 --minutes 30 --json soak.json

``--memray FILE`` runs the server under ``memray run --native`` (``pip install memray``) to
find where native memory goes; its figures are not comparable with an unprofiled run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "control"))

from fake_idbroker import DATASOURCE_URL, FakeIdBroker

from byova_media.loadtest.generator import rss_slope_mb_per_min
from byova_media.testing.process import serve_process


def _arguments() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=150, help="concurrent long calls (default 150)")
    p.add_argument("--minutes", type=float, default=30.0, help="soak length (default 30)")
    p.add_argument("--warm-up", type=float, default=3.0, metavar="MIN", help="default 3")
    p.add_argument("--json", type=Path, default=Path("soak.json"), help="loadtest report")
    p.add_argument("--memray", type=Path, metavar="FILE", help="profile the server's heap")
    return p.parse_args()


async def _soak(args: argparse.Namespace, work: Path) -> dict[str, object]:
    async with FakeIdBroker() as broker:
        token = work / "token"
        # A token valid for the whole run plus an hour (loadtest re-reads the file if it changes).
        lifetime_s = int(args.minutes * 60) + 3600
        claims = broker.claims()
        token.write_text(broker.mint({**claims, "exp": claims["iat"] + lifetime_s}))
        env = {
            "BYOVA_MEDIA_CONTROL_DATASOURCE_URL": DATASOURCE_URL,
            "BYOVA_MEDIA_CONTROL_JWS_ISSUERS": broker.issuer(),
            "BYOVA_MEDIA_CONTROL_STORE": f"sqlite:///{work / 'store.sqlite3'}",
        }
        interpreter = (
            [sys.executable, "-m", "memray", "run", "--native", "-f", "-o", str(args.memray)]
            if args.memray
            else []
        )
        plugins = ("--plugin", "echo", "--plugin", "control", "--http-port", "0")
        async with serve_process(*plugins, env=env, interpreter=interpreter) as served:
            loadtest = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "byova_media.cli", "loadtest", f"127.0.0.1:{served.port}",
                "--calls", str(args.calls), "--duration", str(args.minutes * 60),
                "--long-calls", "--ramp", "10", "--trail-ms", "800",
                "--server-pid", str(served.proc.pid), "--token-file", str(token),
                "--json", str(args.json), "--no-chart", "--no-progress",
            )  # fmt: skip
            await loadtest.wait()
            await served.stop()
    report = json.loads(args.json.read_text())
    return _slopes(report, args.warm_up * 60)


def _slopes(report: dict[str, object], warm_up_s: float) -> dict[str, object]:
    """RSS at the start and end of the step, and its slope after the warm-up."""
    step = report["steps"][0]  # type: ignore[index]
    server = step["server"]
    rss = [(float(t), float(mb)) for t, mb in server["rss_samples"]]
    settled = [(t, mb) for t, mb in rss if t >= warm_up_s]
    return {
        "rss_start_mb": server["rss_start_mb"],
        "rss_end_mb": server["rss_end_mb"],
        "slope_mb_per_min_whole_run": rss_slope_mb_per_min(rss),
        "slope_mb_per_min_after_warm_up": rss_slope_mb_per_min(settled),
        "turns": step["turns"],
        "calls_failed": step["calls_failed"],
        "rpc_errors": step["rpc_errors"],
        "cpu_us_per_frame": server["cpu_us_per_frame"],
    }


def main() -> None:
    args = _arguments()
    with tempfile.TemporaryDirectory(prefix="byova-soak-") as work:
        print(json.dumps(asyncio.run(_soak(args, Path(work))), indent=2))


if __name__ == "__main__":
    main()
