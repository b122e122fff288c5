// A refusal of the server in words, next to what caused it: what happened and what to do, by the ErrorInfo reason
// (server/errors.py Reason); the server's own message (which names the objects involved) follows as the detail.
import { Code } from "@connectrpc/connect";
import { Alert, Typography } from "antd";
import { useTranslation } from "react-i18next";
import type { Problem } from "../../api/errors";

/** The reasons with general words of their own; a dialog may say more for its case (`explained`). */
const EXPLAINED_REASONS = [
  "SELF_LOCKOUT",
  "PERMISSION_DENIED",
  "ROLE_IN_USE",
  "NAMESPACE_NOT_AVAILABLE",
  "TENANT_ALREADY_EXISTS",
  "USER_ALREADY_EXISTS",
  "TENANT_NOT_FOUND",
  "USER_NOT_FOUND",
  "ROLE_NOT_FOUND",
  "ROLE_BINDING_NOT_FOUND",
  "API_KEY_NOT_FOUND",
  "TOO_MANY_API_KEYS",
  "AUTHZ_NOT_INSTALLED",
  "INVALID_ARGUMENT",
  "OBJECT_CHANGED",
  "RATE_LIMITED",
] as const;

type Props = {
  /** What was being done, e.g. "Could not disable ada". */
  title: string;
  problem: Problem;
  /** Words for this dialog's own case of a reason (e.g. SELF_LOCKOUT when disabling oneself). */
  explained?: Partial<Record<string, string>>;
  /** Field violations no form field shows. */
  unplaced?: string[];
};

export function Refusal({ title, problem, explained = {}, unplaced = [] }: Props) {
  const { t } = useTranslation();
  const advice = explained[problem.reason] ?? generalAdvice(problem, t);
  return (
    <Alert
      type="error"
      showIcon
      role="alert"
      data-testid="refusal"
      data-reason={problem.reason}
      style={{ marginBottom: 16 }}
      title={title}
      description={
        <>
          <Typography.Paragraph style={{ marginBottom: 4 }}>{advice}</Typography.Paragraph>
          {unplaced.map((violation) => (
            <Typography.Paragraph key={violation} style={{ marginBottom: 4 }}>
              {violation}
            </Typography.Paragraph>
          ))}
          {problem.message && (
            <Typography.Text type="secondary" style={{ fontSize: 12 }}>
              {t("admin.refusal.serverSaid", { message: problem.message })}
            </Typography.Text>
          )}
        </>
      }
    />
  );
}

function generalAdvice(problem: Problem, t: (key: string) => string): string {
  if ((EXPLAINED_REASONS as readonly string[]).includes(problem.reason)) return t(`admin.refusal.${problem.reason}`);
  if (problem.code === Code.ResourceExhausted) return t("admin.refusal.RATE_LIMITED");
  if (problem.code === Code.Unavailable) return t("admin.refusal.unavailable");
  if (problem.code === Code.PermissionDenied) return t("admin.refusal.PERMISSION_DENIED");
  return t("admin.refusal.other");
}
