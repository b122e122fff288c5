"""Wires the simulated controllers to informers and runs them until cancelled."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from sim import kubeapi, nodes
from sim.cdi import DataVolumes
from sim.events import EventRecorder
from sim.kubeapi import Body, KubeApi
from sim.kubevirt.virt_api import VirtApi
from sim.kubevirt.vm_controller import VmController
from sim.kubevirt.vmi_controller import CREATED_BY, Delays, VmiController, claims_of
from sim.loadbalancer import LoadBalancers
from sim.metrics_server import MetricsServer
from sim.prometheus import Prometheus
from sim.provisioner import Provisioner
from sim.runtime import Clock, Controller, Informer, key_of
from sim.vmoperator import Caches, VmOperator

log = logging.getLogger("sim")


@dataclass(frozen=True)
class Settings:
    kubeconfig: Path
    speed: float = 1.0
    """Simulated seconds per real second: 10 makes a 10 s poll take 1 s."""
    node_count: int = 3
    events: bool = True
    delays: Delays = field(default_factory=Delays)
    import_seconds: float = 20.0
    ready_file: Path | None = None
    virt_api_port: int = 0
    """Where the simulated virt-api listens on 127.0.0.1 (0: any free port; the APIService follows it)."""
    prometheus_port: int | None = None
    """Where the simulated Prometheus listens on 127.0.0.1 (0: any free port); None serves none."""
    prometheus_url_file: Path | None = None
    """Where to write the simulated Prometheus's URL once it listens."""


WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
REPORT_SECONDS = 10.0


async def _report(api: KubeApi, wukongs: Informer, controllers: dict[str, Controller]) -> None:
    """A line every 10 s with the write rate (what kube-apiserver must absorb), the Wukongs known and the retries."""
    previous, started = 0, time.monotonic()
    while True:
        await asyncio.sleep(REPORT_SECONDS)
        writes = sum(api.requests[m] for m in WRITE_METHODS)
        retries = ", ".join(f"{name} {c.retries}" for name, c in controllers.items() if c.retries)
        log.info(
            "stats: %d Wukongs, %d writes (%.0f/s over the last %.0f s), %d reads, up %.0f s; retries: %s",
            len(wukongs),
            writes,
            (writes - previous) / REPORT_SECONDS,
            REPORT_SECONDS,
            api.requests["GET"],
            time.monotonic() - started,
            retries or "none",
        )
        by_kind = ", ".join(f"{k} {n}" for k, n in api.requests.most_common() if " " in k)
        log.info("requests by kind: %s", by_kind)
        previous = writes


async def run(settings: Settings) -> None:
    api = KubeApi.from_kubeconfig(settings.kubeconfig)
    clock = Clock(settings.speed)
    events = EventRecorder(api, enabled=settings.events)
    try:
        await nodes.ensure(api, settings.node_count)
        informers = {
            resource.plural: Informer(api, resource)
            for resource in (
                kubeapi.WUKONGS,
                kubeapi.VIRTUAL_MACHINES,
                kubeapi.VIRTUAL_MACHINE_INSTANCES,
                kubeapi.PODS,
                kubeapi.PVCS,
                kubeapi.PVS,
                kubeapi.NODES,
                kubeapi.DATA_VOLUMES,
                kubeapi.STORAGE_CLASSES,
                kubeapi.SERVICES,
            )
        }
        wukongs, vms, vmis = informers["wukongs"], informers["virtualmachines"], informers["virtualmachineinstances"]
        pods, pvcs, pvs = informers["pods"], informers["persistentvolumeclaims"], informers["persistentvolumes"]
        data_volumes, storage_classes = informers["datavolumes"], informers["storageclasses"]
        pods.add_index(CREATED_BY, lambda pod: [v] if (v := pod["metadata"].get("labels", {}).get(CREATED_BY)) else [])
        pods.add_index("claims", claims_of)
        vms.add_index("claims", claims_of)

        operator = VmOperator(
            api=api,
            caches=Caches(
                wukongs=wukongs,
                vms=vms,
                vmis=vmis,
                pvcs=pvcs,
                data_volumes=data_volumes,
                storage_classes=storage_classes,
            ),
        )
        vm_controller = VmController(
            api=api,
            clock=clock,
            events=events,
            vms=vms,
            vmis=vmis,
            pvcs=pvcs,
            data_volumes=data_volumes,
            storage_classes=storage_classes,
        )
        vmi_controller = VmiController(
            api=api,
            clock=clock,
            events=events,
            delays=settings.delays,
            vmis=vmis,
            pods=pods,
            nodes=informers["nodes"],
            pvcs=pvcs,
            data_volumes=data_volumes,
            wukongs=wukongs,
        )
        provisioner = Provisioner(api=api, pvcs=pvcs, pvs=pvs, storage_classes=storage_classes, wukongs=wukongs)
        cdi = DataVolumes(
            api=api,
            clock=clock,
            data_volumes=data_volumes,
            pvcs=pvcs,
            storage_classes=storage_classes,
            import_seconds=settings.import_seconds,
        )
        load_balancers = LoadBalancers(api=api, services=informers["services"])
        controllers = {
            "vmoperator": Controller("vmoperator", operator.reconcile, clock=clock, workers=16),
            "vm": Controller("virt-controller/vm", vm_controller.reconcile, clock=clock, workers=16),
            "vmi": Controller("virt-controller/vmi", vmi_controller.reconcile, clock=clock, workers=16),
            "kubelet": Controller("kubelet", vmi_controller.reconcile_pod, clock=clock, workers=8),
            "claims": Controller("provisioner/claims", provisioner.reconcile_claim, clock=clock, workers=4),
            "volumes": Controller("provisioner/volumes", provisioner.reconcile_volume, clock=clock, workers=2),
            "cdi": Controller("cdi", cdi.reconcile, clock=clock, workers=4),
            # One worker: addresses are handed out from what the informer shows, one Service at a time.
            "loadbalancer": Controller("loadbalancer", load_balancers.reconcile, clock=clock, workers=1),
        }

        def on_wukong(old: Body | None, new: Body | None) -> None:
            namespace, name = key_of(new or old or {})
            controllers["vmoperator"].enqueue((namespace, name))  # vmoperator watches only Wukongs (wukong.md §5.1)
            controllers["vmi"].enqueue((namespace, f"{name}-vm"))  # fault annotations act at once

        def on_vm(old: Body | None, new: Body | None) -> None:
            controllers["vm"].enqueue(key_of(new or old or {}))

        def on_vmi(old: Body | None, new: Body | None) -> None:
            key = key_of(new or old or {})
            controllers["vmi"].enqueue(key)
            controllers["vm"].enqueue(key)  # VM and VMI share the name

        def on_pod(old: Body | None, new: Body | None) -> None:
            pod = new or old or {}
            key = key_of(pod)
            controllers["kubelet"].enqueue(key)
            vmi_name = pod["metadata"].get("labels", {}).get("vm.kubevirt.io/name")
            if vmi_name:
                controllers["vmi"].enqueue((key[0], vmi_name))

        def on_claim(old: Body | None, new: Body | None) -> None:
            namespace, name = key_of(new or old or {})
            controllers["claims"].enqueue((namespace, name))
            controllers["cdi"].enqueue((namespace, name))
            for vm in vms.by_index("claims", name):
                if vm["metadata"]["namespace"] == namespace:
                    controllers["vm"].enqueue(key_of(vm))
            for pod in pods.by_index("claims", name):
                if pod["metadata"]["namespace"] == namespace:
                    controllers["kubelet"].enqueue(key_of(pod))

        def on_data_volume(old: Body | None, new: Body | None) -> None:
            on_claim(old, new)  # a DataVolume and its claim share the name

        def on_volume(old: Body | None, new: Body | None) -> None:
            controllers["volumes"].enqueue(key_of(new or old or {}))

        wukongs.on_change(on_wukong)
        vms.on_change(on_vm)
        vmis.on_change(on_vmi)
        pods.on_change(on_pod)
        pvcs.on_change(on_claim)
        data_volumes.on_change(on_data_volume)
        pvs.on_change(on_volume)
        informers["services"].on_change(lambda old, new: controllers["loadbalancer"].enqueue(key_of(new or old or {})))

        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(clock.run(), name="clock")
            for informer in informers.values():
                tasks.create_task(informer.run(), name=f"watch {informer.resource.plural}")
            await asyncio.gather(*(informer.synced.wait() for informer in informers.values()))
            for controller in controllers.values():
                tasks.create_task(controller.run(), name=controller.name)
            virt_api = VirtApi(api=api, events=events, vmis=vmis, wukongs=wukongs, port=settings.virt_api_port)
            tasks.create_task(virt_api.run(), name="virt-api")
            await virt_api.ready.wait()
            metrics_server = MetricsServer(
                api=api, pods=pods, vmis=vmis, nodes=informers["nodes"], wukongs=wukongs, speed=settings.speed
            )
            tasks.create_task(metrics_server.run(), name="metrics-server")
            await metrics_server.ready.wait()
            if settings.prometheus_port is not None:
                prometheus = Prometheus(vmis=vmis, wukongs=wukongs, speed=settings.speed, port=settings.prometheus_port)
                tasks.create_task(prometheus.run(), name="prometheus")
                await prometheus.ready.wait()
                if settings.prometheus_url_file is not None:
                    settings.prometheus_url_file.write_text(prometheus.url + "\n")
            log.info(
                "simulating KubeVirt + vmoperator: speed %.1fx, %d nodes, events %s; %d Wukongs",
                settings.speed,
                settings.node_count,
                "on" if settings.events else "off",
                len(wukongs),
            )
            if settings.ready_file is not None:
                settings.ready_file.write_text("ready\n")
            tasks.create_task(_report(api, wukongs, controllers), name="report")
    finally:
        await api.close()
