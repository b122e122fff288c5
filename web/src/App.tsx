// Routes, and the gate in front of them: a reload restores the session from the refresh cookie before anything
// that needs it renders; without one, the sign-in page (which returns to where the user was going).
import { LogoutOutlined, MenuOutlined, UserOutlined } from "@ant-design/icons";
import { Button, Dropdown, Grid, Layout, Menu, Spin, type MenuProps } from "antd";
import { lazy, Suspense, useEffect, useState, type ReactNode } from "react";
import { useTranslation } from "react-i18next";
import { Link, Navigate, Route, Routes, useLocation, useNavigate } from "react-router";
import { onSessionChange, refresh, session, signOut, type Session } from "./api/session";
import { LanguageSwitch } from "./components/LanguageSwitch";
import { useDocumentTitle } from "./i18n/useDocumentTitle";
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
const Notifications = lazy(() => import("./pages/Notifications").then((m) => ({ default: m.Notifications })));

/** The shell's sections: path, message key, and the permissions of which one is needed to see it (none: all). */
const SECTIONS: { path: string; label: string; anyOf?: string[] }[] = [
  { path: "/vms", label: "shell.nav.vms" },
  { path: "/overview", label: "shell.nav.overview" },
  { path: "/api-keys", label: "shell.nav.apiKeys" },
  {
    path: "/notifications",
    label: "shell.nav.notifications",
    anyOf: ["admin", "notification:subscribe", "notification:webhook:manage"],
  },
  { path: "/admin", label: "shell.nav.admin", anyOf: ["admin", "tenant:manage", "user:manage", "role:manage", "binding:manage"] },
];

export function App() {
  const { t } = useTranslation();
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
        <Spin size="large" aria-label={t("common.loading")} />
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
      <Route path="/notifications" element={<Guarded session={current}><Notifications /></Guarded>} />
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
  const { t } = useTranslation();
  const location = useLocation();
  const wide = Grid.useBreakpoint().lg ?? true; // below 992 px the sections fold into one menu button
  const username = current.identity.username;
  useEffect(() => {
    const stop = new AbortController();
    void followOpenTasks(stop.signal);
    return () => stop.abort();
  }, [username]);
  const permissions = current.identity.permissions;
  const sections = SECTIONS.filter((s) => !s.anyOf || s.anyOf.some((p) => permissions.includes(p)));
  const here = sections.find((s) => location.pathname === s.path || location.pathname.startsWith(`${s.path}/`));
  useDocumentTitle(t(here?.label ?? "shell.nav.vms"));
  const items: MenuProps["items"] = sections.map((s) => ({ key: s.path, label: <Link to={s.path}>{t(s.label)}</Link> }));
  const selected = here ? [here.path] : [];
  return (
    <Layout className="shell">
      <a className="skip-link" href="#content">
        {t("shell.skipToContent")}
      </a>
      <Layout.Header className="shell-header">
        <Link to="/vms" className="brand">
          {t("shell.product")}
        </Link>
        <nav aria-label={t("shell.navigation")} className="shell-nav">
          {wide ? (
            // the links are the tab stops (the list itself is not one: no extra stop before them)
            <Menu mode="horizontal" selectedKeys={selected} items={items} tabIndex={-1} />
          ) : (
            <Dropdown menu={{ items, selectedKeys: selected }} trigger={["click"]} autoFocus>
              <Button type="text" icon={<MenuOutlined />} aria-label={t("shell.openNavigation")} data-testid="nav-menu" />
            </Dropdown>
          )}
        </nav>
        <LanguageSwitch />
        <UserMenu session={current} />
      </Layout.Header>
      <OperationsPanel />
      <Layout.Content id="content" tabIndex={-1} className="shell-content">
        <Suspense fallback={<Spin aria-label={t("common.loading")} />}>{children}</Suspense>
      </Layout.Content>
    </Layout>
  );
}

/** Who is signed in, in which tenant, and signing out. */
function UserMenu({ session: current }: { session: Session }) {
  const { t } = useTranslation();
  const navigate = useNavigate();
  const [leaving, setLeaving] = useState(false);
  const { username, tenantId } = current.identity;
  const items: MenuProps["items"] = [
    { key: "who", label: t("shell.signedInAs", { username }), disabled: true },
    { key: "tenant", label: t("shell.tenant", { tenant: tenantId }), disabled: true },
    { type: "divider" },
    { key: "sign-out", label: t("shell.signOut"), icon: <LogoutOutlined />, "data-testid": "sign-out" },
  ];
  const onClick: MenuProps["onClick"] = ({ key }) => {
    if (key !== "sign-out") return;
    setLeaving(true);
    void signOut().finally(() => navigate("/signin", { replace: true }));
  };
  return (
    <Dropdown menu={{ items, onClick }} trigger={["click"]} autoFocus>
      <Button
        type="text"
        icon={<UserOutlined />}
        loading={leaving}
        data-testid="user-menu"
        className="user-menu"
      >
        <span className="who" data-testid="who">
          {username} · {tenantId}
        </span>
      </Button>
    </Dropdown>
  );
}

/** Where the sign-in page's `next` points, if it is a path of this app (never another origin). */
function afterSignIn(search: string): string {
  const next = new URLSearchParams(search).get("next") ?? "";
  return next.startsWith("/") && !next.startsWith("//") ? next : "/vms";
}
