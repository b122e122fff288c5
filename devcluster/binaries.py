"""The programs the local stack needs: kube-apiserver and kube-controller-manager built from the Go module in
`devcluster/k8s/`, grpcurl from `tools/grpcurl/`, protoc-gen-openapiv2 (for `make gen`) from `tools/openapiv2/`,
each cached per version outside the repository, and etcd from Debian.

No registry reachable here ships a kube-apiserver binary, so it is compiled from `k8s.io/kubernetes` (six to eight
minutes cold on two cores); the result is kept in `$XDG_CACHE_HOME/novasphere/k8s-<version>/` (default
`~/.cache/...`), so only the first run on a machine pays for it.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

MODULE_DIR = Path(__file__).resolve().parent / "k8s"
GRPCURL_MODULE_DIR = Path(__file__).resolve().parent.parent / "tools" / "grpcurl"
OPENAPIV2_MODULE_DIR = Path(__file__).resolve().parent.parent / "tools" / "openapiv2"
OPENAPIV2_PACKAGE = "github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv2"
COMMANDS = ("kube-apiserver", "kube-controller-manager")


@dataclass(frozen=True)
class Binaries:
    """Absolute paths of the control plane's executables."""

    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    kubernetes_version: str


def kubernetes_version() -> str:
    """The Kubernetes version pinned in devcluster/k8s/go.mod, e.g. `v1.32.4`."""
    return _required_version(MODULE_DIR, "k8s.io/kubernetes")


def _required_version(module_dir: Path, module: str) -> str:
    go_mod = module_dir / "go.mod"
    match = re.search(rf"^\s*{re.escape(module)} (v\d+\.\d+\.\d+)\b", go_mod.read_text(), re.M)
    if match is None:
        raise RuntimeError(f"{go_mod} does not require {module}")
    return match.group(1)


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "novasphere"


def ensure(*, log: bool = True) -> Binaries:
    """Returns the binaries, building Kubernetes and installing etcd first if they are missing."""
    version = kubernetes_version()
    directory = _go_build(
        module_dir=MODULE_DIR,
        packages=[f"k8s.io/kubernetes/cmd/{name}" for name in COMMANDS],
        directory=cache_root() / f"k8s-{version}",
        ldflags=_version_ldflags(version),
        what=f"Kubernetes {version} (once; ~6 min cold)",
        log=log,
    )
    return Binaries(
        etcd=_ensure_etcd(log=log),
        kube_apiserver=directory / "kube-apiserver",
        kube_controller_manager=directory / "kube-controller-manager",
        kubernetes_version=version,
    )


def ensure_grpcurl(*, log: bool = True) -> Path:
    """grpcurl, built from the module pinned in tools/grpcurl/ (for `make run` hints and the reflection test)."""
    module_dir = GRPCURL_MODULE_DIR
    version = _required_version(module_dir, "github.com/fullstorydev/grpcurl")
    directory = _go_build(
        module_dir=module_dir,
        packages=["github.com/fullstorydev/grpcurl/cmd/grpcurl"],
        directory=cache_root() / f"grpcurl-{version}",
        ldflags=f"-s -w -X main.version={version}",
        what=f"grpcurl {version}",
        log=log,
    )
    return directory / "grpcurl"


def ensure_openapiv2(*, log: bool = True) -> Path:
    """protoc-gen-openapiv2, built from the module pinned in tools/openapiv2/ (for `make gen`'s OpenAPI document)."""
    version = _required_version(OPENAPIV2_MODULE_DIR, "github.com/grpc-ecosystem/grpc-gateway/v2")
    directory = _go_build(
        module_dir=OPENAPIV2_MODULE_DIR,
        packages=[OPENAPIV2_PACKAGE],
        directory=cache_root() / f"protoc-gen-openapiv2-{version}",
        ldflags="-s -w",
        what=f"protoc-gen-openapiv2 {version}",
        log=log,
    )
    return directory / "protoc-gen-openapiv2"


def _version_ldflags(version: str) -> str:
    """Without these the server reports `v0.0.0-master+$Format:%H$`, which `kubectl version` rejects."""
    major, minor = version.lstrip("v").split(".")[:2]
    return " ".join(
        [
            "-s -w",
            f"-X k8s.io/component-base/version.gitVersion={version}",
            f"-X k8s.io/component-base/version.gitMajor={major}",
            f"-X k8s.io/component-base/version.gitMinor={minor}",
        ]
    )


def _go_build(*, module_dir: Path, packages: list[str], directory: Path, ldflags: str, what: str, log: bool) -> Path:
    """Compiles `packages` of the committed Go module into `directory`, unless already there. Atomic, and done once
    even when several processes ask at the same time."""
    names = [package.rsplit("/", 1)[-1] for package in packages]
    if all((directory / name).is_file() for name in names):
        return directory
    directory.parent.mkdir(parents=True, exist_ok=True)
    with open(directory.parent / f".{directory.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if all((directory / name).is_file() for name in names):
            return directory  # another process built it while we waited for the lock
        go = shutil.which("go")
        if go is None:
            raise RuntimeError(f"the Go toolchain is needed to build {what}; `go` is not on PATH")
        if log:
            print(f"devcluster: building {what} into {directory}", file=sys.stderr, flush=True)
        started = time.monotonic()
        staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
        try:
            subprocess.run(
                [go, "build", "-trimpath", "-ldflags", ldflags, "-o", f"{staging}/", *packages],
                cwd=module_dir,
                # go.sum is committed, so every download is checked against it; the checksum database is not
                # reachable here and is not needed for modules go.sum lists.
                env={**os.environ, "GOFLAGS": "-mod=readonly", "GOTOOLCHAIN": "local", "GOSUMDB": "off"},
                check=True,
            )
            if directory.exists():
                shutil.rmtree(directory)
            staging.rename(directory)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        if log:
            print(f"devcluster: built {what} in {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    return directory


def _ensure_etcd(*, log: bool) -> Path:
    return _ensure_debian_package("etcd", "etcd-server", log=log)


def _apt_install(package: str, *, log: bool) -> None:
    if log:
        print(f"devcluster: installing Debian's {package}", file=sys.stderr)
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [*sudo, "apt-get", "install", "-y", "-q", "--no-install-recommends", package]
    if subprocess.run(install, env=env, check=False).returncode != 0:
        subprocess.run([*sudo, "apt-get", "update", "-q"], env=env, check=True)
        subprocess.run(install, env=env, check=True)


def ensure_chromium(*, log: bool = True) -> Path:
    """Debian's chromium, for the browser tests (playwright-core drives it; it never downloads a browser)."""
    return _ensure_debian_package("chromium", "chromium", log=log)


CJK_FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")


def ensure_cjk_font(*, log: bool = True) -> Path:
    """A Chinese font for chromium (Debian's brings none), so the browser tests draw the console's zh-CN pages as
    text, not boxes, in their screenshots."""
    if not CJK_FONT.exists():
        _apt_install("fonts-wqy-microhei", log=log)
    return CJK_FONT


def _ensure_debian_package(executable: str, package: str, *, log: bool) -> Path:
    found = shutil.which(executable)
    if found:
        return Path(found)
    _apt_install(package, log=log)
    found = shutil.which(executable) or (f"/usr/bin/{executable}" if Path(f"/usr/bin/{executable}").exists() else None)
    if found is None:
        raise RuntimeError(f"{package} was installed but no `{executable}` executable was found")
    return Path(found)
