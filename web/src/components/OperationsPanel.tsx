// The operations this tab follows, each with its live progress and step until it ends, then its outcome. On a wide
// window it floats at the bottom right (the page keeps room below its end to scroll clear of it, and it folds to its
// title); on a narrow one it sits in the page's flow under the header, so it never covers the page.
import { DownOutlined, UpOutlined } from "@ant-design/icons";
import { TaskState } from "@gen/novasphere/v1/task_pb";
import { Button, Card, List, Progress, Typography } from "antd";
import { useEffect, useRef, useState } from "react";
import { useTranslation } from "react-i18next";
import { dismiss, OPERATION_KEYS, TASK_STATE_KEYS, useFollowed } from "../api/operations";

export function OperationsPanel() {
  const { t } = useTranslation();
  const followed = useFollowed();
  const [folded, setFolded] = useState(false);
  const panel = useRef<HTMLDivElement>(null);
  const shown = followed.length > 0;

  useEffect(() => {
    const element = panel.current;
    if (!element) return;
    const root = document.documentElement.style;
    const observer = new ResizeObserver(() => root.setProperty("--operations-height", `${element.offsetHeight}px`));
    observer.observe(element);
    return () => {
      observer.disconnect();
      root.removeProperty("--operations-height");
    };
  }, [shown]);

  if (!shown) return null;
  return (
    <Card
      ref={panel}
      size="small"
      title={t("operations.panelTitle")}
      className="operations-panel"
      data-testid="operations"
      extra={
        <Button
          size="small"
          type="text"
          icon={folded ? <UpOutlined /> : <DownOutlined />}
          aria-expanded={!folded}
          aria-label={t(folded ? "operations.expand" : "operations.collapse")}
          onClick={() => setFolded(!folded)}
        />
      }
    >
      {!folded && (
        <List
          size="small"
          dataSource={followed}
          renderItem={({ task }) => (
            <List.Item
              data-testid={`task-${task.id}`}
              data-state={TaskState[task.state].toLowerCase()}
              extra={
                task.state >= TaskState.SUCCEEDED && (
                  <Button size="small" type="text" onClick={() => dismiss(task.id)} aria-label={t("operations.dismiss")}>
                    ×
                  </Button>
                )
              }
            >
              <div className="operation">
                <Typography.Text strong>
                  {t(OPERATION_KEYS[task.operation])} {task.name ? `${task.namespace}/${task.name}` : task.namespace}
                </Typography.Text>{" "}
                <Typography.Text type="secondary">{t(TASK_STATE_KEYS[task.state])}</Typography.Text>
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
      )}
    </Card>
  );
}
