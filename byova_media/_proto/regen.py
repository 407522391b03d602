"""Regenerate the protobuf modules of this package from ``protos/``.

Run ``python -m byova_media._proto.regen`` after editing a ``.proto`` file. The
drift test calls :func:`generate` and compares its output with the committed
modules, so the two cannot silently disagree. Needs ``grpcio-tools`` (test extra).
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROTO_DIR = PACKAGE_DIR.parent.parent / "protos"
PROTO_FILES = ("byova_common.proto", "voicevirtualagent.proto")
_SIBLING_IMPORT = re.compile(r"^import (\w+_pb2(?:_grpc)?) as ", re.MULTILINE)


def generate(proto_dir: Path = PROTO_DIR) -> dict[str, str]:
    """Compile the protos and return ``{module file name: source}``.

    protoc writes absolute imports between generated modules (``import
    byova_common_pb2``); they are rewritten to relative ones so the modules
    work inside this package.
    """
    from grpc_tools import protoc  # imported late: a dev-only dependency

    builtin = Path(protoc.__file__).resolve().parent / "_proto"
    with tempfile.TemporaryDirectory() as out:
        argv = [
            "protoc",
            f"-I{proto_dir}",
            f"-I{builtin}",
            f"--python_out={out}",
            f"--pyi_out={out}",
            f"--grpc_python_out={out}",
            *(str(proto_dir / name) for name in PROTO_FILES),
        ]
        if protoc.main(argv) != 0:
            raise RuntimeError(f"protoc failed on {proto_dir}")
        return {
            path.name: _SIBLING_IMPORT.sub(r"from . import \1 as ", path.read_text())
            for path in sorted(Path(out).iterdir())
        }


def main() -> int:
    """Write the generated modules next to this file."""
    for name, source in generate().items():
        (PACKAGE_DIR / name).write_text(source)
        print(f"wrote {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
