// The operations this tab follows: each is a durable Task on the server. One WatchTasks stream per signed-in tab
// carries the progress of all of the user's open tasks (those started here, in another tab, or before a reload) and
// tells each one's end; a task this tab started is shown at once from the answer that started it.
import { Code, ConnectError } from "@connectrpc/connect";
import { type Task, TaskState, Task_Operation as Operation } from "@gen/novasphere/v1/task_pb";
import { Wukong_Action as Action, type Wukong } from "@gen/novasphere/v1/wukong_pb";
import { useSyncExternalStore } from "react";
import { taskClient, wukongClient } from "./clients";
import { refresh } from "./session";

export type Followed = { task: Task; watching: boolean };

const followed = new Map<string, Followed>();
const listeners = new Set<() => void>();
let snapshot: Followed[] = [];

function changed(): void {
  snapshot = [...followed.values()].sort((a, b) => a.task.id.localeCompare(b.task.id));
  for (const listener of listeners) listener();
}

export function useFollowed(): Followed[] {
  return useSyncExternalStore(
    (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    () => snapshot,
  );
}

export function ended(task: Task): boolean {
  return task.state === TaskState.SUCCEEDED || task.state === TaskState.FAILED || task.state === TaskState.CANCELLED;
}

/** Shows `task` (a batch's children stay inside their batch); the stream keeps it current. */
export function follow(task: Task): void {
  if (task.parentId) return;
  const known = followed.get(task.id)?.task;
  if (known && (ended(known) || known.progress > task.progress)) return; // the stream was quicker
  followed.set(task.id, { task, watching: !ended(task) });
  changed();
}

export function dismiss(id: string): void {
  followed.delete(id);
  changed();
}

/** Follows the signed-in user's open tasks on one stream until `signal` aborts (sign-out, another user). After a
 * dropped stream it reconnects; a task it was following that is no longer open by then is read once for its end. */
export async function followOpenTasks(signal: AbortSignal): Promise<void> {
  for (let failures = 0; !signal.aborted; ) {
    try {
      let first = true;
      for await (const message of taskClient.watchTasks({}, { signal })) {
        failures = 0;
        if (first) {
          first = false;
          const open = new Set(message.tasks.map((t) => t.id));
          const missed = [...followed.values()].filter((f) => f.watching && !open.has(f.task.id));
          for (const f of missed) void taskClient.getTask({ id: f.task.id }).then(follow, () => undefined);
        }
        for (const task of message.tasks) follow(task);
      }
    } catch (error) {
      if (signal.aborted) return;
      if (ConnectError.from(error).code === Code.Unauthenticated) await refresh().catch(() => undefined);
      failures += 1;
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(30_000, 500 * 2 ** failures)));
  }
}

export type Options = { force?: boolean; deleteDisks?: boolean };

/** Asks for `action` on `wukong`; the request id makes a retry (a double click, a lost answer) the same request. */
export async function operate(wukong: Wukong, action: Action, options: Options = {}): Promise<Task> {
  const target = { namespace: wukong.namespace, name: wukong.name, requestId: crypto.randomUUID() };
  let task: Task;
  switch (action) {
    case Action.START:
      task = await wukongClient.startWukong(target);
      break;
    case Action.STOP:
      task = await wukongClient.stopWukong({ ...target, force: options.force ?? false });
      break;
    case Action.RESTART:
      task = await wukongClient.restartWukong({ ...target, force: options.force ?? false });
      break;
    case Action.PAUSE:
      task = await wukongClient.pauseWukong(target);
      break;
    case Action.RESUME:
      task = await wukongClient.resumeWukong(target);
      break;
    case Action.DELETE:
      task = await wukongClient.deleteWukong({ ...target, deleteDisks: options.deleteDisks ?? false });
      break;
    default:
      throw new Error(`not an operation: ${Action[action]}`);
  }
  follow(task);
  return task;
}

/** Message keys of the words for operations and task states (the panel, the batch dialog, the detail page). */
export const OPERATION_KEYS: Record<Operation, string> = {
  [Operation.OPERATION_UNSPECIFIED]: "operations.operation.unspecified",
  [Operation.START]: "operations.operation.start",
  [Operation.STOP]: "operations.operation.stop",
  [Operation.RESTART]: "operations.operation.restart",
  [Operation.PAUSE]: "operations.operation.pause",
  [Operation.RESUME]: "operations.operation.resume",
  [Operation.DELETE]: "operations.operation.delete",
  [Operation.BATCH]: "operations.operation.batch",
};

export const TASK_STATE_KEYS: Record<TaskState, string> = {
  [TaskState.TASK_STATE_UNSPECIFIED]: "operations.state.unspecified",
  [TaskState.PENDING]: "operations.state.pending",
  [TaskState.RUNNING]: "operations.state.running",
  [TaskState.SUCCEEDED]: "operations.state.succeeded",
  [TaskState.FAILED]: "operations.state.failed",
  [TaskState.CANCELLED]: "operations.state.cancelled",
};
