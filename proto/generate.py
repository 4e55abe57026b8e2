"""Generates the Python gRPC code for proto/effort/v1 into service/api/v1 (run by `make proto`)."""

import argparse
import re
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

PROTO_ROOT = Path(__file__).resolve().parent
PACKAGE_DIR = PROTO_ROOT / "effort" / "v1"
DEFAULT_OUT = PROTO_ROOT.parent / "service" / "api" / "v1"
# protoc writes absolute imports (`from effort.v1 import x_pb2`); the code lives in service.api.v1.
ABSOLUTE_IMPORT = re.compile(r"^from effort\.v1 import ", re.MULTILINE)


def generate(out_dir: Path) -> None:
    """Compiles every .proto of effort.v1 into out_dir, with imports made relative."""
    well_known = Path(protoc.__file__).parent / "_proto"
    with tempfile.TemporaryDirectory() as scratch:
        args = [
            "protoc",
            f"-I{PROTO_ROOT}",
            f"-I{well_known}",
            f"--python_out={scratch}",
            f"--pyi_out={scratch}",
            f"--grpc_python_out={scratch}",
            *sorted(str(p) for p in PACKAGE_DIR.glob("*.proto")),
        ]
        if protoc.main(args) != 0:
            sys.exit("protoc failed")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        out_dir.mkdir(parents=True)
        for source in sorted((Path(scratch) / "effort" / "v1").iterdir()):
            text = ABSOLUTE_IMPORT.sub("from . import ", source.read_text())
            (out_dir / source.name).write_text(text)
    (out_dir / "__init__.py").write_text('"""Generated from proto/effort/v1 by `make proto`."""\n')


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    generate(parser.parse_args().out)
