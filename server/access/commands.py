"""Exposing a VM's ports: create, list and delete its access Services.

A Service selects the VM's launcher pod by KubeVirt's own label `vm.kubevirt.io/name: <vm>` (vmoperator sets no
template labels, so a selector on the VM's labels would find nothing), is owned by the VirtualMachine (the garbage
collector removes it with the VM), and carries NovaSphere's label: only such Services are listed and deleted here.
kube-apiserver allocates node ports; its refusals (a node port taken or out of range) become field violations.
"""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from server import errors, names
from server.access.cache import SELECTOR_LABEL, WUKONG_LABEL, AccessCache, ExposedService, exposed
from server.auth import Caller
from server.kube import errors as kube_errors
from server.kube import services
from server.kube.client import JsonObject, KubeClient
from server.wukongs.cache import WukongState
from server.wukongs.queries import WukongQueries

SERVICE_TYPES = {"nodeport": "NodePort", "loadbalancer": "LoadBalancer"}
PROTOCOLS = ("TCP", "UDP")
MAX_PORTS = 20
PORT_NAME_MAX = 15
# kube-apiserver's wording for a node port it cannot give (`spec.ports[N].nodePort: Invalid value: X: ...`).
_NODE_PORT_ERROR = re.compile(r"spec\.ports\[(\d+)\]\.nodePort: Invalid value: (\d+): (.*?)(?:$|, spec\.|\])")
_RANGE = re.compile(r"range of valid ports is (\d+-\d+)")


@dataclass(frozen=True)
class PortInput:
    port: int
    target_port: int = 0
    node_port: int = 0
    protocol: str = ""
    name: str = ""


class AccessCommands:
    def __init__(self, *, kube: KubeClient, cache: AccessCache, wukongs: WukongQueries) -> None:
        self._kube = kube
        self._cache = cache
        self._wukongs = wukongs

    async def list(self, caller: Caller, *, namespace: str, name: str) -> list[ExposedService]:
        state = await self._wukongs.get(caller, namespace=namespace, name=name, vm_id="")
        return self._cache.of_wukong(state.namespace, state.name)

    async def create(
        self,
        caller: Caller,
        *,
        namespace: str,
        name: str,
        service_type: str,
        service_name: str,
        ports: Sequence[PortInput],
    ) -> ExposedService:
        kind = SERVICE_TYPES.get(service_type.strip().lower())
        violations = [] if kind else [errors.FieldViolation("service_type", "use NodePort or LoadBalancer")]
        if service_name and not names.is_dns_1035_label(service_name):
            violations.append(
                errors.FieldViolation(
                    "service_name", "use at most 63 lowercase letters, digits and '-', starting with a letter"
                )
            )
        violations += _check_ports(ports)
        if violations:
            raise errors.InvalidArgument(violations)
        state = await self._wukongs.get(caller, namespace=namespace, name=name, vm_id="")
        assert kind is not None
        body = _service(state, kind, service_name or _generated_name(state.name, kind), ports)
        try:
            created = await services.create(self._kube, body)
        except kube_errors.Conflict as error:
            raise errors.AccessServiceAlreadyExists(namespace=state.namespace, name=body["metadata"]["name"]) from error
        except kube_errors.Invalid as error:
            raise errors.InvalidArgument(_violations_of(error.detail)) from error
        return exposed(created, self._cache.node_address())

    async def delete(self, caller: Caller, *, namespace: str, name: str, service_name: str) -> None:
        state = await self._wukongs.get(caller, namespace=namespace, name=name, vm_id="")
        found = next((s for s in self._cache.of_wukong(state.namespace, state.name) if s.name == service_name), None)
        if found is None:
            raise errors.AccessServiceNotFound(namespace=state.namespace, name=service_name, wukong=state.name)
        with contextlib.suppress(kube_errors.NotFound):  # gone meanwhile: what was asked
            await services.delete(self._kube, namespace=state.namespace, name=service_name, uid=found.uid)


def _check_ports(ports: Sequence[PortInput]) -> list[errors.FieldViolation]:
    if not ports:
        return [errors.FieldViolation("ports", "give at least one port to expose")]
    if len(ports) > MAX_PORTS:
        return [errors.FieldViolation("ports", f"at most {MAX_PORTS} ports per Service")]
    violations: list[errors.FieldViolation] = []
    seen: dict[tuple[int, str], int] = {}
    seen_names: dict[str, int] = {}
    for index, port in enumerate(ports):
        field = f"ports[{index}]"
        protocol = (port.protocol or "TCP").upper()
        for attribute, value, required in (
            ("port", port.port, True),
            ("target_port", port.target_port, False),
            ("node_port", port.node_port, False),
        ):
            if (required or value) and not 1 <= value <= 65535:
                violations.append(errors.FieldViolation(f"{field}.{attribute}", f"must be 1-65535 (got {value})"))
        if protocol not in PROTOCOLS:
            violations.append(errors.FieldViolation(f"{field}.protocol", "use TCP or UDP"))
        if (port.port, protocol) in seen:
            violations.append(
                errors.FieldViolation(
                    f"{field}.port",
                    f"{protocol} port {port.port} is already given in ports[{seen[port.port, protocol]}]",
                )
            )
        seen.setdefault((port.port, protocol), index)
        name = port.name or f"{protocol.lower()}-{port.port}"
        if not names.is_dns_1035_label(name, max_length=PORT_NAME_MAX):
            violations.append(
                errors.FieldViolation(
                    f"{field}.name",
                    f"use at most {PORT_NAME_MAX} lowercase letters, digits and '-', starting with a letter",
                )
            )
        elif name in seen_names:
            violations.append(
                errors.FieldViolation(f"{field}.name", f"'{name}' is already used by ports[{seen_names[name]}]")
            )
        seen_names.setdefault(name, index)
    return violations


def _service(state: WukongState, kind: str, name: str, ports: Sequence[PortInput]) -> JsonObject:
    vm = state.vm
    if vm is None:
        raise errors.FailedPrecondition(
            f"Wukong '{state.name}' has no VirtualMachine yet (it is {state.status.power_state.name}); expose its "
            "ports once vmoperator has created it",
            reason=errors.Reason.VM_NOT_CREATED,
        )
    vm_name = vm["metadata"]["name"]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": state.namespace,
            "labels": {services.MANAGED_BY_LABEL: services.MANAGED_BY, WUKONG_LABEL: state.name},
            "ownerReferences": [
                {
                    "apiVersion": "kubevirt.io/v1",
                    "kind": "VirtualMachine",
                    "name": vm_name,
                    "uid": vm["metadata"]["uid"],
                }
            ],
        },
        "spec": {
            "type": kind,
            "selector": {SELECTOR_LABEL: vm_name},
            "ports": [_port(port) for port in ports],
        },
    }


def _port(port: PortInput) -> JsonObject:
    protocol = (port.protocol or "TCP").upper()
    body: JsonObject = {
        "name": port.name or f"{protocol.lower()}-{port.port}",
        "protocol": protocol,
        "port": port.port,
        "targetPort": port.target_port or port.port,
    }
    if port.node_port:
        body["nodePort"] = port.node_port
    return body


def _generated_name(wukong: str, kind: str) -> str:
    return f"{wukong}-{kind.lower()}-{secrets.token_hex(3)}"[: names.DNS_LABEL_MAX].rstrip("-")


def _violations_of(detail: str) -> list[errors.FieldViolation]:
    """kube-apiserver's refusal, in terms of the request's fields (never its raw text)."""
    found = []
    for index, value, problem in _NODE_PORT_ERROR.findall(detail):
        field = f"ports[{index}].node_port"
        if "already allocated" in problem:
            found.append(
                errors.FieldViolation(field, f"node port {value} is taken by another Service; choose another or 0")
            )
        else:
            allowed = _RANGE.search(problem)
            span = f" ({allowed.group(1)})" if allowed else ""
            found.append(
                errors.FieldViolation(field, f"node port {value} is outside the cluster's node port range{span}; or 0")
            )
    return found or [errors.FieldViolation("ports", "Kubernetes refused the Service's ports; check them")]
