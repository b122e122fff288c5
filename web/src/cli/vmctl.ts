// What the browser just did, as the `vmctl` command that does the same (and the YAML it sends), so that one click
// in the console can become a line in a script. Every command here runs as copied in a POSIX shell: a test pastes
// them into vmctl (tests/e2e/test_web_cli.py).
import { toJson } from "@bufbuild/protobuf";
import { WukongSchema, type Wukong } from "@gen/novasphere/v1/wukong_pb";
import { toYaml } from "./yaml";

/** Fields the server fills in; `vmctl create` ignores them, and a person reading the YAML need not see them. */
const OUTPUT_ONLY = ["uid", "resourceVersion", "createTime", "status", "detail", "availableActions", "cursor", "etag"];

/** A word as a POSIX shell reads it back unchanged: bare when safe, else in single quotes. */
export function shellWord(word: string): string {
  if (word !== "" && /^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replaceAll("'", `'"'"'`)}'`;
}

function command(words: string[]): string {
  return ["vmctl", ...words].map(shellWord).join(" ");
}

/** A command reading `document` on standard input (a here-document whose end marker the text cannot contain). */
function withStdin(words: string[], document: string): string {
  let marker = "EOF";
  while (document.split("\n").includes(marker)) marker += "_";
  const body = document.endsWith("\n") ? document : `${document}\n`;
  return `${command(words)} <<'${marker}'\n${body}${marker}`;
}

export type Operation = "start" | "stop" | "restart" | "pause" | "resume" | "delete";

export type OperationOptions = { force?: boolean; deleteDisks?: boolean };

/** One VM or a batch: `vmctl stop a b -n ns --force`, or by label `vmctl stop -l app=web -n ns`. */
export function operationCommand(
  operation: Operation,
  target: { namespace: string; names?: string[]; selector?: string },
  options: OperationOptions = {},
): string {
  const words = [operation, ...(target.names ?? [])];
  if (target.selector) words.push("-l", target.selector);
  words.push("-n", target.namespace);
  if (options.force) words.push("--force");
  if (options.deleteDisks) words.push("--delete-disks");
  return command(words);
}

/** The Wukong as `vmctl get -o yaml` prints it, less what the server fills in. */
export function wukongYaml(wukong: Wukong, { withStatus = false } = {}): string {
  const json = toJson(WukongSchema, wukong) as Record<string, unknown>;
  const shown = withStatus ? json : Object.fromEntries(Object.entries(json).filter(([k]) => !OUTPUT_ONLY.includes(k)));
  return toYaml({ kind: "Wukong", ...shown });
}

export function createCommand(namespace: string, wukong: Wukong): string {
  return withStdin(["create", "-n", namespace, "-f", "-"], wukongYaml(wukong));
}

/** The edit form's changes (labels and the top-level spec fields in `paths`, as its update mask names them). */
export function editCommand(wukong: Wukong, paths: string[]): string {
  const json = toJson(WukongSchema, wukong) as { labels?: unknown; spec?: Record<string, unknown> };
  const change: Record<string, unknown> = {};
  for (const path of paths) {
    if (path === "labels") change.labels = json.labels ?? {};
    else if (path.startsWith("spec.")) {
      const field = path.slice(5).replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
      (change.spec ??= {}) as Record<string, unknown>;
      (change.spec as Record<string, unknown>)[field] = json.spec?.[field] ?? null;
    }
  }
  return withStdin(["edit", wukong.name, "-n", wukong.namespace, "-f", "-"], toYaml(change));
}

export function getCommand(wukong: Pick<Wukong, "name" | "namespace">): string {
  return command(["get", wukong.name, "-n", wukong.namespace, "-o", "yaml"]);
}

export function consoleCommand(wukong: Pick<Wukong, "name" | "namespace">, protocol: "vnc" | "serial"): string {
  return command([protocol === "vnc" ? "vnc" : "console", wukong.name, "-n", wukong.namespace]);
}

export type ExposedPort = { port: number | null; targetPort: number | null; nodePort: number | null; protocol: string };

/** `vmctl expose`: each port as PORT[:TARGET[:NODEPORT]][/udp]. */
export function exposeCommand(
  wukong: Pick<Wukong, "name" | "namespace">,
  serviceType: string,
  serviceName: string,
  ports: ExposedPort[],
): string {
  const words = ["expose", wukong.name, "-n", wukong.namespace, "--type", serviceType];
  for (const row of ports) {
    const port = row.port ?? 0;
    const node = serviceType === "NodePort" ? (row.nodePort ?? 0) : 0;
    let text = String(port);
    if (node) text += `:${row.targetPort || port}:${node}`;
    else if (row.targetPort) text += `:${row.targetPort}`;
    words.push("--port", row.protocol === "UDP" ? `${text}/udp` : text);
  }
  if (serviceName.trim()) words.push("--service-name", serviceName.trim());
  return command(words);
}
