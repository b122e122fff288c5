"""The programs the local stack needs: kube-apiserver and kube-controller-manager built from the Go module in
`devcluster/k8s/` and grpcurl from `tools/grpcurl/`, each cached per version outside the repository, and etcd from
Debian.

No registry reachable here ships a kube-apiserver binary, so it is compiled from `k8s.io/kubernetes` (six to eight
minutes cold on two cores); the result is kept in `$XDG_CACHE_HOME/novasphere/k8s-<version>/` (default
`~/.cache/...`), so only the first run on a machine pays for it.
"""

from __future__ import annotations

import contextlib
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
COMMANDS = ("kube-apiserver", "kube-controller-manager")
NODE_COMMANDS = ("kubelet", "kube-scheduler")


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


@dataclass(frozen=True)
class NodeBinaries:
    """Absolute paths of what a real node runs: the kubelet and the scheduler from the same Kubernetes module as the
    control plane, and Debian's container runtime."""

    kubelet: Path
    kube_scheduler: Path
    containerd: Path
    ctr: Path
    runc: Path
    cni_bin_dir: Path


CNI_BIN_DIR = Path("/usr/lib/cni")


def ensure_node(*, log: bool = True) -> NodeBinaries:
    """Returns the real node's binaries, building kubelet and kube-scheduler (once; ~4 min cold) and installing
    containerd, runc and the CNI plugins from Debian first if missing. Kept in a directory of its own, so the control
    plane's cached build is never rebuilt or raced for."""
    version = kubernetes_version()
    directory = _go_build(
        module_dir=MODULE_DIR,
        packages=[f"k8s.io/kubernetes/cmd/{name}" for name in NODE_COMMANDS],
        directory=cache_root() / f"k8s-node-{version}",
        ldflags=_version_ldflags(version),
        what=f"kubelet and kube-scheduler {version} (once; ~5 min cold)",
        log=log,
    )
    if not (CNI_BIN_DIR / "loopback").exists():
        _apt_install("containernetworking-plugins", log=log)
    return NodeBinaries(
        kubelet=directory / "kubelet",
        kube_scheduler=directory / "kube-scheduler",
        containerd=_ensure_debian_package("containerd", "containerd", log=log),
        ctr=_ensure_debian_package("ctr", "containerd", log=log),
        runc=_ensure_debian_package("runc", "runc", log=log),
        cni_bin_dir=CNI_BIN_DIR,
    )


def ensure_umoci(*, log: bool = True) -> Path:
    """umoci, which packs OCI images here without a registry or a daemon."""
    return _ensure_debian_package("umoci", "umoci", log=log)


BUSYBOX_STATIC = Path("/bin/busybox")


def ensure_busybox_static(*, log: bool = True) -> Path:
    """A statically linked busybox, whole in one file, for images with nothing else in them (Debian's `busybox`
    package is dynamically linked; `busybox-static` replaces it)."""
    if not _debian_package_installed("busybox-static"):
        _apt_install("busybox-static", log=log)
    return BUSYBOX_STATIC


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


def ensure_promtool(*, log: bool = True) -> Path:
    """promtool (checks the alert rules in deploy/monitoring/), from Debian's `prometheus` package unpacked into the
    cache, not installed: installing it would also start a Prometheus server on the machine."""
    cached = sorted(cache_root().glob("promtool-*/promtool"))
    if cached:
        return cached[-1]
    cache_root().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_root()) as scratch:
        if log:
            print("devcluster: unpacking promtool from Debian's prometheus", file=sys.stderr)
        sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
        download = ["apt-get", "download", "-q", "prometheus"]
        if subprocess.run(download, cwd=scratch, check=False).returncode != 0:  # a fresh machine has no package lists
            subprocess.run([*sudo, "apt-get", "update", "-q"], check=True)
            subprocess.run(download, cwd=scratch, check=True)
        package = next(Path(scratch).glob("prometheus_*.deb"))
        subprocess.run(["dpkg-deb", "-x", str(package), f"{scratch}/root"], check=True)
        version = package.name.split("_")[1].replace("+", "-").replace(":", "-")
        target = cache_root() / f"promtool-{version}"
        (Path(scratch) / "bin").mkdir()
        os.replace(f"{scratch}/root/usr/bin/promtool", f"{scratch}/bin/promtool")
        with contextlib.suppress(OSError):  # another process unpacked it meanwhile
            os.rename(f"{scratch}/bin", target)
    return target / "promtool"


def _debian_package_installed(package: str) -> bool:
    status = subprocess.run(
        ["dpkg-query", "--show", "--showformat=${Status}", package], capture_output=True, text=True, check=False
    )
    return status.stdout.strip() == "install ok installed"


def _ensure_debian_package(executable: str, package: str, *, log: bool) -> Path:
    found = shutil.which(executable)
    if found:
        return Path(found)
    _apt_install(package, log=log)
    found = shutil.which(executable) or (f"/usr/bin/{executable}" if Path(f"/usr/bin/{executable}").exists() else None)
    if found is None:
        raise RuntimeError(f"{package} was installed but no `{executable}` executable was found")
    return Path(found)


HELM_MODULE_DIR = Path(__file__).resolve().parent / "helm"


def ensure_helm(*, log: bool = True) -> Path:
    """helm v4, built from the module pinned in devcluster/helm/ (the chart's lint, template and install tests; no
    registry here ships its binary)."""
    version = _required_version(HELM_MODULE_DIR, "helm.sh/helm/v4")
    directory = _go_build(
        module_dir=HELM_MODULE_DIR,
        packages=["helm.sh/helm/v4/cmd/helm"],
        directory=cache_root() / f"helm-{version}",
        ldflags=f"-s -w -X helm.sh/helm/v4/internal/version.version={version}",
        what=f"helm {version} (once; 3-10 min cold)",
        log=log,
    )
    return directory / "helm"
