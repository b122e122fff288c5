// The operations this tab follows, each with its live progress and step until it ends, then its outcome.
import { TaskState } from "@gen/novasphere/v1/task_pb";
import { Button, Card, List, Progress, Typography } from "antd";
import { dismiss, OPERATION_WORDS, useFollowed } from "../api/operations";

const STATE_WORDS: Record<TaskState, string> = {
  [TaskState.TASK_STATE_UNSPECIFIED]: "",
  [TaskState.PENDING]: "pending",
  [TaskState.RUNNING]: "running",
  [TaskState.SUCCEEDED]: "succeeded",
  [TaskState.FAILED]: "failed",
  [TaskState.CANCELLED]: "cancelled",
};

export function OperationsPanel() {
  const followed = useFollowed();
  if (!followed.length) return null;
  return (
    <Card size="small" title="Operations" className="operations-panel" data-testid="operations">
      <List
        size="small"
        dataSource={followed}
        renderItem={({ task }) => (
          <List.Item
            data-testid={`task-${task.id}`}
            data-state={STATE_WORDS[task.state]}
            extra={
              task.state >= TaskState.SUCCEEDED && (
                <Button size="small" type="text" onClick={() => dismiss(task.id)} aria-label="Dismiss">
                  ×
                </Button>
              )
            }
          >
            <div className="operation">
              <Typography.Text strong>
                {OPERATION_WORDS[task.operation]} {task.namespace}/{task.name}
              </Typography.Text>{" "}
              <Typography.Text type="secondary">{STATE_WORDS[task.state]}</Typography.Text>
              <Progress
                percent={task.progress}
                size="small"
                status={
                  task.state === TaskState.FAILED
                    ? "exception"
                    : task.state === TaskState.SUCCEEDED
                      ? "success"
                      : task.state === TaskState.CANCELLED
                        ? "normal"
                        : "active"
                }
              />
              <Typography.Text type="secondary" className="step">
                {task.state === TaskState.FAILED ? task.error?.message || task.step : task.step}
              </Typography.Text>
            </div>
          </List.Item>
        )}
      />
    </Card>
  );
}
