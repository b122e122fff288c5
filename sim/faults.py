"""Fault knobs, set per Wukong by annotation, so tests and demos can make a VM misbehave on purpose.

| annotation                               | value   | effect                                                      |
|------------------------------------------|---------|-------------------------------------------------------------|
| `sim.novasphere.dev/fail-start`          | "true"  | every VMI fails while booting (phase Failed, event Stopped) |
| `sim.novasphere.dev/boot-seconds`        | seconds | time from Scheduled to Running (simulated seconds)          |
| `sim.novasphere.dev/crash-after-seconds` | seconds | a Running VMI crashes (phase Failed) after that long        |
| `sim.novasphere.dev/pvc-never-binds`     | "true"  | the provisioner never provisions the Wukong's claims        |
| `sim.novasphere.dev/shutdown-seconds`    | seconds | how long the guest takes to shut down (capped by the grace  |
|                                          |         | period, which kills it when shorter)                        |
| `sim.novasphere.dev/malformed-metrics`    | mode    | metrics-server answers the VM's launcher pod malformed      |
| `sim.novasphere.dev/malformed-prometheus` | mode    | Prometheus answers queries about the VM's instance malformed |
| `sim.novasphere.dev/malformed-console`    | mode    | virt-api answers the VM's `vnc`/`console` malformed          |

The malformed modes, for a client's handling of a backend that answers badly: `html-500` (HTTP 500 with an HTML
page), `not-json` (200, a text body), `wrong-shape` (200, JSON of the wrong shape), `truncated` (200, the right JSON
cut in half). Each body holds `BACKEND_TEXT`, so a test can check that none of it reaches the API's clients.
"""

from __future__ import annotations

import json

from aiohttp import web

from sim.kubeapi import Body
from sim.runtime import Informer, deep_get

PREFIX = "sim.novasphere.dev/"
FAIL_START = PREFIX + "fail-start"
BOOT_SECONDS = PREFIX + "boot-seconds"
CRASH_AFTER_SECONDS = PREFIX + "crash-after-seconds"
PVC_NEVER_BINDS = PREFIX + "pvc-never-binds"
SHUTDOWN_SECONDS = PREFIX + "shutdown-seconds"
MALFORMED_METRICS = PREFIX + "malformed-metrics"
MALFORMED_PROMETHEUS = PREFIX + "malformed-prometheus"
MALFORMED_CONSOLE = PREFIX + "malformed-console"
MALFORMED_MODES = ("html-500", "not-json", "wrong-shape", "truncated")
BACKEND_TEXT = "sim-backend-internals: stack trace at backend.go:42"


def _annotations(wukong: Body | None) -> dict[str, str]:
    return dict(deep_get(wukong, "metadata", "annotations", default={}))


def wukong_of_vm_name(vm_name: str, namespace: str, wukongs: Informer) -> Body | None:
    """vmoperator names the VM `<wukong>-vm` (wukong.md §0.2)."""
    return wukongs.get(namespace, vm_name.removesuffix("-vm")) if vm_name.endswith("-vm") else None


def fails_to_start(wukong: Body | None) -> bool:
    return _annotations(wukong).get(FAIL_START) == "true"


def boot_seconds(wukong: Body | None, default: float) -> float:
    return _seconds(_annotations(wukong).get(BOOT_SECONDS), default)


def shutdown_seconds(wukong: Body | None, default: float) -> float:
    return _seconds(_annotations(wukong).get(SHUTDOWN_SECONDS), default)


def crash_after_seconds(wukong: Body | None) -> float | None:
    value = _annotations(wukong).get(CRASH_AFTER_SECONDS)
    return _seconds(value, 0.0) if value is not None else None


def claim_never_binds(pvc: Body, wukongs: Informer) -> bool:
    """Claims are named `<wukong>-<disk>` with no label or owner (wukong.md §4), so the Wukong is found by name."""
    namespace, name = pvc["metadata"]["namespace"], pvc["metadata"]["name"]
    for cut in (i for i, char in enumerate(name) if char == "-"):
        wukong = wukongs.get(namespace, name[:cut])
        if wukong is not None and _annotations(wukong).get(PVC_NEVER_BINDS) == "true":
            disks = deep_get(wukong, "spec", "disks", default=[])
            if any(f"{name[:cut]}-{d.get('name')}" == name for d in disks):
                return True
    return False


def malformed_mode(wukong: Body | None, annotation: str) -> str | None:
    """The malformed mode a Wukong asks of one backend (`MALFORMED_*`), None for none or an unknown one."""
    mode = _annotations(wukong).get(annotation)
    return mode if mode in MALFORMED_MODES else None


def malformed_answer(mode: str, well_formed: Body, wrong_shape: object) -> web.Response:
    """`well_formed` spoiled as `mode` says; `wrong_shape` is valid JSON in the shape the client does not expect."""
    if mode == "html-500":
        page = (
            f"<html><head><title>500 Internal Server Error</title></head><body><pre>{BACKEND_TEXT}</pre></body></html>"
        )
        return web.Response(status=500, text=page, content_type="text/html")
    if mode == "not-json":
        return web.Response(text=f"{BACKEND_TEXT}\nthis is not JSON", content_type="text/plain")
    if mode == "wrong-shape":
        return web.json_response(wrong_shape)
    text = json.dumps({**well_formed, "note": BACKEND_TEXT})
    return web.Response(text=text[: len(text) // 2], content_type="application/json")


def _seconds(value: str | None, default: float) -> float:
    try:
        return max(float(value), 0.0) if value is not None else default
    except ValueError:
        return default
