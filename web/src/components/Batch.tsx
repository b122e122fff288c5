// One operation on many VMs, as one tracked job: first a preview of what happens to which VM (and which are skipped,
// and why), then each VM's result as it arrives, and a retry of the failed ones. A selection spanning namespaces runs
// one batch per namespace (a batch names its VMs within one namespace).
import { type Task, TaskState, Task_Operation as Operation } from "@gen/novasphere/v1/task_pb";
import { Wukong_Action as Action, type Wukong } from "@gen/novasphere/v1/wukong_pb";
import { Alert, Button, Checkbox, Modal, Progress, Space, Table, Tag, Typography } from "antd";
import { useEffect, useState } from "react";
import { useTranslation } from "react-i18next";
import { taskClient, wukongClient } from "../api/clients";
import { problem } from "../api/errors";
import { ended, follow, OPERATION_KEYS, TASK_STATE_KEYS } from "../api/operations";
import { powerStateWord } from "./PowerBadge";
import { operationCommand, type Operation as CliOperation } from "../cli/vmctl";
import { CopyAsCli } from "./CopyAsCli";

/** Each operation a batch can run: the VM's action, the batch's operation, and the lower-case verb's message key. */
export const BATCH_ACTIONS: [Action, Operation, string][] = [
  [Action.START, Operation.START, "operations.verb.start"],
  [Action.STOP, Operation.STOP, "operations.verb.stop"],
  [Action.RESTART, Operation.RESTART, "operations.verb.restart"],
  [Action.PAUSE, Operation.PAUSE, "operations.verb.pause"],
  [Action.RESUME, Operation.RESUME, "operations.verb.resume"],
  [Action.DELETE, Operation.DELETE, "operations.verb.delete"],
];

/** The batch as vmctl runs it: one command per namespace (a batch names its VMs within one). */
function batchCommands(operation: Operation, targets: Wukong[], options: { force: boolean; deleteDisks: boolean }): string {
  const verb = Operation[operation].toLowerCase() as CliOperation;
  const namespaces = [...new Set(targets.map((w) => w.namespace))];
  return namespaces
    .map((namespace) => {
      const names = targets.filter((w) => w.namespace === namespace).map((w) => w.name);
      return operationCommand(verb, { namespace, names }, options);
    })
    .join("\n");
}

type Outcome = { key: string; namespace: string; name: string; state: TaskState | null; why: string };

export function BatchDialog(props: {
  action: Action;
  selected: Wukong[];
  onClose: (ran: boolean) => void;
}) {
  const { t } = useTranslation();
  const [, operation, verb] = BATCH_ACTIONS.find(([action]) => action === props.action) ?? BATCH_ACTIONS[0]!;
  const word = t(OPERATION_KEYS[operation]);
  const [force, setForce] = useState(false);
  const [deleteDisks, setDeleteDisks] = useState(false);
  const [batches, setBatches] = useState<Task[]>([]);
  const [outcomes, setOutcomes] = useState<Record<string, Outcome>>({});
  const [failure, setFailure] = useState<string | null>(null);
  const [running, setRunning] = useState(false);

  const willRun = props.selected.filter((w) => w.availableActions.includes(props.action));
  const skipped = props.selected.filter((w) => !w.availableActions.includes(props.action));
  const started = batches.length > 0;

  const run = async (targets: { namespace: string; name: string }[]) => {
    setRunning(true);
    setFailure(null);
    try {
      const byNamespace = new Map<string, string[]>();
      for (const t of targets) byNamespace.set(t.namespace, [...(byNamespace.get(t.namespace) ?? []), t.name]);
      const made: Task[] = [];
      for (const [namespace, names] of byNamespace) {
        const batch = await wukongClient.batchWukongOperation({
          operation,
          namespace,
          names,
          force,
          deleteDisks,
          requestId: crypto.randomUUID(),
        });
        follow(batch);
        made.push(batch);
      }
      setOutcomes((old) => {
        const next = { ...old };
        for (const t of targets) next[`${t.namespace}/${t.name}`] = { key: `${t.namespace}/${t.name}`, ...t, state: null, why: "" };
        return next;
      });
      setBatches(made);
    } catch (error) {
      setFailure(problem(error).message);
    } finally {
      setRunning(false);
    }
  };

  // Each batch's children, read again whenever the batch's summary moves (one stream per batch).
  useEffect(() => {
    const abort = new AbortController();
    for (const batch of batches) {
      void (async () => {
        const readChildren = async () => {
          const children = await taskClient.listTasks({ parentId: batch.id, pageSize: 500 }, { signal: abort.signal });
          setOutcomes((old) => {
            const next = { ...old };
            for (const child of children.tasks) {
              const key = `${child.namespace}/${child.name}`;
              next[key] = { key, namespace: child.namespace, name: child.name, state: child.state, why: child.error?.message ?? "" };
            }
            return next;
          });
        };
        try {
          for await (const update of taskClient.watchTask({ id: batch.id }, { signal: abort.signal })) {
            await readChildren();
            if (ended(update)) break;
          }
          await readChildren();
        } catch {
          // the page shows what it read; the operations panel keeps following the batch
        }
      })();
    }
    return () => abort.abort();
  }, [batches]);

  const results = Object.values(outcomes);
  const done = results.filter((o) => o.state !== null && o.state >= TaskState.SUCCEEDED).length;
  const failed = results.filter((o) => o.state === TaskState.FAILED);

  return (
    <Modal
      open
      width={720}
      title={t("operations.batchTitle", { operation: word, count: props.selected.length })}
      onCancel={() => props.onClose(started)}
      footer={
        started ? (
          <Space>
            {failed.length > 0 && done === results.length && (
              <Button onClick={() => void run(failed)} loading={running}>
                {t("operations.batchRetry", { count: failed.length })}
              </Button>
            )}
            <Button type="primary" onClick={() => props.onClose(true)}>
              {t("common.close")}
            </Button>
          </Space>
        ) : (
          <Space wrap>
            <CopyAsCli command={() => batchCommands(operation, willRun, { force, deleteDisks })} />
            <Button onClick={() => props.onClose(false)}>{t("common.cancel")}</Button>
            <Button
              type="primary"
              danger={props.action === Action.DELETE}
              disabled={willRun.length === 0}
              loading={running}
              onClick={() => void run(willRun)}
            >
              {t("operations.batchRun", { operation: word, count: willRun.length })}
            </Button>
          </Space>
        )
      }
    >
      {failure && <Alert type="error" showIcon title={failure} style={{ marginBottom: 12 }} />}
      {!started && (
        <>
          {(props.action === Action.STOP || props.action === Action.RESTART) && (
            <Checkbox checked={force} onChange={(e) => setForce(e.target.checked)}>
              {t("operations.batchForce")}
            </Checkbox>
          )}
          {props.action === Action.DELETE && (
            <Checkbox checked={deleteDisks} onChange={(e) => setDeleteDisks(e.target.checked)}>
              {t("operations.batchDeleteDisks")}
            </Checkbox>
          )}
          <Table
            size="small"
            pagination={false}
            rowKey={(w) => `${w.namespace}/${w.name}`}
            dataSource={[...willRun, ...skipped]}
            data-testid="batch-preview"
            columns={[
              { title: t("operations.vm"), render: (_, w) => `${w.namespace}/${w.name}` },
              {
                title: t("operations.whatHappens"),
                render: (_, w) =>
                  w.availableActions.includes(props.action) ? (
                    <Tag color="blue">{t(verb)}</Tag>
                  ) : (
                    <Typography.Text type="secondary">
                      {t("operations.skipped", { state: t(powerStateWord(w.status)) })}
                    </Typography.Text>
                  ),
              },
            ]}
          />
        </>
      )}
      {started && (
        <>
          <Progress percent={results.length ? Math.round((100 * done) / results.length) : 0} />
          <Table
            size="small"
            pagination={false}
            rowKey="key"
            dataSource={results}
            data-testid="batch-results"
            columns={[
              { title: t("operations.vm"), dataIndex: "key" },
              {
                title: t("operations.result"),
                render: (_, o) =>
                  o.state === null ? (
                    <Tag>{t("operations.state.accepted")}</Tag>
                  ) : (
                    <Tag color={o.state === TaskState.FAILED ? "red" : o.state === TaskState.SUCCEEDED ? "green" : "blue"}>
                      {t(TASK_STATE_KEYS[o.state])}
                    </Tag>
                  ),
              },
              { title: t("operations.why"), dataIndex: "why" },
            ]}
          />
        </>
      )}
    </Modal>
  );
}
