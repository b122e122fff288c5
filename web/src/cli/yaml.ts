// YAML for the plain data protobuf JSON is made of (objects, arrays, strings, numbers, booleans, null): block style,
// keys in their order, and every string that YAML could read as something else (a number, `yes`, a date, one with
// a colon or a leading dash) written as a JSON string, which YAML reads back exactly.
type Data = null | boolean | number | string | Data[] | { [key: string]: Data };

const PLAIN = /^[A-Za-z_/][A-Za-z0-9_ ./@+-]*$/;
const SPECIAL = /^(true|false|yes|no|on|off|y|n|null|~)$/i;
/** Kubernetes quantities (`2Gi`, `500m`, `1.5G`): digits then letters, which YAML reads as strings. */
const QUANTITY = /^[0-9]+(\.[0-9]+)?[A-Za-z]+$/;

function scalar(value: null | boolean | number | string): string {
  if (value === null) return "null";
  if (typeof value !== "string") return String(value);
  const plain = (PLAIN.test(value) && !SPECIAL.test(value) && !value.endsWith(" ")) || QUANTITY.test(value);
  return plain ? value : JSON.stringify(value);
}

function key(name: string): string {
  return PLAIN.test(name) && !SPECIAL.test(name) && !name.includes(" ") ? name : JSON.stringify(name);
}

function block(value: Data, indent: string): string[] {
  if (Array.isArray(value)) {
    if (!value.length) return [];
    return value.flatMap((item) => {
      const [first = "", ...rest] = isEmpty(item) || !isCollection(item) ? [inline(item)] : block(item, `${indent}  `);
      return [`${indent}- ${first.trimStart()}`, ...rest];
    });
  }
  if (value !== null && typeof value === "object") {
    return Object.entries(value).flatMap(([name, item]) =>
      isCollection(item) && !isEmpty(item)
        ? [`${indent}${key(name)}:`, ...block(item, Array.isArray(item) ? indent : `${indent}  `)]
        : [`${indent}${key(name)}: ${inline(item)}`],
    );
  }
  return [`${indent}${scalar(value)}`];
}

function isCollection(value: Data): value is Data[] | { [key: string]: Data } {
  return value !== null && typeof value === "object";
}

function isEmpty(value: Data): boolean {
  return isCollection(value) && (Array.isArray(value) ? value.length === 0 : Object.keys(value).length === 0);
}

function inline(value: Data): string {
  if (Array.isArray(value)) return "[]";
  if (value !== null && typeof value === "object") return "{}";
  return scalar(value);
}

export function toYaml(value: unknown): string {
  return `${block(value as Data, "").join("\n")}\n`;
}
