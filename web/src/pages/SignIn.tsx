// Sign in: username, password and (for users in more than one tenant) the tenant. Refusals in words, and a lockout
// counts down the delay the server gave.
import { Alert, Button, Card, Form, Input } from "antd";
import { useEffect, useState } from "react";
import { problem, signInMessage } from "../api/errors";
import { signIn } from "../api/session";

type Fields = { username: string; password: string; tenant?: string };

export function SignIn() {
  const [error, setError] = useState<string | null>(null);
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
      setError(signInMessage(p));
      setWaitUntil(p.retryAfterSeconds ? Date.now() + p.retryAfterSeconds * 1000 : null);
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="centered">
      <Card title="Sign in to NovaSphere" className="signin-card">
        {error && (
          <Alert
            type="error"
            role="alert"
            showIcon
            style={{ marginBottom: 16 }}
            title={error}
            description={secondsLeft > 0 ? `Try again in ${secondsLeft} s.` : undefined}
          />
        )}
        <Form<Fields> layout="vertical" onFinish={submit} requiredMark={false}>
          <Form.Item label="Username" name="username" rules={[{ required: true, message: "Enter your username" }]}>
            <Input autoComplete="username" autoFocus />
          </Form.Item>
          <Form.Item label="Password" name="password" rules={[{ required: true, message: "Enter your password" }]}>
            <Input.Password autoComplete="current-password" />
          </Form.Item>
          <Form.Item label="Tenant" name="tenant" extra="Only if you belong to more than one.">
            <Input />
          </Form.Item>
          <Button type="primary" htmlType="submit" block loading={busy} disabled={secondsLeft > 0}>
            Sign in
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
