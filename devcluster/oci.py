"""Tiny OCI images built here without a registry: Debian's static busybox in an otherwise empty root filesystem, packed
with `umoci` into an OCI layout and tarred, ready for `ctr images import` (see `devcluster.node.RealNode.import_image`).

Enough for a pause image (`busybox_image(path, entrypoint=PAUSE_ENTRYPOINT)`) and for test pods that need a shell,
`nc` or `httpd`.
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path

from devcluster import binaries

APPLETS = ("sh", "sleep", "test", "echo", "cat", "nc", "httpd", "ls", "wget", "true")
PAUSE_ENTRYPOINT = ("/bin/sleep", "2147483647")
"""A sandbox's process only has to hold the pod's namespaces open."""
TAG = "latest"
"""The tag inside the archive's layout; the importer names the image it loads."""


def busybox_image(archive: Path, *, entrypoint: Sequence[str] = ("/bin/sh",)) -> Path:
    """Writes an OCI layout tar of a busybox-static image to `archive` (replacing it) and returns `archive`."""
    umoci = binaries.ensure_umoci()
    busybox = binaries.ensure_busybox_static()
    with tempfile.TemporaryDirectory(prefix="novasphere-oci-") as work:
        layout, bundle = Path(work) / "layout", Path(work) / "bundle"
        image = f"{layout}:{TAG}"
        _run(umoci, "init", "--layout", str(layout))
        _run(umoci, "new", "--image", image)
        _run(umoci, "unpack", "--image", image, str(bundle))
        bin_dir = bundle / "rootfs" / "bin"
        bin_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy2(busybox, bin_dir / "busybox")
        for applet in APPLETS:
            (bin_dir / applet).symlink_to("busybox")
        (bundle / "rootfs" / "tmp").mkdir(mode=0o1777, exist_ok=True)
        _run(umoci, "repack", "--image", image, str(bundle))
        config = ["--config.entrypoint=" + part for part in entrypoint]
        _run(umoci, "config", "--image", image, "--config.env=PATH=/bin", *config)
        _run(umoci, "gc", "--layout", str(layout))
        archive.parent.mkdir(parents=True, exist_ok=True)
        staging = archive.with_name(f".{archive.name}.tmp")
        with tarfile.open(staging, "w") as tar:
            for entry in sorted(layout.iterdir()):
                tar.add(entry, arcname=entry.name)
        staging.rename(archive)
    return archive


def _run(*argv: str | Path) -> None:
    result = subprocess.run([str(part) for part in argv], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))} failed ({result.returncode}): {result.stderr.strip()}")
