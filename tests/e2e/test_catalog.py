"""What a VM's spec can refer to, through the API against the real cluster: the StorageClasses a namespace may use
(the default first, expansion shown, a class its quota forbids left out), its network attachments, and SSH keys
uploaded as Secrets that vmoperator (here the simulator) puts into the VM's cloud-init."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import kubernetes.client
import pytest

from devcluster import stack as devstack
from novasphere.v1 import ssh_key_service_pb2 as keys_pb2
from novasphere.v1.ssh_key_service_pb2_grpc import SshKeyServiceStub
from novasphere.v1.wukong_service_pb2_grpc import WukongServiceStub
from tests import kube_helpers
from tests.e2e.test_wukong_api import create
from tests.status_helpers import details_of


@pytest.fixture(scope="module")
def ssh_keys(stack: devstack.Stack) -> Iterator[SshKeyServiceStub]:
    with grpc.insecure_channel(stack.grpc_direct) as channel:
        yield SshKeyServiceStub(channel)


@pytest.fixture
def http(stack: devstack.Stack) -> Iterator[httpx.Client]:
    with stack.edge.http_client() as client:
        yield client


def test_storage_classes_default_first_with_expansion_and_a_class_the_quota_forbids_left_out(
    http: httpx.Client, kube: kubernetes.client.ApiClient, namespace: str
) -> None:
    def listed() -> list[dict[str, Any]]:
        response = http.get("/api/v1/storage-classes", params={"namespace": namespace})
        assert response.status_code == 200, response.text
        return list(response.json()["storageClasses"])

    classes = listed()
    assert [c["name"] for c in classes] == ["local-path", "sim-expandable", "sim-immediate"]
    local, expandable, immediate = classes
    assert (local["isDefault"], local["volumeBindingMode"], local.get("allowVolumeExpansion", False)) == (
        True,
        "WaitForFirstConsumer",
        False,
    )
    assert (expandable["allowVolumeExpansion"], expandable["provisioner"]) == (True, "rancher.io/local-path")
    assert (immediate["volumeBindingMode"], immediate["reclaimPolicy"]) == ("Immediate", "Delete")

    quota = kubernetes.client.V1ResourceQuota(
        metadata=kubernetes.client.V1ObjectMeta(name="no-immediate"),
        spec=kubernetes.client.V1ResourceQuotaSpec(
            hard={"sim-immediate.storageclass.storage.k8s.io/requests.storage": "0"}
        ),
    )
    kubernetes.client.CoreV1Api(kube).create_namespaced_resource_quota(namespace, quota)
    kube_helpers.eventually(
        lambda: [c["name"] for c in listed()] == ["local-path", "sim-expandable"] or None,
        timeout=10,
        what="the forbidden class to leave the list",
    )


def test_network_attachments_of_the_namespace_with_their_plugin_and_none_of_another_tenant(
    http: httpx.Client, kube: kubernetes.client.ApiClient, namespace: str, foreign_namespace: str
) -> None:
    config = {"cniVersion": "0.3.1", "type": "macvlan", "master": "eth0", "ipam": {"type": "dhcp"}}
    for where, name in ((namespace, "lan"), (foreign_namespace, "theirs")):
        kubernetes.client.CustomObjectsApi(kube).create_namespaced_custom_object(
            "k8s.cni.cncf.io",
            "v1",
            where,
            "network-attachment-definitions",
            {
                "apiVersion": "k8s.cni.cncf.io/v1",
                "kind": "NetworkAttachmentDefinition",
                "metadata": {"name": name},
                "spec": {"config": json.dumps(config)},
            },
        )
    response = http.get("/api/v1/network-attachments", params={"namespace": namespace})
    assert response.status_code == 200, response.text
    assert response.json()["networkAttachments"] == [{"name": "lan", "namespace": namespace, "cniType": "macvlan"}]

    foreign = http.get("/api/v1/network-attachments", params={"namespace": foreign_namespace})
    assert foreign.status_code == 404, foreign.text
    assert "theirs" not in foreign.text


def test_an_uploaded_ssh_key_is_a_secret_that_reaches_the_vms_cloud_init(
    ssh_keys: SshKeyServiceStub,
    grpc_direct: WukongServiceStub,
    kube: kubernetes.client.ApiClient,
    namespace: str,
    tmp_path: Path,
) -> None:
    first, second = kube_helpers.ssh_public_key("ada@laptop"), kube_helpers.ssh_public_key("ada@desktop")
    text = f"# Ada's keys\n{first}\n\n{second}\n"
    created = ssh_keys.CreateSshKey(keys_pb2.CreateSshKeyRequest(namespace=namespace, name="ada", public_key=text))
    pub = tmp_path / "keys.pub"
    pub.write_text(f"{first}\n{second}\n")
    keygen = subprocess.run(["ssh-keygen", "-l", "-f", str(pub)], capture_output=True, text=True, check=True)
    assert list(created.fingerprints) == [line.split()[1] for line in keygen.stdout.splitlines()]
    assert (created.name, created.namespace, created.created_by) == ("ada", namespace, "developer")
    assert created.create_time.seconds > 0

    secret: Any = kubernetes.client.CoreV1Api(kube).read_namespaced_secret("ada", namespace)
    assert secret.metadata.labels["novasphere.dev/kind"] == "ssh-key"
    assert list(secret.data) == ["ssh-publickey"]
    listed = ssh_keys.ListSshKeys(keys_pb2.ListSshKeysRequest(namespace=namespace)).ssh_keys
    assert [(k.name, list(k.fingerprints), k.public_key) for k in listed] == [
        ("ada", list(created.fingerprints), f"# Ada's keys\n{first}\n\n{second}\n")
    ]

    with pytest.raises(grpc.RpcError) as again:
        ssh_keys.CreateSshKey(keys_pb2.CreateSshKeyRequest(namespace=namespace, name="ada", public_key=first))
    assert again.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert details_of(again.value).reason == "SSH_KEY_ALREADY_EXISTS"

    create(grpc_direct, namespace, "keyed", sshKeySecret="ada")

    def cloud_init() -> str | None:
        try:
            vm = kube_helpers.json_object(
                kubernetes.client.CustomObjectsApi(kube).get_namespaced_custom_object(
                    "kubevirt.io", "v1", namespace, "virtualmachines", "keyed-vm"
                )
            )
        except kubernetes.client.ApiException as error:
            if error.status == 404:
                return None
            raise
        volumes = vm["spec"]["template"]["spec"]["volumes"]
        return str(next(v["cloudInitNoCloud"]["userData"] for v in volumes if "cloudInitNoCloud" in v))

    user_data = kube_helpers.eventually(cloud_init, what="the VM with its cloud-init")
    assert f"  - {first}" in user_data
    assert f"  - {second}" in user_data
    assert "Ada's keys" not in user_data  # comments stay out

    ssh_keys.DeleteSshKey(keys_pb2.DeleteSshKeyRequest(namespace=namespace, name="ada"))
    assert not kube_helpers.secret_exists(kube, namespace, "ada")
    with pytest.raises(grpc.RpcError) as gone:
        ssh_keys.DeleteSshKey(keys_pb2.DeleteSshKeyRequest(namespace=namespace, name="ada"))
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_secret_that_is_not_an_ssh_key_is_neither_listed_nor_deleted(
    ssh_keys: SshKeyServiceStub, kube: kubernetes.client.ApiClient, namespace: str
) -> None:
    other = kubernetes.client.V1Secret(
        metadata=kubernetes.client.V1ObjectMeta(name="db-password"), string_data={"password": "hunter2"}
    )
    kubernetes.client.CoreV1Api(kube).create_namespaced_secret(namespace, other)
    assert not ssh_keys.ListSshKeys(keys_pb2.ListSshKeysRequest(namespace=namespace)).ssh_keys
    with pytest.raises(grpc.RpcError) as refused:
        ssh_keys.DeleteSshKey(keys_pb2.DeleteSshKeyRequest(namespace=namespace, name="db-password"))
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    assert kube_helpers.secret_exists(kube, namespace, "db-password")


PRIVATE_BEGIN = "-----BEGIN OPENSSH PRIVATE KEY-----"
ED25519_BLOB = kube_helpers.ssh_public_key("x").split()[1]


def test_a_delete_removes_only_the_secret_the_api_made(
    ssh_keys: SshKeyServiceStub, kube: kubernetes.client.ApiClient, namespace: str
) -> None:
    """The API cannot read Secrets: it deletes by the UID it recorded, so a Secret someone put in the key's place
    stays, and the key's record goes."""
    key = kube_helpers.ssh_public_key("ada@laptop")
    ssh_keys.CreateSshKey(keys_pb2.CreateSshKeyRequest(namespace=namespace, name="ada", public_key=key))
    core = kubernetes.client.CoreV1Api(kube)
    core.delete_namespaced_secret("ada", namespace)
    core.create_namespaced_secret(
        namespace,
        kubernetes.client.V1Secret(metadata=kubernetes.client.V1ObjectMeta(name="ada"), string_data={"x": "theirs"}),
    )
    ssh_keys.DeleteSshKey(keys_pb2.DeleteSshKeyRequest(namespace=namespace, name="ada"))
    assert kube_helpers.secret_exists(kube, namespace, "ada")  # theirs
    assert not ssh_keys.ListSshKeys(keys_pb2.ListSshKeysRequest(namespace=namespace)).ssh_keys

    core.delete_namespaced_secret("ada", namespace)
    again = ssh_keys.CreateSshKey(keys_pb2.CreateSshKeyRequest(namespace=namespace, name="ada", public_key=key))
    assert [k.name for k in ssh_keys.ListSshKeys(keys_pb2.ListSshKeysRequest(namespace=namespace)).ssh_keys] == [
        again.name
    ]


@pytest.mark.parametrize(
    ("name", "public_key", "field", "words"),
    [
        ("k", f"{PRIVATE_BEGIN}\nb3Blbn\n-----END OPENSSH PRIVATE KEY-----", "public_key", "private"),
        ("k", "ssh-ed25519 AAAA!!not-base64 me", "public_key", "line 1 has a key that is not valid base64"),
        ("k", f"ssh-rsa {ED25519_BLOB} me", "public_key", "not a 'ssh-rsa' key"),  # an ed25519 key's contents
        ("k", "# only a comment", "public_key", "only comments"),
        ("k", 'from="10.0.0.1" ssh-ed25519 AAAA', "public_key", "options before the key"),
        ("Not_A_Name", "", "name", "not a Secret name"),
    ],
)
def test_what_is_not_a_public_key_is_refused_on_its_field_and_creates_nothing(
    ssh_keys: SshKeyServiceStub,
    kube: kubernetes.client.ApiClient,
    namespace: str,
    name: str,
    public_key: str,
    field: str,
    words: str,
) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        ssh_keys.CreateSshKey(keys_pb2.CreateSshKeyRequest(namespace=namespace, name=name, public_key=public_key))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert words in details_of(refused.value).field_violations[field]
    assert not kubernetes.client.CoreV1Api(kube).list_namespaced_secret(namespace).items
