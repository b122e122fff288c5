// Routes, and the gate in front of them: a reload restores the session from the refresh cookie before anything
// that needs it renders; without one, the sign-in page (which returns to where the user was going).
import { Button, Layout, Space, Spin, Typography } from "antd";
import { lazy, Suspense, useEffect, useState, type ReactNode } from "react";
import { Navigate, Route, Routes, useLocation, useNavigate } from "react-router";
import { onSessionChange, refresh, session, signOut, type Session } from "./api/session";
import { SignIn } from "./pages/SignIn";
import { VmDetail } from "./pages/VmDetail";
import { VmList } from "./pages/VmList";
import { OperationsPanel } from "./components/OperationsPanel";
import { followOpenTasks } from "./api/operations";

// The forms load when first opened: the list, which every visit starts from, does not wait for them.
const VmCreate = lazy(() => import("./pages/VmCreate").then((m) => ({ default: m.VmCreate })));
const VmEdit = lazy(() => import("./pages/VmEdit").then((m) => ({ default: m.VmEdit })));
// So do the console (noVNC, xterm.js), the overview (ECharts) and the settings and administration pages.
const VmConsole = lazy(() => import("./pages/VmConsole").then((m) => ({ default: m.VmConsole })));
const Overview = lazy(() => import("./pages/Overview").then((m) => ({ default: m.Overview })));
const ApiKeys = lazy(() => import("./pages/ApiKeys").then((m) => ({ default: m.ApiKeys })));
const Admin = lazy(() => import("./pages/Admin").then((m) => ({ default: m.Admin })));

export function App() {
  const location = useLocation();
  const [current, setCurrent] = useState<Session | null>(session());
  const [restoring, setRestoring] = useState(current === null);

  useEffect(() => {
    const unsubscribe = onSessionChange(setCurrent);
    if (session() === null) {
      refresh()
        .catch(() => null) // no cookie, or the session ended: sign in
        .finally(() => setRestoring(false));
    }
    return unsubscribe;
  }, []);

  if (restoring) {
    return (
      <div className="centered">
        <Spin size="large" aria-label="Loading" />
      </div>
    );
  }
  return (
    <Routes>
      <Route path="/signin" element={current ? <Navigate to={afterSignIn(location.search)} replace /> : <SignIn />} />
      <Route path="/vms" element={<Guarded session={current}>{current && <VmList session={current} />}</Guarded>} />
      <Route path="/vms/new" element={<Guarded session={current}><VmCreate /></Guarded>} />
      <Route path="/vms/:namespace/:name/edit" element={<Guarded session={current}><VmEdit /></Guarded>} />
      <Route path="/vms/:namespace/:name" element={<Guarded session={current}><VmDetail /></Guarded>} />
      <Route path="/vms/:namespace/:name/console/:protocol" element={<Guarded session={current}><VmConsole /></Guarded>} />
      <Route path="/overview" element={<Guarded session={current}><Overview /></Guarded>} />
      <Route path="/api-keys" element={<Guarded session={current}><ApiKeys /></Guarded>} />
      <Route path="/admin/*" element={<Guarded session={current}><Admin /></Guarded>} />
      <Route path="*" element={<Navigate to="/vms" replace />} />
    </Routes>
  );
}

function Guarded({ session: current, children }: { session: Session | null; children: ReactNode }) {
  const location = useLocation();
  if (!current) {
    const next = encodeURIComponent(location.pathname + location.search);
    return <Navigate to={`/signin?next=${next}`} replace />;
  }
  return <Shell session={current}>{children}</Shell>;
}

function Shell({ session: current, children }: { session: Session; children: ReactNode }) {
  const navigate = useNavigate();
  const username = current.identity.username;
  useEffect(() => {
    const stop = new AbortController();
    void followOpenTasks(stop.signal);
    return () => stop.abort();
  }, [username]);
  const [leaving, setLeaving] = useState(false);
  return (
    <Layout className="shell">
      <Layout.Header className="shell-header">
        <Typography.Title level={4} className="brand">
          NovaSphere
        </Typography.Title>
        <Space>
          <Typography.Text className="who" data-testid="who">
            {current.identity.username} · {current.identity.tenantId}
          </Typography.Text>
          <Button
            loading={leaving}
            onClick={() => {
              setLeaving(true);
              void signOut().finally(() => navigate("/signin", { replace: true }));
            }}
          >
            Sign out
          </Button>
        </Space>
      </Layout.Header>
      <Layout.Content className="shell-content">
        <Suspense fallback={<Spin aria-label="Loading" />}>{children}</Suspense>
      </Layout.Content>
      <OperationsPanel />
    </Layout>
  );
}

/** Where the sign-in page's `next` points, if it is a path of this app (never another origin). */
function afterSignIn(search: string): string {
  const next = new URLSearchParams(search).get("next") ?? "";
  return next.startsWith("/") && !next.startsWith("//") ? next : "/vms";
}
