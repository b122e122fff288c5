"""`vmctl edit`: a VM's labels and spec in $EDITOR (or the fields a file gives), sent as an update mask of what
changed, with the etag."""

from __future__ import annotations

from typing import Any

import click

from vmctl import errors
from vmctl.cli import State, namespaced, pass_state
from vmctl.vm_commands import stub_of


def register(cli: click.Group) -> None:
    cli.add_command(edit)


EDIT_HEADER = """\
# Edit the VM below and save; an unchanged file (or an empty one) changes nothing. Only `labels` and `spec` can
# change: what you changed is sent as the update mask, with the etag of the version you opened.
"""
EDITABLE = ("labels", "spec")


@click.command()
@click.argument("name")
@namespaced
@click.option(
    "-f",
    "--filename",
    default="",
    help="No editor: apply the `labels` and `spec` fields this YAML file gives (- for stdin); each replaces the VM's.",
)
@pass_state
def edit(state: State, name: str, namespace: str, filename: str) -> None:
    """Edit a VM's labels and spec in $EDITOR (YAML). If it changed meanwhile, the editor opens again on the current
    version with your changes applied and a note of theirs; a refused change opens it again with the reason.

    With -f, the fields the file gives replace the VM's (others stay), as the web console's "Copy as vmctl" writes."""
    session = state.session(namespace)
    stub = stub_of(session)
    current = session.call(stub.GetWukong, _basic(session.namespace, name))
    if filename:
        _apply_fields(session, stub, current, filename)
        return
    opened = current
    text, note = _yaml(opened), ""
    while True:
        edited_text = _in_editor(note + text)
        edited = _parse_edit(edited_text)
        if edited is None or edited == _editable_dict(opened):
            click.echo(f"wukong/{name} unchanged")
            return
        paths = _changed_paths(_editable_dict(opened), edited)
        try:
            saved = session.call(stub.UpdateWukong, _update_request(current, edited, paths))
        except errors.VmctlError as error:
            if error.status == "ABORTED":  # changed meanwhile: mine on top of theirs, and say what theirs was
                latest = session.call(stub.GetWukong, _basic(session.namespace, name))
                theirs = _changed_paths(_editable_dict(opened), _editable_dict(latest))
                merged = _editable_dict(latest)
                for path in paths:
                    _put(merged, path, _get(edited, path))
                current, opened = latest, latest
                note = f"# It changed since you opened it ({', '.join(theirs) or 'its status'}); your changes are\n"
                note += "# applied to the current version below. Save to apply them, or empty the file to give up.\n"
                text = _yaml_dict(merged)
                continue
            if error.exit_code != errors.USAGE:
                raise
            note = "".join(f"# error: {line}\n" for line in error.message.split("; "))
            text = edited_text.split(EDIT_HEADER)[-1] if EDIT_HEADER in edited_text else edited_text
            continue
        restart = " (restart it to apply)" if saved.status.restart_required else ""
        click.echo(f"wukong/{saved.name} edited: {', '.join(paths)}{restart}")
        return


def _basic(namespace: str, name: str) -> Any:
    """A read of what an edit needs (labels, spec, etag, status): the basic view, with no Kubernetes call behind it."""
    from novasphere.v1 import wukong_service_pb2

    return wukong_service_pb2.GetWukongRequest(
        namespace=namespace, name=name, view=wukong_service_pb2.WUKONG_VIEW_BASIC
    )


def _apply_fields(session: Any, stub: Any, current: Any, filename: str) -> None:
    """The file's fields over the current version, sent with its etag (a change meanwhile is refused, not merged)."""
    import sys

    from vmctl.vm_commands import read_text

    given = _parse_edit(sys.stdin.read() if filename == "-" else read_text(filename), partial=True)
    if given is None:
        raise errors.VmctlError(f"{filename} gives no `labels` or `spec` field; nothing was changed", errors.USAGE)
    edited = _editable_dict(current)
    if "labels" in given:
        edited["labels"] = given["labels"]
    edited["spec"] = {**edited["spec"], **given.get("spec", {})}
    paths = _changed_paths(_editable_dict(current), edited)
    if not paths:
        click.echo(f"wukong/{current.name} unchanged")
        return
    saved = session.call(stub.UpdateWukong, _update_request(current, edited, paths))
    restart = " (restart it to apply)" if saved.status.restart_required else ""
    click.echo(f"wukong/{saved.name} edited: {', '.join(paths)}{restart}")


def _editable_dict(w: Any) -> dict[str, Any]:
    from vmctl.output import as_dict

    raw = as_dict(w)
    return {key: raw.get(key, {}) for key in EDITABLE}


def _yaml(w: Any) -> str:
    return _yaml_dict(_editable_dict(w))


def _yaml_dict(data: dict[str, Any]) -> str:
    import yaml

    return EDIT_HEADER + yaml.safe_dump(data, sort_keys=False)


def _in_editor(text: str) -> str:
    import os
    import shlex
    import subprocess
    import tempfile

    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    with tempfile.NamedTemporaryFile("w+", suffix=".yaml", prefix="vmctl-edit-") as scratch:
        scratch.write(text)
        scratch.flush()
        if subprocess.run([*shlex.split(editor), scratch.name], check=False).returncode != 0:
            raise errors.VmctlError(f"the editor ({editor}) failed; nothing was changed", errors.FAILED)
        with open(scratch.name, encoding="utf-8") as back:
            return back.read()


def _parse_edit(text: str, *, partial: bool = False) -> dict[str, Any] | None:
    """The edited labels and spec; `partial`: only those the text gives."""
    import yaml

    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    if not body.strip():
        return None
    try:
        parsed = yaml.safe_load(body)
    except yaml.YAMLError as error:
        raise errors.VmctlError(f"the edited file is not YAML ({error}); nothing was changed", errors.USAGE) from error
    if not isinstance(parsed, dict) or set(parsed) - set(EDITABLE):
        raise errors.VmctlError("only `labels` and `spec` can be edited; nothing was changed", errors.USAGE)
    edited = {key: parsed.get(key) or {} for key in EDITABLE if key in parsed or not partial}
    if any(not isinstance(value, dict) for value in edited.values()):
        raise errors.VmctlError("`labels` and `spec` are mappings (key: value); nothing was changed", errors.USAGE)
    return edited


def _changed_paths(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Update-mask paths: `labels`, and each top-level spec field that differs (`spec.cpu`, `spec.cloud_init_user`)."""
    paths = ["labels"] if before.get("labels") != after.get("labels") else []
    spec_before, spec_after = before.get("spec") or {}, after.get("spec") or {}
    for key in sorted(set(spec_before) | set(spec_after)):
        if spec_before.get(key) != spec_after.get(key):
            paths.append("spec." + "".join(f"_{c.lower()}" if c.isupper() else c for c in key))
    return paths


def _camel(path: str) -> list[str]:
    head, _, field = path.partition(".")
    parts = field.split("_")
    return [head, parts[0] + "".join(p.title() for p in parts[1:])] if field else [head]


def _get(data: dict[str, Any], path: str) -> Any:
    keys = _camel(path)
    return data.get(keys[0], {}) if len(keys) == 1 else (data.get(keys[0]) or {}).get(keys[1])


def _put(data: dict[str, Any], path: str, value: Any) -> None:
    keys = _camel(path)
    if len(keys) == 1:
        data[keys[0]] = value
    elif value is None:
        data.setdefault(keys[0], {}).pop(keys[1], None)
    else:
        data.setdefault(keys[0], {})[keys[1]] = value


def _update_request(current: Any, edited: dict[str, Any], paths: list[str]) -> Any:
    from google.protobuf import field_mask_pb2, json_format

    from novasphere.v1 import wukong_pb2, wukong_service_pb2

    try:
        wukong = json_format.ParseDict({"labels": edited["labels"], "spec": edited["spec"]}, wukong_pb2.Wukong())
    except json_format.ParseError as error:
        raise errors.VmctlError(f"the edited VM does not fit: {error}", errors.USAGE) from error
    wukong.name, wukong.namespace, wukong.etag = current.name, current.namespace, current.etag
    return wukong_service_pb2.UpdateWukongRequest(wukong=wukong, update_mask=field_mask_pb2.FieldMask(paths=paths))
