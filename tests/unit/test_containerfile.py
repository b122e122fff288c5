"""The Containerfile (registry builds with docker or podman) and devcluster/image.py (`make image`, no registry)
build the same image: same Debian suite and packages, wheels, copied trees, user, paths, environment, entrypoint
and labels. Read from both here, so neither can change alone."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from devcluster import image

CONTAINERFILE = Path(__file__).resolve().parents[2] / "Containerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments left out."""
    text = re.sub(
        r"\s*\\\n\s*",
        " ",
        "\n".join(line for line in CONTAINERFILE.read_text().splitlines() if not line.lstrip().startswith("#")),
    )
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in text.splitlines() if line.strip()]


def stages() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The build stage's instructions and the final stage's."""
    parsed = instructions()
    starts = [index for index, (name, _) in enumerate(parsed) if name == "FROM"]
    return parsed[starts[0] : starts[-1]], parsed[starts[-1] :]


def commands(build: list[tuple[str, str]]) -> str:
    return "\n".join(arguments for name, arguments in build if name == "RUN")


def test_the_final_stage_runs_like_the_built_image() -> None:
    _, final = stages()
    last = dict(final)
    assert last["USER"] == image.USER
    assert last["WORKDIR"] == image.APP_DIR
    assert dict(pair.split("=", 1) for pair in shlex.split(last["ENV"])) == image.ENV
    assert json.loads(last["ENTRYPOINT"]) == list(image.ENTRYPOINT)
    assert json.loads(last["CMD"]) == list(image.CMD)
    labels = {pair.split("=", 1)[0] for pair in shlex.split(last["LABEL"])}
    assert labels == set(image.api_labels()) | {"org.opencontainers.image.source"}
    assert final[0] == ("FROM", "scratch")


def test_the_build_stage_makes_the_same_root_filesystem() -> None:
    build, _ = stages()
    suite = next(arguments for name, arguments in instructions() if name == "ARG" and arguments.startswith("DEBIAN_"))
    assert suite == f"DEBIAN_SUITE={image.DEBIAN_SUITE}"
    run = commands(build)
    assert f"mmdebstrap {' '.join(image.MMDEBSTRAP_OPTIONS)} " in run
    assert f"rm -rf {' '.join(image.DEBIAN_TRIMMED)} " in run
    for mount in image.WRITABLE_MOUNTS:
        assert re.search(rf"mkdir -p [^&]*\b{mount.lstrip('/')}\b", run)
    assert re.findall(r"--prune (\S+)", run) == list(image.NOT_IN_IMAGE)
    assert f"--target /rootfs{image.LIB_DIR} " in run
    assert f"--python-platform {image.WHEEL_PLATFORM} " in run
    assert f"ln -s {image.LIB_DIR}/envoy/_bin/envoy /rootfs{image.ENVOY_LINK}" in run
    assert "compileall -q --invalidation-mode unchecked-hash /usr/lib/python3.11 /opt/novasphere" in run


@pytest.mark.parametrize("tree", image.APP_TREES)
def test_each_app_tree_is_copied_to_the_same_place(tree: str) -> None:
    build, _ = stages()
    copies = [arguments.split() for name, arguments in build if name == "COPY"]
    assert [tree, f"/rootfs{image.APP_DIR}/{tree}"] in copies
