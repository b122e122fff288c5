"""VMs (Wukongs): get, describe, create, set, delete, the power operations, and their exposed ports."""

from __future__ import annotations

import json
import random
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import click

from vmctl import errors
from vmctl.cli import State, namespaced, output_option, pass_state
from vmctl.task_commands import describe_target, exit_for, follow

OUTPUT_ONLY = ("uid", "createTime", "etag", "operatorStatus", "status", "availableActions", "cursor", "detail")
RESUME_BACKOFF_MAX = 30.0


def register(cli: click.Group) -> None:
    for command in (get, describe, create, delete, set_field, expose, services, unexpose, stats):
        cli.add_command(command)
    cli.add_command(get, "list")
    for operation in ("start", "stop", "restart", "pause", "resume"):
        cli.add_command(_operation_command(operation))


def stub_of(session: Any) -> Any:
    from novasphere.v1.wukong_service_pb2_grpc import WukongServiceStub

    return WukongServiceStub(session.channel)


def _ip(w: Any) -> str:
    return next((i.ip_address for i in w.status.interfaces if i.ip_address), "")


def _access(w: Any) -> str:
    return ",".join(p.access_addr for s in w.service_info for p in s.ports if p.access_addr)


def _columns(all_namespaces: bool) -> list[tuple[str, Any]]:
    from vmctl.output import age

    columns: list[tuple[str, Any]] = [("NAME", lambda w: w.name)]
    if all_namespaces:
        columns.append(("NAMESPACE", lambda w: w.namespace))
    return [
        *columns,
        ("STATUS", lambda w: w.status.printable_status),
        ("CPU", lambda w: str(w.spec.cpu)),
        ("MEMORY", lambda w: w.spec.memory),
        ("NODE", lambda w: w.status.node),
        ("IP", _ip),
        ("AGE", lambda w: age(w.create_time)),
    ]


WIDE = (
    ("IMAGE", lambda w: w.status.image or (w.spec.disks[0].image if w.spec.disks else "")),
    ("ACCESS", _access),
    ("READY", lambda w: "true" if w.status.ready else "false"),
    ("VMID", lambda w: w.uid),
)


@click.command()
@click.argument("names", nargs=-1)
@namespaced
@click.option("-A", "--all-namespaces", is_flag=True, help="Every namespace of your tenant.")
@click.option("--status", default="", help="Power states, e.g. running,stopped.")
@click.option("--name-like", default="", help="Names containing this.")
@click.option("-l", "--selector", default="", help="A label selector, e.g. app=web,tier!=db.")
@click.option("--sort-by", default="", help="name, namespace, status, cpu, memory or createTime.")
@click.option("--order", type=click.Choice(["asc", "desc"]), default="asc")
@click.option("--page", type=int, default=0, help="Only this page (default: every page).")
@click.option("--page-size", type=int, default=0, help="VMs per page (default: the server's).")
@click.option("-w", "--watch", is_flag=True, help="Then print each change as it happens (Ctrl-C to stop).")
@output_option()
@pass_state
def get(state: State, /, names: tuple[str, ...], namespace: str, all_namespaces: bool, **options: Any) -> None:
    """Show VMs: the named ones, or those the filters select (alias: list)."""
    from novasphere.v1 import wukong_service_pb2
    from vmctl.output import as_dict, check_format, emit

    output = check_format(options["output"])
    session = state.session(namespace)
    where = "" if all_namespaces else session.namespace
    stub = stub_of(session)
    columns = _columns(all_namespaces or not where)
    if options["watch"] and output in ("json", "yaml"):
        # JSON Lines of WatchWukong's events: the current state as ADDED, then each change
        for event in _watch(session, stub, _watch_request(where, names, options), ""):
            if not names or event.wukong.name in names:
                print(json.dumps(as_dict(event)), flush=True)
        return
    cursor = ""
    if names:
        # Rows and names show nothing of a VM's detail: the basic view, which the server answers from its cache alone.
        whole = output in ("json", "yaml") or output.startswith("custom-columns=")
        view = wukong_service_pb2.WUKONG_VIEW_FULL if whole else wukong_service_pb2.WUKONG_VIEW_BASIC
        found = [
            session.call(stub.GetWukong, wukong_service_pb2.GetWukongRequest(namespace=where, name=name, view=view))
            for name in names
        ]
        cursor = max((w.cursor for w in found), default="", key=lambda c: int(c or 0))
    else:
        found, cursor = _list(session, stub, where, options)
    emit(found, output, columns=columns, wide=WIDE, kind="wukong", single=len(names) == 1)
    if options["watch"]:
        for event in _watch(session, stub, _watch_request(where, names, options), cursor):
            if not names or event.wukong.name in names:
                emit([event.wukong], output, columns=columns, wide=WIDE, kind="wukong", single=True)
                sys.stdout.flush()


def _watch_request(namespace: str, names: tuple[str, ...], options: dict[str, Any]) -> Any:
    from novasphere.v1 import wukong_service_pb2

    return wukong_service_pb2.WatchWukongRequest(
        namespace=namespace,
        name=names[0] if len(names) == 1 else "",
        status=options["status"],
        name_like=options["name_like"],
        label_selector=options["selector"],
    )


def _list(session: Any, stub: Any, namespace: str, options: dict[str, Any]) -> tuple[list[Any], str]:
    from novasphere.v1 import wukong_service_pb2

    request = wukong_service_pb2.ListWukongsRequest(
        namespace=namespace,
        status=options["status"],
        name_like=options["name_like"],
        label_selector=options["selector"],
        sort_by=options["sort_by"],
        sort_order=options["order"],
        page=options["page"],
        page_size=options["page_size"],
    )
    found: list[Any] = []
    while True:
        page = session.call(stub.ListWukongs, request)
        found += page.wukongs
        if options["page"] or not page.next_page_token:
            return found, page.cursor
        request.page_token = page.next_page_token
        request.page = 0


def _watch(session: Any, stub: Any, request: Any, cursor: str) -> Iterator[Any]:
    """Changes after `cursor`, resumed from the last cursor after a dropped stream (jittered back-off); a cursor
    too old for the server ends the watch with its error."""
    from novasphere.v1 import wukong_pb2

    kinds = wukong_pb2.WukongEvent.Type
    failures = 0
    while True:
        request.cursor = cursor
        try:
            for event in session.stream(stub.WatchWukong, request):
                failures = 0
                if event.cursor:
                    cursor = event.cursor
                if event.type == kinds.ERROR:
                    raise errors.VmctlError(f"the watch ended: {event.error.message}", errors.UNAVAILABLE)
                if event.type in (kinds.ADDED, kinds.MODIFIED, kinds.DELETED):
                    yield event
        except errors.VmctlError as error:
            if error.exit_code != errors.UNAVAILABLE or "RESYNC" in error.message:
                raise
        failures += 1
        pause = min(RESUME_BACKOFF_MAX, 0.5 * 2**failures) * random.uniform(0.5, 1.0)  # noqa: S311
        print(f"(stream dropped; resuming in {pause:.1f} s)", file=sys.stderr)
        time.sleep(pause)


@click.command()
@click.argument("name")
@namespaced
@pass_state
def describe(state: State, name: str, namespace: str) -> None:
    """A VM in detail: spec, status, networks, disks, console, access services, recent tasks and events."""
    from novasphere.v1 import wukong_service_pb2
    from vmctl.output import age, table
    from vmctl.task_commands import outcome

    session = state.session(namespace)
    w = session.call(
        stub_of(session).GetWukong, wukong_service_pb2.GetWukongRequest(namespace=session.namespace, name=name)
    )
    detail = w.detail
    lines = [
        ("Name", w.name),
        ("Namespace", w.namespace),
        ("VM ID", w.uid),
        ("Labels", ", ".join(f"{k}={v}" for k, v in sorted(w.labels.items())) or "<none>"),
        ("Created", f"{age(w.create_time)} ago"),
        ("Status", w.status.printable_status + (f" ({w.status.message})" if w.status.message else "")),
        ("Restart required", "yes" if w.status.restart_required else "no"),
        ("CPU", str(w.spec.cpu)),
        ("Memory", w.spec.memory),
        ("Node", w.status.node or "<none>"),
        ("SSH key Secret", w.spec.ssh_key_secret or "<none>"),
        (
            "Console",
            ("available" if detail.console.available else "not available")
            + f" ({', '.join(detail.console.protocols)})",
        ),
        ("Actions", ", ".join(_action_names(w)) or "<none>"),
    ]
    width = max(len(key) for key, _ in lines) + 1
    for key, value in lines:
        click.echo(f"{key + ':':<{width}} {value}")
    sections: list[tuple[str, list[tuple[str, Any]], list[Any]]] = [
        (
            "Networks",
            [
                ("NAME", lambda n: n.name),
                ("TYPE", lambda n: n.type),
                ("ATTACHMENT", lambda n: n.nad_name),
                ("IP", lambda n: n.ip_address),
                ("MAC", lambda n: n.mac),
            ],
            list(detail.networks),
        ),
        (
            "Disks",
            [
                ("NAME", lambda d: d.name),
                ("SIZE", lambda d: d.requested_size),
                ("CAPACITY", lambda d: d.capacity),
                ("CLASS", lambda d: d.storage_class_name),
                ("CLAIM", lambda d: f"{d.claim_name} ({d.claim_phase})"),
                ("EXPANDABLE", lambda d: "yes" if d.expandable else "no"),
                ("IMAGE", lambda d: d.image),
            ],
            list(detail.disks),
        ),
        (
            "Access services",
            [
                ("NAME", lambda s: s.name),
                ("TYPE", lambda s: s.service_type),
                ("PORTS", lambda s: ", ".join(f"{p.port}/{p.protocol}→{p.access_addr or 'pending'}" for p in s.ports)),
            ],
            list(detail.access_services),
        ),
        (
            "Recent tasks",
            [
                ("ID", lambda t: t.id),
                ("OPERATION", describe_target),
                ("BY", lambda t: t.requested_by),
                ("AGE", lambda t: age(t.create_time)),
                ("OUTCOME", outcome),
            ],
            list(detail.recent_tasks),
        ),
        (
            "Events",
            [
                ("TYPE", lambda e: e.type),
                ("REASON", lambda e: e.reason),
                ("OBJECT", lambda e: f"{e.object_kind}/{e.object_name}"),
                ("AGE", lambda e: age(e.last_time)),
                ("MESSAGE", lambda e: e.message),
            ],
            list(detail.events),
        ),
    ]
    for title, columns, rows in sections:
        click.echo(f"\n{title}:")
        if rows:
            table(columns, rows)
        else:
            click.echo("  <none>")


def _action_names(w: Any) -> list[str]:
    from novasphere.v1 import wukong_pb2

    return [wukong_pb2.Wukong.Action.Name(a).lower() for a in w.available_actions]


@click.command()
@click.option("-f", "--filename", required=True, help="A YAML or JSON file of one or more VMs, or - for stdin.")
@namespaced
@click.option("--dry-run", is_flag=True, help="Have the server check them (validateOnly) and create nothing.")
@pass_state
def create(state: State, filename: str, namespace: str, dry_run: bool) -> None:
    """Create VMs from a file: a Wukong as `get -o yaml` prints it, a List of them, or several YAML documents.

    Each VM's request id is derived from its content, so running the same command again after a network failure
    creates nothing twice."""
    import yaml
    from google.protobuf import json_format

    from novasphere.v1 import wukong_pb2, wukong_service_pb2

    text = sys.stdin.read() if filename == "-" else read_text(filename)
    try:
        documents = [d for d in yaml.safe_load_all(text) if d]
    except yaml.YAMLError as error:
        raise errors.VmctlError(f"{filename} is not YAML or JSON: {error}", errors.USAGE) from error
    items = [item for d in documents for item in (d.get("items", []) if d.get("kind") == "List" else [d])]
    if not items:
        raise errors.VmctlError(f"{filename} holds no VM", errors.USAGE)
    session = state.session(namespace)
    stub = stub_of(session)
    failed = 0
    for index, item in enumerate(items):
        body = {k: v for k, v in item.items() if k not in (*OUTPUT_ONLY, "kind", "apiVersion", "serviceInfo")}
        where = namespace or body.pop("namespace", "") or session.namespace
        body.pop("namespace", None)
        try:
            wukong = json_format.ParseDict(body, wukong_pb2.Wukong())
        except json_format.ParseError as error:
            raise errors.VmctlError(f"{filename}: VM {index + 1}: {error}", errors.USAGE) from error
        request_id = str(uuid.uuid5(uuid.NAMESPACE_URL, json.dumps([where, body], sort_keys=True)))
        request = wukong_service_pb2.CreateWukongRequest(
            namespace=where, wukong=wukong, request_id=request_id, validate_only=dry_run
        )
        try:
            made = session.call(stub.CreateWukong, request)
        except errors.VmctlError as error:
            if len(items) == 1:
                raise
            failed += 1
            click.echo(f"error: wukong/{wukong.name}: {error.message}", err=True)
            continue
        click.echo(f"wukong/{made.name} {'checked (dry run)' if dry_run else 'created'} in {made.namespace}")
    if failed:
        sys.exit(errors.FAILED)


def read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as source:
            return source.read()
    except OSError as error:
        raise errors.VmctlError(f"cannot read {path}: {error.strerror}", errors.USAGE) from error


@click.command("set")
@click.argument("field", type=click.Choice(["cpu", "memory"]))
@click.argument("name")
@click.argument("value")
@namespaced
@pass_state
def set_field(state: State, field: str, name: str, value: str, namespace: str) -> None:
    """Change one VM's vCPUs or memory (a running VM applies it at its next start)."""
    from google.protobuf import field_mask_pb2

    from novasphere.v1 import wukong_pb2, wukong_service_pb2

    session = state.session(namespace)
    wukong = wukong_pb2.Wukong(name=name, namespace=session.namespace)
    if field == "cpu":
        if not value.isdigit():
            raise errors.VmctlError(f"cpu must be a whole number of vCPUs, not '{value}'", errors.USAGE)
        wukong.spec.cpu = int(value)
    else:
        wukong.spec.memory = value
    request = wukong_service_pb2.UpdateWukongRequest(
        wukong=wukong, update_mask=field_mask_pb2.FieldMask(paths=[f"spec.{field}"])
    )
    changed = session.call(stub_of(session).UpdateWukong, request)
    restart = " (restart it to apply)" if changed.status.restart_required else ""
    click.echo(f"wukong/{changed.name} {field} set to {value}{restart}")


def _wait_options(function: Any) -> Any:
    for option in (
        click.option("--no-wait", is_flag=True, help="Print the task ids and return at once."),
        click.option("--timeout", default=300.0, show_default=True, help="Seconds to wait for the end."),
    ):
        function = option(function)
    return function


def _run(session: Any, started: list[Any], no_wait: bool, timeout: float) -> None:
    if no_wait:
        for task in started:
            click.echo(f"task/{task.id} {describe_target(task)}")
        return
    exit_for(follow(session, started, timeout=timeout))


def _operation_command(operation: str) -> click.Command:
    forceable = operation in ("stop", "restart")

    @click.command(operation, help=f"{operation.title()} VMs: the named ones, or by label (-l), or --all (a batch).")
    @click.argument("names", nargs=-1)
    @namespaced
    @click.option("-l", "--selector", default="", help="Every VM with these labels (one batch).")
    @click.option("--all", "every", is_flag=True, help="Every VM in the namespace (one batch).")
    @_wait_options
    @pass_state
    def command(
        state: State, /, names: tuple[str, ...], namespace: str, selector: str, every: bool, **options: Any
    ) -> None:
        _operate(state, operation, names, namespace, selector, every, **options)

    if forceable:
        command = click.option("--force", is_flag=True, help="At once, without a graceful shutdown.")(command)
    return command


def _operate(
    state: State,
    operation: str,
    names: tuple[str, ...],
    namespace: str,
    selector: str,
    every: bool,
    *,
    force: bool = False,
    delete_disks: bool = False,
    no_wait: bool,
    timeout: float,
) -> None:
    from novasphere.v1 import task_pb2, wukong_service_pb2

    if sum((bool(names), bool(selector), every)) != 1:
        raise errors.VmctlError(
            f"name the VMs to {operation}, or give -l SELECTOR or --all (one of them)", errors.USAGE
        )
    session = state.session(namespace)
    stub = stub_of(session)
    request_id = str(uuid.uuid4())
    if len(names) == 1:
        method = getattr(stub, f"{operation.title()}Wukong")
        request_type = getattr(wukong_service_pb2, f"{operation.title()}WukongRequest")
        extra: dict[str, Any] = {"force": force} if operation in ("stop", "restart") else {}
        if operation == "delete":
            extra["delete_disks"] = delete_disks
        started = [
            session.call(
                method,
                request_type(namespace=session.namespace, name=names[0], request_id=request_id, **extra),
            )
        ]
    else:
        if every:
            names = tuple(w.name for w in list_all(session, stub, session.namespace))
            if not names:
                click.echo(f"no VMs in {session.namespace or 'your tenant'}")
                return
        request = wukong_service_pb2.BatchWukongOperationRequest(
            operation=task_pb2.Task.Operation.Value(operation.upper()),
            namespace=session.namespace,
            names=list(names),
            label_selector=selector,
            force=force,
            delete_disks=delete_disks,
            request_id=request_id,
        )
        started = [session.call(stub.BatchWukongOperation, request)]
    _run(session, started, no_wait, timeout)


def list_all(session: Any, stub: Any, namespace: str, status: str = "") -> list[Any]:
    """Every VM of the namespace (every page), optionally in these power states."""
    options = {"status": status, "name_like": "", "selector": "", "sort_by": "", "order": "asc", "page": 0}
    return _list(session, stub, namespace, {**options, "page_size": 0})[0]


@click.command()
@click.argument("names", nargs=-1)
@namespaced
@click.option("-l", "--selector", default="", help="Every VM with these labels (one batch).")
@click.option("--delete-disks", is_flag=True, help="Also delete their disks (vmoperator leaves them behind).")
@_wait_options
@pass_state
def delete(state: State, /, names: tuple[str, ...], namespace: str, selector: str, **options: Any) -> None:
    """Delete VMs (their disks only with --delete-disks)."""
    _operate(state, "delete", names, namespace, selector, False, **options)


@click.command()
@click.argument("name")
@namespaced
@click.option("--type", "service_type", type=click.Choice(["NodePort", "LoadBalancer"]), default="NodePort")
@click.option("--port", "ports", multiple=True, required=True, help="PORT[:TARGET[:NODEPORT]][/udp]; repeatable.")
@click.option("--service-name", default="", help="The Service's name (default: generated).")
@pass_state
def expose(
    state: State, name: str, namespace: str, service_type: str, ports: tuple[str, ...], service_name: str
) -> None:
    """Expose a VM's ports outside the cluster as a Service."""
    from novasphere.v1 import access_service_pb2
    from novasphere.v1.access_service_pb2_grpc import AccessServiceStub

    specs = [_port(text) for text in ports]
    session = state.session(namespace)
    made = session.call(
        AccessServiceStub(session.channel).CreateAccessService,
        access_service_pb2.CreateAccessServiceRequest(
            namespace=session.namespace,
            name=name,
            service_type=service_type,
            service_name=service_name,
            ports=[access_service_pb2.PortSpec(**spec) for spec in specs],
        ),
    )
    for port in made.ports:
        click.echo(f"service/{made.name} {port.port}/{port.protocol} → {port.access_addr or 'pending'}")


def _port(text: str) -> dict[str, Any]:
    body, _, protocol = text.partition("/")
    parts = body.split(":")
    if not 1 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
        raise errors.VmctlError(
            f"--port '{text}' is not PORT[:TARGET[:NODEPORT]][/udp], e.g. 22 or 22:22:30022", errors.USAGE
        )
    numbers = [int(p) for p in parts] + [0, 0]
    return {"port": numbers[0], "target_port": numbers[1], "node_port": numbers[2], "protocol": protocol.upper()}


@click.command()
@click.argument("name")
@namespaced
@output_option()
@pass_state
def services(state: State, name: str, namespace: str, output: str) -> None:
    """A VM's exposed ports."""
    from novasphere.v1 import access_service_pb2
    from novasphere.v1.access_service_pb2_grpc import AccessServiceStub
    from vmctl.output import check_format, emit

    session = state.session(namespace)
    found = session.call(
        AccessServiceStub(session.channel).ListAccessServices,
        access_service_pb2.ListAccessServicesRequest(namespace=session.namespace, name=name),
    )
    emit(
        list(found.services),
        check_format(output),
        columns=(
            ("NAME", lambda s: s.name),
            ("TYPE", lambda s: s.service_type),
            ("PORTS", lambda s: ", ".join(f"{p.port}/{p.protocol}→{p.access_addr or 'pending'}" for p in s.ports)),
        ),
        kind="service",
    )


@click.command()
@click.argument("name")
@click.argument("service")
@namespaced
@pass_state
def unexpose(state: State, name: str, service: str, namespace: str) -> None:
    """Delete one of a VM's access Services."""
    from novasphere.v1 import access_service_pb2
    from novasphere.v1.access_service_pb2_grpc import AccessServiceStub

    session = state.session(namespace)
    session.call(
        AccessServiceStub(session.channel).DeleteAccessService,
        access_service_pb2.DeleteAccessServiceRequest(namespace=session.namespace, name=name, service_name=service),
    )
    click.echo(f"service/{service} deleted")


@click.command()
@namespaced
@pass_state
def stats(state: State, namespace: str) -> None:
    """VMs by power state, and vCPU and memory against quota, per namespace."""
    from novasphere.v1 import stats_service_pb2
    from novasphere.v1.stats_service_pb2_grpc import StatsServiceStub
    from vmctl.output import table

    session = state.session(namespace)
    found = session.call(
        StatsServiceStub(session.channel).GetStats, stats_service_pb2.GetStatsRequest(namespace=namespace)
    )
    rows = [(n.namespace, n.usage) for n in found.namespaces] + [("TOTAL", found.total)]
    table(
        [
            ("NAMESPACE", lambda r: r[0]),
            ("VMS", lambda r: str(r[1].vms)),
            ("RUNNING", lambda r: str(r[1].running)),
            ("STOPPED", lambda r: str(r[1].stopped)),
            ("ERROR", lambda r: str(r[1].error)),
            ("VCPU", lambda r: str(r[1].vcpu_total)),
            ("MEMORY MB", lambda r: str(r[1].memory_mb_total)),
        ],
        rows,
    )
