"""`make bench`'s pure helpers: the seeded objects of a running VM read as RUNNING by the API's own cache, and the
table and JSON line the benchmark prints."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bench import doors, measure, report, seeding
from bench.__main__ import rss_target_mib
from devcluster import stack as devstack
from novasphere_envoy import config as envoy_config
from server.kube import kubevirt, pods, wukongs
from server.wukongs.cache import WukongCache
from server.wukongs.status import PowerState, derive


def _objects(vm: seeding.RunningVm) -> dict[str, dict[str, Any]]:
    """The four objects as kube-apiserver holds them once written (uids and resourceVersions filled in)."""
    wukong = seeding.wukong(vm)
    wukong["metadata"].update(uid="wukong-uid", resourceVersion="11")
    wukong["status"] = seeding.wukong_status(vm)
    machine = seeding.virtual_machine(vm, "wukong-uid")
    machine["metadata"].update(uid="vm-uid", resourceVersion="12")
    machine["status"] = seeding.virtual_machine_status(vm)
    instance = seeding.instance(vm, "vm-uid")
    instance["metadata"].update(uid="vmi-uid", resourceVersion="13")
    pod = seeding.launcher_pod(vm, "vmi-uid")
    pod["metadata"].update(uid="pod-uid", resourceVersion="14", creationTimestamp="2026-01-01T00:00:00Z")
    pod["status"] = seeding.launcher_pod_status(vm)
    instance["status"].update(seeding.instance_status(vm, "pod-uid"))
    return {"wukong": wukong, "vm": machine, "vmi": instance, "pod": pod}


def test_a_seeded_vm_derives_as_running() -> None:
    vm = seeding.numbered("bench", 7)
    objects = _objects(vm)
    status = derive(objects["wukong"], objects["vm"], objects["vmi"], objects["pod"])
    assert status.power_state is PowerState.RUNNING
    assert status.ready
    assert not status.restart_required
    assert status.node == vm.node
    assert [interface.ip_address for interface in status.interfaces] == [vm.pod_ip]
    assert status.guest_os == "Ubuntu 22.04.3 LTS"
    assert status.cpu == vm.cpu


def test_the_cache_joins_the_four_seeded_objects() -> None:
    """Through the informer kinds as the API server mirrors them (names, the launcher's VMI label, `keep`)."""
    cache = WukongCache()
    vms = [seeding.numbered("bench", index) for index in range(3)]
    listed = [_objects(vm) for vm in vms]
    for kind, part in (
        (wukongs.KIND, "wukong"),
        (kubevirt.VIRTUAL_MACHINES, "vm"),
        (kubevirt.INSTANCES, "vmi"),
        (pods.LAUNCHERS, "pod"),
    ):
        keep = getattr(kind, "keep", lambda item: item)
        cache.replace(kind, [keep(objects[part]) for objects in listed], 20)
    assert cache.synced
    states = {state.name: state for state in cache.states()}
    assert sorted(states) == [vm.name for vm in vms]
    assert all(state.status.power_state is PowerState.RUNNING for state in states.values())
    assert all(state.pod is not None for state in states.values())


def test_seeded_objects_are_named_as_kubevirt_names_them() -> None:
    vm = seeding.numbered("bench", 12345)
    objects = _objects(vm)
    assert objects["vm"]["metadata"]["name"] == objects["vmi"]["metadata"]["name"] == "vm-12345-vm"
    assert kubevirt.wukong_of(objects["vmi"]["metadata"]["name"]) == "vm-12345"
    labels = objects["pod"]["metadata"]["labels"]
    assert labels["kubevirt.io"] == "virt-launcher"
    assert labels[pods.VMI_NAME_LABEL] == "vm-12345-vm"
    assert objects["pod"]["metadata"]["name"].startswith("virt-launcher-vm-12345-vm-")
    mounts = [
        m["mountPath"]
        for c in objects["pod"]["spec"]["containers"]
        for m in c["volumeMounts"]
        if c["name"] == "compute"
    ]
    assert len(mounts) == len(set(mounts)), "kube-apiserver refuses a container mounting one path twice"


def test_seeded_objects_are_about_as_big_as_real_ones() -> None:
    sizes = {part: len(json.dumps(body)) for part, body in _objects(seeding.numbered("bench", 1)).items()}
    assert sizes["pod"] > 6000
    assert sizes["vmi"] > 4000
    assert sizes["vm"] > 2000
    assert sizes["wukong"] > 1000


def test_rss_target_meets_both_targets() -> None:
    assert rss_target_mib(2000) == pytest.approx(256)
    assert rss_target_mib(10000) == pytest.approx(512)


def test_list_pages() -> None:
    assert [measure.list_pages(n) for n in (0, 1, 500, 501, 10001)] == [1, 1, 1, 2, 21]


def test_kube_calls_are_summed_over_codes() -> None:
    text = "\n".join(
        [
            "# HELP novasphere_kube_request_duration_seconds Kubernetes API calls",
            'novasphere_kube_request_duration_seconds_count{code="2xx",resource="pods",verb="list"} 3.0',
            'novasphere_kube_request_duration_seconds_count{code="500",resource="pods",verb="list"} 1.0',
            'novasphere_kube_request_duration_seconds_count{code="2xx",resource="wukongs",verb="watch"} 2.0',
            'novasphere_kube_request_duration_seconds_bucket{code="2xx",resource="pods",le="0.1",verb="list"} 3.0',
        ]
    )
    calls = measure.parse_kube_calls(text)
    assert calls.count("list", "pods") == 4
    assert calls.total == 6
    assert calls.lists() == {"wukongs": 0, "virtualmachines": 0, "virtualmachineinstances": 0, "pods": 4}


def test_rows_check_their_target_on_the_ratio_or_the_value() -> None:
    assert report.Row("a", "a", 10, 20, "ms", 1).verdict == "PASS"
    assert report.Row("b", "b", 30, 20, "ms", 1).verdict == "MISS"
    assert report.Row("c", "c", 300, 100, "MiB", 256, "value").verdict == "MISS"
    assert report.Row("d", "d", 200, 100, "MiB", 256, "value").verdict == "PASS"
    assert report.Row("e", "e", 1, None).verdict == ""
    assert report.Row("f", "f", 1, 0).ratio is None


def test_one_table_and_one_json_line() -> None:
    sections = {
        "Start-up": [report.Row("startup_s", "start → SERVING", 3.2, 2.5, "s", 1.5)],
        "Memory": [report.Row("memory_rss_mib", "RSS", 300.0, 100.0, "MiB", 256, "value"), report.Row("x", "x", None)],
    }
    text = report.table(sections)
    lines = text.splitlines()
    assert lines[0].split() == ["figure", "ours", "reference", "ratio", "target"]
    assert "Start-up" in lines
    assert "Memory" in lines
    assert any(line.endswith("PASS") and "3.20 s" in line and "1.28" in line for line in lines)
    assert any(line.endswith("MISS") and "≤ 256 MiB" in line for line in lines)
    decoded = json.loads(report.json_line({"wukongs": 10, "api_rss_mib": 300.0}, sections))
    assert decoded["wukongs"] == 10
    assert decoded["api_rss_mib"] == 300.0
    assert decoded["figures"]["startup_s"] == {
        "ours": 3.2,
        "reference": 2.5,
        "ratio": 1.28,
        "unit": "s",
        "target": 1.5,
        "target_on": "ratio",
        "pass": True,
    }
    assert decoded["figures"]["x"]["ours"] is None
    assert "\n" not in report.json_line({}, sections)
    assert " 300 MiB" in text


def test_each_envoy_variant_takes_out_its_part_and_nothing_else() -> None:
    """`make bench-doors --variants` prices a part by an Envoy without it: a variant that matched nothing in the
    rendered bootstrap (a renamed filter or field) would price nothing and still print a number."""
    rendered = envoy_config.render_json(devstack.envoy_settings(grpc=1, console=2, tls=None))

    def parts(bootstrap: dict[str, Any]) -> tuple[list[str], int, list[bool]]:
        nodes = list(doors._walk(bootstrap))
        filters = [f["name"] for node in nodes for f in node.get("httpFilters", [])]
        logs = sum(len(node.get("accessLog", [])) for node in nodes)
        defaults = [node["alwaysPrintPrimitiveFields"] for node in nodes if "alwaysPrintPrimitiveFields" in node]
        return filters, logs, defaults

    filters, logs, defaults = parts(json.loads(rendered))
    assert envoy_config.LUA in filters
    assert logs >= 1
    assert defaults == [True]
    expected = {
        "as deployed": (filters, logs, defaults),
        "without the Lua filter": ([f for f in filters if f != envoy_config.LUA], logs, defaults),
        "without the access log": (filters, 0, defaults),
        "without default values printed (a contract change)": (filters, logs, [False]),
    }
    assert set(doors.VARIANTS) == set(expected)
    for variant, alter in doors.VARIANTS.items():
        bootstrap = json.loads(rendered)
        if alter is not None:
            alter(bootstrap)
        assert parts(bootstrap) == expected[variant], variant
