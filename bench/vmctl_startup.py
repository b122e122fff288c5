"""`make bench-vmctl`: how fast vmctl starts, installed as users install it (its wheel in a virtualenv of its own).

Measured, median of `--runs` each, from process start to exit: `vmctl --client-version` (nothing but the CLI),
`vmctl version` (one health check), `vmctl get` (one ListWukongs of `--wukongs` VMs, printed as a table) against a
local stack. Reference, in the same run: the same interpreter doing nothing (`python -c pass`), so the ratios say
what vmctl adds to Python's own start-up. Target: `vmctl get` under 0.5 s here.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import devcluster
from bench import seeding
from devcluster import stack as devstack

ROOT = Path(__file__).resolve().parents[1]
NAMESPACE = "bench-vmctl"


def _install(place: Path) -> Path:
    uv = os.environ.get("UV") or shutil.which("uv")
    if not uv:
        raise SystemExit("uv is needed (make bench-vmctl provides it)")
    subprocess.run([uv, "build", "--wheel", "--quiet", "--out-dir", str(place), str(ROOT / "vmctl")], check=True)
    subprocess.run([uv, "venv", "--quiet", str(place / "venv")], check=True)
    wheel = next(place.glob("vmctl-*.whl"))
    python = place / "venv" / "bin" / "python"
    subprocess.run([uv, "pip", "install", "--quiet", "--python", str(python), str(wheel)], check=True)
    return place / "venv" / "bin"


def _median_seconds(command: list[str], env: dict[str, str], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--wukongs", type=int, default=50)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="novasphere-bench-vmctl-") as scratch,
        devcluster.running(Path(scratch) / "cluster") as cluster,
        devstack.running(
            cluster,
            Path(scratch) / "stack",
            api_env={"NOVASPHERE_DEV_IDENTITY": "true", "NOVASPHERE_DEV_TENANT": NAMESPACE},
        ) as stack,
    ):
        with devstack.admin_client(cluster) as admin:
            seeding.namespace_of_wukongs(admin, namespace=NAMESPACE, tenant=NAMESPACE, count=args.wukongs)
        bin_dir = _install(Path(scratch) / "vmctl")
        env = {
            "PATH": os.environ["PATH"],
            "HOME": scratch,
            "VMCTL_CONFIG": f"{scratch}/vmctl-config",
            "VMCTL_SERVER": stack.edge.url,
            "VMCTL_CA": str(stack.edge.ca_cert),
            "VMCTL_NAMESPACE": NAMESPACE,
        }
        vmctl = str(bin_dir / "vmctl")
        subprocess.run([vmctl, "get"], env=env, check=True, stdout=subprocess.DEVNULL)  # warm the page cache
        reference = _median_seconds([str(bin_dir / "python"), "-c", "pass"], env, args.runs)
        measured = {
            "vmctl --client-version": _median_seconds([vmctl, "--client-version"], env, args.runs),
            "vmctl version": _median_seconds([vmctl, "version"], env, args.runs),
            f"vmctl get ({args.wukongs} VMs)": _median_seconds([vmctl, "get"], env, args.runs),
        }
    print(f"\nvmctl start-up, median of {args.runs} runs, process start to exit")
    print(f"  python -c pass (reference)      {reference * 1000:7.1f} ms")
    for what, seconds in measured.items():
        print(f"  {what:<30}  {seconds * 1000:7.1f} ms   {seconds / reference:5.1f}x the reference")


if __name__ == "__main__":
    main()
