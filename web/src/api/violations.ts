// The server's field violations (`BadRequest`) on the form fields they name: `wukong.spec.disks[0].storage_class_name`
// is the form's ["spec", "disks", 0, "storageClassName"]. What no field of the form shows is returned, for an alert.
import type { FormInstance } from "antd";

type Path = (string | number)[];

const shown = new WeakMap<FormInstance, Path[]>();

/** Puts `violations` on `form`'s fields (clearing the ones put there before); returns those no field shows. The
 * request's own prefix (`wukong.`) is dropped; `rename` maps a path the form names differently. */
export function placeViolations(
  form: FormInstance,
  violations: Record<string, string>,
  rename: (path: Path) => Path = (path) => path,
): string[] {
  const values = form.getFieldsValue(true) as unknown;
  const unplaced: string[] = [];
  const placed: { name: Path; errors: string[] }[] = [];
  for (const [field, description] of Object.entries(violations)) {
    const path = formPath(field);
    const name = path && rename(path);
    if (name && exists(values, name)) placed.push({ name, errors: [description] });
    else unplaced.push(`${field}: ${description}`);
  }
  const cleared = (shown.get(form) ?? []).map((name) => ({ name, errors: [] as string[] }));
  form.setFields([...cleared, ...placed] as never);
  shown.set(form, placed.map((p) => p.name));
  return unplaced;
}

function formPath(field: string): Path | null {
  const trimmed = field.startsWith("wukong.") ? field.slice("wukong.".length) : field;
  const segment = /([a-z_]+)(?:\[([^\]]*)\])?(?:\.|$)/y; // name, then an index or a map key (which may hold dots)
  const parts: Path = [];
  while (segment.lastIndex < trimmed.length) {
    const match = segment.exec(trimmed);
    if (!match) return null;
    parts.push(match[1]!.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase()));
    if (match[2] === undefined) continue;
    if (!/^\d+$/.test(match[2])) return parts; // `labels[bad key]`, `node_selector[k]`: the map's one text field
    parts.push(Number(match[2]));
  }
  return parts;
}

function exists(values: unknown, path: Path): boolean {
  let at: unknown = values;
  for (const key of path) {
    if (at === null || typeof at !== "object" || !(key in (at as object))) return false;
    at = (at as Record<string | number, unknown>)[key];
  }
  return true;
}
