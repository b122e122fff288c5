// The operations this tab follows: each is a durable Task on the server, so a reload finds the open ones again
// (ListTasks, pending or running) and follows them to their end with WatchTask.
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

/** Follows `task` to its end (one stream while it is open); again for the same id is a no-op. */
export function follow(task: Task): void {
  if (followed.has(task.id)) return;
  followed.set(task.id, { task, watching: !ended(task) });
  changed();
  if (ended(task)) return;
  void (async () => {
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        for await (const update of taskClient.watchTask({ id: task.id })) {
          followed.set(task.id, { task: update, watching: !ended(update) });
          changed();
          if (ended(update)) return;
        }
        return;
      } catch (error) {
        if (ConnectError.from(error).code === Code.Unauthenticated) await refresh().catch(() => undefined);
        await new Promise((resolve) => setTimeout(resolve, 1000 * 2 ** attempt));
      }
    }
  })();
}

export function dismiss(id: string): void {
  followed.delete(id);
  changed();
}

/** After a reload: the open tasks `username` asked for, followed again. */
export async function resumeOpenTasks(username: string): Promise<void> {
  const open = await taskClient.listTasks({ state: "pending,running", pageSize: 50 });
  for (const task of open.tasks) if (task.requestedBy === username) follow(task);
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

export const OPERATION_WORDS: Record<Operation, string> = {
  [Operation.OPERATION_UNSPECIFIED]: "Operation",
  [Operation.START]: "Start",
  [Operation.STOP]: "Stop",
  [Operation.RESTART]: "Restart",
  [Operation.PAUSE]: "Pause",
  [Operation.RESUME]: "Resume",
  [Operation.DELETE]: "Delete",
  [Operation.BATCH]: "Batch",
};
