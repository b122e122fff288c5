"""What a person does once in the web console becomes a script: each "Copy as vmctl" command, pasted into a shell
where vmctl is signed in to the same server, does what the dialog would have done (real stack, chromium, vmctl)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest
import yaml

from devcluster import stack as devstack
from tests import kube_helpers
from tests.e2e.test_auth import PASSWORD
from tests.web_browser import Browser, Tab
from tests.web_console import Web, open_signed_in, shot

BIN = Path(sys.executable).parent  # the project's virtualenv, where `vmctl` is installed


class Shell:
    """bash with vmctl on its PATH and a config file of its own, signed in to the web console's server."""

    def __init__(self, web: Web, ca: Path, home: Path, user: str) -> None:
        self.env = {
            "PATH": f"{BIN}:/usr/bin:/bin",
            "HOME": str(home),
            "VMCTL_CONFIG": str(home / "vmctl-config"),
            "VMCTL_SERVER": web.url,
            "VMCTL_CA": str(ca),
        }
        self.run(f"vmctl login -u {user} --password-stdin <<<'{PASSWORD}'")

    def run(self, script: str) -> str:
        done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=self.env, timeout=120)
        assert done.returncode == 0, f"{script}\n→ {done.returncode}\n{done.stdout}{done.stderr}"
        return done.stdout


@pytest.fixture
def shell(web: Web, stack: devstack.Stack, tmp_path: Path, operator: str) -> Shell:
    return Shell(web, stack.tls.ca_cert, tmp_path, operator)


def copied(tab: Tab, button: str = "[data-testid=copy-as-vmctl]", *, screenshot: str = "") -> str:
    """The command a "Copy as vmctl" button shows (and copies), its dialog closed again."""
    tab.click(button)
    tab.wait("[data-testid=vmctl-command]")
    command = tab.text("[data-testid=vmctl-command]")
    if screenshot:
        shot(tab, screenshot)
    tab.key("Escape")
    tab.wait("[data-testid=vmctl-command]", state="detached")
    return command


def spec_of(kube: kubernetes.client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    return dict(kube_helpers.wukong_spec(kube, namespace, name))


def test_create_edit_delete_and_a_batch_copied_as_vmctl_do_what_the_dialogs_do(
    web: Web, browser: Browser, operator: str, namespace: str, kube: kubernetes.client.ApiClient, shell: Shell
) -> None:
    tab = open_signed_in(browser, web, operator, path=f"/vms/new?ns={namespace}")
    tab.wait("[data-testid=disk-0] .ant-select-content >> text=local-path")
    tab.fill("#name", "india")
    tab.fill("#spec_memory", "1536Mi")
    command = copied(tab, screenshot="vmctl-create-command")
    assert command.startswith(f"vmctl create -n {namespace} -f - <<'EOF'\n")
    assert shell.run(command) == f"wukong/india created in {namespace}\n"
    tab.fill("#name", "juliet")  # the same form, created by the browser
    tab.click("button[type=submit]")
    tab.wait("[data-testid=vm-name] >> text=juliet", ms=30_000)
    assert spec_of(kube, namespace, "india") == spec_of(kube, namespace, "juliet")

    tab.goto(f"{web.url}/vms/{namespace}/india/edit")
    tab.wait("#spec_memory")
    tab.fill("#spec_memory", "2Gi")
    command = copied(tab)
    assert command.startswith(f"vmctl edit india -n {namespace} -f - <<'EOF'\nspec:\n  memory: 2Gi\n")
    assert shell.run(command) == "wukong/india edited: spec.memory (restart it to apply)\n"  # it runs
    assert spec_of(kube, namespace, "india")["memory"] == "2Gi"

    tab.goto(f"{web.url}/vms/{namespace}/india")
    tab.wait("[data-testid=vm-name] >> text=india")
    tab.click("[data-testid=view-yaml]")
    tab.wait("[data-testid=yaml]")
    shown = yaml.safe_load(tab.text("[data-testid=yaml]"))
    shot(tab, "vm-yaml")
    tab.key("Escape")
    got = yaml.safe_load(shell.run(copied(tab)))  # vmctl get india -o yaml
    assert shown["spec"] == got["spec"]

    tab.click("[data-testid=actions] button:has-text('Delete')")
    tab.fill("[aria-label='Name to confirm']", "india")
    tab.click(".ant-modal-body .ant-checkbox-input")  # its disks too
    command = copied(tab, ".ant-modal [data-testid=copy-as-vmctl]")
    assert command == f"vmctl delete india -n {namespace} --delete-disks"
    tab.click(".ant-modal-footer button:has-text('Cancel')")
    shell.run(command)  # waits for the task's end
    assert kube_helpers.wukong_names(kube, namespace) == ["juliet"]

    tab.goto(f"{web.url}/vms?ns={namespace}")
    row = ".ant-table-tbody tr.ant-table-row:has-text('juliet')"
    tab.wait(f"{row} >> text=Running", ms=30_000)
    tab.click(f"{row} .ant-checkbox-input")
    tab.click("[data-testid=selection] button:has-text('Stop…')")
    tab.wait("[data-testid=batch-preview]")
    tab.click(".ant-modal-body .ant-checkbox-input")  # forced
    command = copied(tab, ".ant-modal [data-testid=copy-as-vmctl]", screenshot="vmctl-batch-command")
    assert command == f"vmctl stop juliet -n {namespace} --force"
    tab.click(".ant-modal-footer button:has-text('Cancel')")
    shell.run(command)
    tab.wait(f"{row} >> text=Stopped", ms=30_000)

    tab.goto(f"{web.url}/vms/{namespace}/juliet")
    tab.click("[data-testid=access-services] button:has-text('Expose ports')")
    tab.fill("#access-create_serviceName", "juliet-ssh")
    tab.fill("#access-create_ports_0_port", "22")
    tab.fill("#access-create_ports_0_targetPort", "2222")
    command = copied(tab, ".ant-modal:has(#access-create) [data-testid=copy-as-vmctl]")
    assert command == f"vmctl expose juliet -n {namespace} --type NodePort --port 22:2222 --service-name juliet-ssh"
    assert shell.run(command).startswith("service/juliet-ssh 22/TCP → ")
    tab.click(".ant-modal:has(#access-create) .ant-modal-footer button:has-text('Cancel')")
    tab.reload()
    tab.wait("[data-testid=access-services] >> text=juliet-ssh")  # the card lists what vmctl made
