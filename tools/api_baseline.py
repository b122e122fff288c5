"""Cuts the breaking-change baseline: the released API's descriptor set, which `buf breaking` compares every later
change with (tests/unit/test_api_compat.py). Part of a release: run `make api-baseline` when a version ships and
commit proto/baseline/; between releases the baseline stays, so CI fails on anything an installed app would break on.

Only the compiled API is kept (no source comments): what a client depends on is numbers, types and names.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from google.protobuf import descriptor_pb2

ROOT = Path(__file__).resolve().parent.parent
DESCRIPTOR = ROOT / "gen" / "descriptor" / "novasphere.binpb"
BASELINE = ROOT / "proto" / "baseline" / "novasphere-v1.binpb"


def baseline_of(descriptor: bytes) -> bytes:
    files = descriptor_pb2.FileDescriptorSet.FromString(descriptor)
    for file in files.file:
        file.ClearField("source_code_info")
    return files.SerializeToString(deterministic=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=BASELINE)
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(baseline_of(DESCRIPTOR.read_bytes()))
    print(f"wrote {args.out.relative_to(ROOT)} from {DESCRIPTOR.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
