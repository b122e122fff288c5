// Permissions picked from a list the server gave (ListRoles' known_permissions, or the caller's own), grouped by the
// resource they act on (`vm:console:access` → vm), each with what it allows in words and its string.
import { Checkbox, Typography } from "antd";
import type { CSSProperties } from "react";
import { useTranslation } from "react-i18next";

/** Groups in this order; a resource the console does not know yet comes last, under its own name. */
const RESOURCE_ORDER = ["vm", "task", "apikey", "notification", "binding", "role", "user", "tenant", "admin"];

/** Within a group, reading before changing, everyday before rare; unknown ones last, in the server's order. */
const PERMISSION_ORDER = [
  "vm:query",
  "vm:create",
  "vm:update",
  "vm:delete",
  "vm:start",
  "vm:stop",
  "vm:restart",
  "vm:pause",
  "vm:console:access",
  "vm:console:manage",
  "vm:access-service:manage",
  "vm:ssh-key:manage",
  "notification:subscribe",
  "notification:webhook:manage",
];

export function resourceOf(permission: string): string {
  return permission.split(":")[0] ?? permission;
}

export function groupByResource(permissions: readonly string[]): [string, string[]][] {
  const groups = new Map<string, string[]>();
  const place = (permission: string) => {
    const index = PERMISSION_ORDER.indexOf(permission);
    return index === -1 ? PERMISSION_ORDER.length : index;
  };
  for (const permission of [...permissions].sort((a, b) => place(a) - place(b))) {
    const resource = resourceOf(permission);
    groups.set(resource, [...(groups.get(resource) ?? []), permission]);
  }
  const rank = (resource: string) => {
    const index = RESOURCE_ORDER.indexOf(resource);
    return index === -1 ? RESOURCE_ORDER.length : index;
  };
  return [...groups.entries()].sort(([a], [b]) => rank(a) - rank(b) || a.localeCompare(b));
}

/** `permissions` in the order the picker shows them. */
export function inPickerOrder(permissions: readonly string[]): string[] {
  return groupByResource(permissions).flatMap(([, group]) => group);
}

/** What a permission allows, in words (its string when the console has no words for it). */
export function usePermissionWords(): (permission: string) => string {
  const { t } = useTranslation();
  return (permission) => t(`admin.permission.${permission.replace(/[:-]/g, "_")}`, { defaultValue: permission });
}

export function useResourceWords(): (resource: string) => string {
  const { t } = useTranslation();
  return (resource) => t(`admin.resource.${resource}`, { defaultValue: resource });
}

const GROUP: CSSProperties = { border: "none", margin: "0 0 8px", padding: 0, minWidth: 0 };
const LEGEND: CSSProperties = { fontSize: "inherit", marginBottom: 4, border: "none" };
const ITEMS: CSSProperties = {
  display: "grid",
  gridTemplateColumns: "repeat(auto-fill, minmax(240px, 1fr))",
  gap: 4,
  paddingInlineStart: 24,
};

type Props = {
  available: readonly string[];
  value?: string[];
  onChange?: (value: string[]) => void;
  id?: string;
};

export function PermissionPicker({ available, value = [], onChange = () => undefined, id }: Props) {
  const words = usePermissionWords();
  const resourceWords = useResourceWords();
  const chosen = new Set(value);
  const set = (permissions: string[], on: boolean) => {
    const next = new Set(chosen);
    for (const permission of permissions) {
      if (on) next.add(permission);
      else next.delete(permission);
    }
    onChange(available.filter((permission) => next.has(permission)));
  };
  return (
    <div id={id} data-testid="permission-picker">
      {groupByResource(available).map(([resource, permissions]) => {
        const held = permissions.filter((permission) => chosen.has(permission)).length;
        return (
          <fieldset key={resource} style={GROUP} data-resource={resource}>
            <legend style={LEGEND}>
              <Checkbox
              checked={held === permissions.length}
              indeterminate={held > 0 && held < permissions.length}
              onChange={(e) => set(permissions, e.target.checked)}
            >
              <Typography.Text strong>{resourceWords(resource)}</Typography.Text>
              </Checkbox>
            </legend>
            <div style={ITEMS}>
              {permissions.map((permission) => (
                <Checkbox
                  key={permission}
                  checked={chosen.has(permission)}
                  onChange={(e) => set([permission], e.target.checked)}
                  data-permission={permission}
                >
                  {words(permission)}{" "}
                  <Typography.Text type="secondary" code style={{ fontSize: 12 }}>
                    {permission}
                  </Typography.Text>
                </Checkbox>
              ))}
            </div>
          </fieldset>
        );
      })}
    </div>
  );
}
