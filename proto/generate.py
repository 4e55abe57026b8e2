"""Generates the Python gRPC code of proto/effort/v1 beside the .proto files (run by `make proto`).

The generated modules form the package `effort.v1` (proto/ is its import root), the lowest layer
of the project: every other package may import it, it imports none of them.
"""

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

PROTO_ROOT = Path(__file__).resolve().parent
PACKAGE_DIR = PROTO_ROOT / "effort" / "v1"
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")
INIT_TEXT = '"""Generated from proto/effort/v1 by `make proto`; do not edit by hand."""\n'


def generated_files(folder: Path) -> list[Path]:
    """The files of `folder` that `generate` writes (not the .proto sources)."""
    return sorted(p for p in folder.iterdir()
                  if p.name == "__init__.py" or p.name.endswith(GENERATED_SUFFIXES))


def generate(out_dir: Path) -> None:
    """Compiles every .proto of effort.v1 into out_dir, replacing what an earlier run wrote."""
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
        out_dir.mkdir(parents=True, exist_ok=True)
        for stale in generated_files(out_dir):
            stale.unlink()
        for source in sorted((Path(scratch) / "effort" / "v1").iterdir()):
            shutil.copyfile(source, out_dir / source.name)
    (out_dir / "__init__.py").write_text(INIT_TEXT)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=PACKAGE_DIR, help="output folder")
    generate(parser.parse_args().out)
