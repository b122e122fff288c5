"""The auth store fails closed: roles and bindings go with their ConfigMap, and a bad edit keeps the last good ones."""

from __future__ import annotations

from server.auth.store import AuthStore
from server.kube import auth_objects

CONFIG_MAPS = auth_objects.config_maps_kind("novasphere-system")
AUTHZ = {
    "metadata": {"name": "novasphere-authz", "labels": {"novasphere.dev/kind": "authz"}},
    "data": {"roles.yaml": "viewer: [vm:query]\n", "bindings.yaml": "- {user: ada, tenant: demo, role: viewer}\n"},
}


def test_roles_go_with_their_config_map_and_a_bad_edit_keeps_the_last_good_ones() -> None:
    store = AuthStore()
    store.replace(CONFIG_MAPS, [AUTHZ], 1)
    assert store.permissions("ada", "demo") == {"vm:query"}
    store.apply(CONFIG_MAPS, "MODIFIED", {**AUTHZ, "data": {"roles.yaml": "- not a mapping"}}, 2)
    assert store.permissions("ada", "demo") == {"vm:query"}
    store.apply(CONFIG_MAPS, "DELETED", AUTHZ, 3)
    assert store.permissions("ada", "demo") == frozenset()
    store.replace(CONFIG_MAPS, [AUTHZ], 4)
    store.replace(CONFIG_MAPS, [], 5)  # relisted without it
    assert store.permissions("ada", "demo") == frozenset()
