"""The derived status: power state from KubeVirt's printableStatus (reference/kubevirt.md §3.3), never from
vmoperator's stale phase (reference/wukong.md §7); the actions each state allows."""

from __future__ import annotations

from typing import Any

import pytest

from server.auth import Caller
from server.wukongs import actions
from server.wukongs.actions import Action
from server.wukongs.status import PowerState, derive, wants_running

SPEC = {"cpu": 2, "memory": "2Gi", "disks": [{"name": "root", "size": "10Gi", "storageClassName": "local-path"}]}


def wukong(phase: str = "", spec: dict[str, Any] | None = None, deleting: bool = False) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "w", "namespace": "n", "resourceVersion": "1"}
    if deleting:
        metadata["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"metadata": metadata, "spec": spec or SPEC, "status": {"phase": phase} if phase else {}}


def vm(printable: str, conditions: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": "w-vm"}, "status": {"printableStatus": printable, "conditions": conditions or []}}


def vmi(phase: str = "Running", cores: int = 2, memory: str = "2Gi") -> dict[str, Any]:
    return {
        "metadata": {"name": "w-vm"},
        "spec": {"domain": {"cpu": {"cores": cores}, "memory": {"guest": memory}}},
        "status": {
            "phase": phase,
            "nodeName": "sim-node-1",
            "conditions": [{"type": "Ready", "status": "True"}],
            "interfaces": [
                {"name": "default", "ipAddress": "127.16.0.5", "ipAddresses": ["127.16.0.5"], "mac": "02:00"}
            ],
            "phaseTransitionTimestamps": [{"phase": "Running", "phaseTransitionTimestamp": "2026-01-01T00:00:05Z"}],
        },
    }


@pytest.mark.parametrize(
    ("printable", "expected"),
    [
        ("Running", PowerState.RUNNING),
        ("Paused", PowerState.PAUSED),
        ("Stopped", PowerState.STOPPED),
        ("Starting", PowerState.STARTING),
        ("Stopping", PowerState.STOPPING),
        ("Terminating", PowerState.DELETING),
        ("Migrating", PowerState.MIGRATING),
        ("Provisioning", PowerState.PROVISIONING),
        ("WaitingForVolumeBinding", PowerState.PROVISIONING),
        ("CrashLoopBackOff", PowerState.ERROR),
        ("ErrorUnschedulable", PowerState.ERROR),
        ("ErrImagePull", PowerState.ERROR),
        ("ImagePullBackOff", PowerState.ERROR),
        ("ErrorPvcNotFound", PowerState.ERROR),
        ("DataVolumeError", PowerState.ERROR),
        ("WaitingForReceiver", PowerState.STARTING),
        ("Unknown", PowerState.UNKNOWN),
        ("SomethingNew", PowerState.UNKNOWN),
    ],
)
def test_every_printable_status_maps_to_a_power_state(printable: str, expected: PowerState) -> None:
    status = derive(wukong("Running"), vm(printable), None, None)
    assert (status.power_state, status.printable_status) == (expected, printable)


def test_the_stale_operator_phase_running_never_shows_a_stopped_vm_as_running() -> None:
    """wukong.md §7: after a stop vmoperator's phase stays `Running`; KubeVirt says `Stopped`."""
    assert derive(wukong("Running"), vm("Stopped"), None, None).power_state is PowerState.STOPPED


def test_before_the_vm_exists_it_is_provisioning_or_the_operators_error() -> None:
    assert derive(wukong("Creating"), None, None, None).power_state is PowerState.PROVISIONING
    no_disks = derive(wukong("Error", {"cpu": 1, "memory": "1Gi", "disks": []}), None, None, None)
    assert (no_disks.power_state, no_disks.message) == (
        PowerState.ERROR,
        "vmoperator rejected the spec: it needs at least one disk",
    )


def test_a_deleting_wukong_is_deleting_whatever_kubevirt_says() -> None:
    assert derive(wukong("Running", deleting=True), vm("Running"), vmi(), None).power_state is PowerState.DELETING


def test_a_running_instance_gives_node_addresses_resources_and_start_time() -> None:
    status = derive(wukong("Running"), vm("Running"), vmi(), None)
    assert (status.node, status.cpu, status.memory_bytes, status.ready) == ("sim-node-1", 2, 2 << 30, True)
    assert [(i.name, i.ip_address, i.mac) for i in status.interfaces] == [("default", "127.16.0.5", "02:00")]
    assert status.start_time is not None
    assert status.start_time.isoformat() == "2026-01-01T00:00:05+00:00"
    assert status.restart_required is False


def test_a_spec_change_while_running_requires_a_restart_and_shows_what_runs() -> None:
    changed = dict(SPEC, cpu=4, memory="4Gi")
    status = derive(wukong("Running", changed), vm("Running"), vmi(cores=2, memory="2Gi"), None)
    assert (status.restart_required, status.cpu, status.memory_bytes) == (True, 2, 2 << 30)
    flagged = derive(wukong("Running"), vm("Running", [{"type": "RestartRequired", "status": "True"}]), vmi(), None)
    assert flagged.restart_required is True


def test_a_stopped_vm_shows_the_spec_resources_and_no_node() -> None:
    status = derive(wukong("Running", dict(SPEC, cpu=3)), vm("Stopped"), None, None)
    assert (status.cpu, status.node, status.interfaces, status.restart_required) == (3, "", (), False)


@pytest.mark.parametrize(
    ("start_strategy", "expected"),
    [
        (None, True),
        ({}, False),
        ({"runStrategy": "Always"}, False),
        ({"autoStart": True}, True),
        ({"autoStart": False}, False),
    ],
)
def test_intent_follows_vmoperators_defaulting(start_strategy: dict[str, Any] | None, expected: bool) -> None:
    spec = dict(SPEC) if start_strategy is None else dict(SPEC, startStrategy=start_strategy)
    assert wants_running(spec) is expected


EVERYONE = Caller("u", "t", frozenset({"admin"}))


@pytest.mark.parametrize(
    ("printable", "spec_extra", "expected"),
    [
        ("Running", {}, {Action.STOP, Action.RESTART, Action.PAUSE, Action.UPDATE, Action.DELETE, Action.CONSOLE}),
        ("Paused", {}, {Action.STOP, Action.RESTART, Action.RESUME, Action.UPDATE, Action.DELETE, Action.CONSOLE}),
        ("Stopped", {"startStrategy": {"autoStart": False}}, {Action.START, Action.UPDATE, Action.DELETE}),
        ("Starting", {}, {Action.STOP, Action.UPDATE, Action.DELETE}),
        ("CrashLoopBackOff", {}, {Action.STOP, Action.UPDATE, Action.DELETE}),
        ("Terminating", {}, set()),
    ],
)
def test_available_actions_follow_the_state(printable: str, spec_extra: dict[str, Any], expected: set[Action]) -> None:
    status = derive(wukong("Running", dict(SPEC, **spec_extra)), vm(printable), None, None)
    assert set(actions.available(status, EVERYONE)) == expected


def test_available_actions_are_only_those_the_caller_may_take() -> None:
    status = derive(wukong("Running"), vm("Running"), vmi(), None)
    viewer = Caller("v", "t", frozenset({"vm:query", "vm:console:access"}))
    assert actions.available(status, viewer) == (Action.CONSOLE,)
