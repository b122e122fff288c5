// Administration: tenants, users, roles and role bindings, each a tab shown only to who holds its permission
// (/admin/tenants, /admin/users, /admin/roles, /admin/bindings). A visit without any of them says so.
import { Alert, Tabs, Typography } from "antd";
import type { ReactNode } from "react";
import { useTranslation } from "react-i18next";
import { Navigate, useNavigate, useParams } from "react-router";
import { session as currentSession, type Session } from "../api/session";
import { BINDING_MANAGE, holds, ROLE_MANAGE, TENANT_MANAGE, USER_MANAGE } from "./admin/access";
import { Bindings } from "./admin/Bindings";
import { Roles } from "./admin/Roles";
import { Tenants } from "./admin/Tenants";
import { Users } from "./admin/Users";

type TabKey = "tenants" | "users" | "roles" | "bindings";

const TABS: { key: TabKey; allowed: (s: Session) => boolean; render: (s: Session) => ReactNode }[] = [
  { key: "tenants", allowed: (s) => holds(s.identity, TENANT_MANAGE), render: (s) => <Tenants session={s} /> },
  { key: "users", allowed: (s) => holds(s.identity, USER_MANAGE), render: (s) => <Users session={s} /> },
  {
    key: "roles",
    allowed: (s) => holds(s.identity, BINDING_MANAGE) || holds(s.identity, ROLE_MANAGE),
    render: (s) => <Roles session={s} />,
  },
  { key: "bindings", allowed: (s) => holds(s.identity, BINDING_MANAGE), render: (s) => <Bindings session={s} /> },
];

export function Admin() {
  const { t } = useTranslation();
  const navigate = useNavigate();
  const shown = useParams()["*"] ?? "";
  const signedIn = currentSession();
  if (!signedIn) return null; // the route's guard signs in first
  const visible = TABS.filter((tab) => tab.allowed(signedIn));
  const title = (
    <Typography.Title level={3} style={{ marginTop: 0 }}>
      {t("admin.title")}
    </Typography.Title>
  );
  if (visible.length === 0) {
    return (
      <>
        {title}
        <Alert
          type="info"
          showIcon
          data-testid="no-admin"
          title={t("admin.none.title")}
          description={t("admin.none.body", { user: signedIn.identity.username, tenant: signedIn.identity.tenantId })}
        />
      </>
    );
  }
  const active = visible.find((tab) => tab.key === shown);
  if (!active) return <Navigate to={`/admin/${visible[0]!.key}`} replace />;
  return (
    <>
      {title}
      <Tabs
        activeKey={active.key}
        onChange={(key) => navigate(`/admin/${key}`)}
        items={visible.map((tab) => ({
          key: tab.key,
          label: t(`admin.tabs.${tab.key}`),
          children: tab.key === active.key ? tab.render(signedIn) : null,
        }))}
      />
    </>
  );
}
