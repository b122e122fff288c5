// Sign in: username, password and (for users in more than one tenant) the tenant. Refusals in words, and a lockout
// counts down the delay the server gave.
import { Alert, Button, Card, Form, Input } from "antd";
import { useEffect, useState } from "react";
import { useTranslation } from "react-i18next";
import { problem, signInMessage, type Problem } from "../api/errors";
import { signIn } from "../api/session";
import { LanguageSwitch } from "../components/LanguageSwitch";
import { useDocumentTitle } from "../i18n/useDocumentTitle";

type Fields = { username: string; password: string; tenant?: string };

export function SignIn() {
  const { t } = useTranslation();
  useDocumentTitle(t("signin.pageTitle"));
  const [error, setError] = useState<Problem | null>(null); // in words when shown: the language may change
  const [waitUntil, setWaitUntil] = useState<number | null>(null);
  const [busy, setBusy] = useState(false);
  const secondsLeft = useCountdown(waitUntil);

  const submit = async ({ username, password, tenant }: Fields) => {
    setBusy(true);
    setError(null);
    try {
      await signIn(username.trim(), password, (tenant ?? "").trim()); // the app then goes on to `next`
    } catch (caught) {
      const p = problem(caught);
      setError(p);
      setWaitUntil(p.retryAfterSeconds ? Date.now() + p.retryAfterSeconds * 1000 : null);
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="centered">
      <Card title={t("signin.title")} extra={<LanguageSwitch />} className="signin-card">
        {error && (
          <Alert
            type="error"
            role="alert"
            showIcon
            style={{ marginBottom: 16 }}
            title={signInMessage(error)}
            description={secondsLeft > 0 ? t("signin.retryIn", { seconds: secondsLeft }) : undefined}
          />
        )}
        <Form<Fields> layout="vertical" onFinish={submit} requiredMark={false}>
          <Form.Item label={t("signin.username")} name="username" rules={[{ required: true, message: t("signin.usernameRequired") }]}>
            <Input autoComplete="username" autoFocus />
          </Form.Item>
          <Form.Item label={t("signin.password")} name="password" rules={[{ required: true, message: t("signin.passwordRequired") }]}>
            <Input.Password autoComplete="current-password" />
          </Form.Item>
          <Form.Item label={t("signin.tenant")} name="tenant" extra={t("signin.tenantHelp")}>
            <Input />
          </Form.Item>
          <Button type="primary" htmlType="submit" block loading={busy} disabled={secondsLeft > 0}>
            {t("signin.submit")}
          </Button>
        </Form>
      </Card>
    </div>
  );
}

function useCountdown(until: number | null): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    if (until === null) return;
    const tick = setInterval(() => setNow(Date.now()), 250);
    return () => clearInterval(tick);
  }, [until]);
  return until === null ? 0 : Math.max(0, Math.ceil((until - now) / 1000));
}
