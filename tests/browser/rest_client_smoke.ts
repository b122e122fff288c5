// A mobile/desktop team's first steps with the REST API, through a client generated from the published OpenAPI
// document (openapi-typescript types + openapi-fetch): log in, list VMs, start one. It must type-check against the
// generated types (tsc --strict) and work against the running stack. tests/e2e/test_rest_client.py generates the
// types into ./generated/, compiles this file and runs it; it prints what it saw as JSON for the test to check.
import createClient, { type Middleware } from "openapi-fetch";
import type { paths } from "./generated/novasphere-api.js";

function setting(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

const api = createClient<paths>({ baseUrl: setting("NOVASPHERE_URL") });

const login = await api.POST("/api/v1/auth/login", {
  body: { username: setting("NOVASPHERE_USER"), password: setting("NOVASPHERE_PASSWORD") },
});
if (!login.data) throw new Error(`login failed: ${login.response.status} ${JSON.stringify(login.error)}`);
const token: string = login.data.accessToken ?? "";

const bearer: Middleware = {
  onRequest({ request }) {
    request.headers.set("Authorization", `Bearer ${token}`);
    return request;
  },
};
api.use(bearer);

const namespace = setting("NOVASPHERE_NAMESPACE");
const list = await api.GET("/api/v1/wukongs", { params: { query: { namespace, pageSize: 10 } } });
if (!list.data) throw new Error(`list failed: ${list.response.status} ${JSON.stringify(list.error)}`);
const names: string[] = (list.data.wukongs ?? []).map((wukong) => wukong.name ?? "");
const memory: number[] = (list.data.wukongs ?? []).map((wukong) => wukong.status?.memoryMb ?? 0);

const start = await api.POST("/api/v1/wukongs/{name}/start", {
  params: { path: { name: setting("NOVASPHERE_WUKONG") } },
  body: { namespace },
});
if (!start.data) throw new Error(`start failed: ${start.response.status} ${JSON.stringify(start.error)}`);

const refused = await api.GET("/api/v1/wukongs/{name}", {
  params: { path: { name: "no-such-vm" }, query: { namespace } },
});
let reason: string | undefined;
for (const detail of refused.error?.details ?? []) {
  // the details are a union told apart by "@type": the ErrorInfo's reason is what a client branches on
  if (detail["@type"] === "type.googleapis.com/google.rpc.ErrorInfo") reason = detail.reason;
}

console.log(
  JSON.stringify({
    tokenType: login.data.tokenType,
    names,
    memory,
    task: { operation: start.data.operation, state: start.data.state, wukong: start.data.name },
    notFound: { status: refused.response.status, reason },
  }),
);
