// The signed-in session. The access token lives in memory only; the refresh token is an HttpOnly cookie that script
// cannot read (Login with refreshTokenCookie), so a reload signs in again with Refresh and an empty body. Refreshes
// of all tabs take turns under one Web Lock: each rotates the cookie, and a tab that presented a token another tab
// had just used would look like a stolen token to the server (which then ends the session).
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { AuthService, type Identity, type LoginResponse } from "@gen/novasphere/v1/auth_service_pb";
import { transport } from "./transport";

const REFRESH_LOCK = "novasphere-refresh";
/** Refresh this long before the access token expires. */
const REFRESH_MARGIN_MS = 60_000;

export type Session = { token: string; expires: Date; identity: Identity };

type Listener = (session: Session | null) => void;

let current: Session | null = null;
let timer: ReturnType<typeof setTimeout> | undefined;
const listeners = new Set<Listener>();
// Auth calls carry no Authorization header (Refresh must work with an expired token), so they use a bare client.
const auth = createClient(AuthService, transport());

export function session(): Session | null {
  return current;
}

export function onSessionChange(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

function adopt(response: LoginResponse): Session {
  if (!response.identity || !response.expireTime) throw new Error("the server's login answer is incomplete");
  const next = { token: response.accessToken, expires: timestampDate(response.expireTime), identity: response.identity };
  set(next);
  return next;
}

function set(next: Session | null): void {
  current = next;
  clearTimeout(timer);
  if (next) {
    const due = Math.max(5_000, next.expires.getTime() - Date.now() - REFRESH_MARGIN_MS);
    timer = setTimeout(() => void refresh().catch(() => set(null)), due);
  }
  for (const listener of listeners) listener(next);
}

export async function signIn(username: string, password: string, tenantId: string): Promise<Session> {
  return adopt(await auth.login({ username, password, tenantId, refreshTokenCookie: true }));
}

/** A new access token from the cookie: after a reload, before expiry, and when a call was refused as unauthenticated. */
export async function refresh(): Promise<Session> {
  const run = async () => adopt(await auth.refresh({}));
  return navigator.locks ? navigator.locks.request(REFRESH_LOCK, run) : run();
}

/** Ends the session on the server (its cookie too), then here. */
export async function signOut(): Promise<void> {
  const token = current?.token;
  try {
    if (token) await auth.logout({}, { headers: { Authorization: `Bearer ${token}` } });
  } finally {
    set(null);
  }
}

/** Adds the access token to every call; a call refused as unauthenticated is retried once after a refresh. */
export const withAccessToken: Interceptor = (next) => async (request) => {
  const send = () => {
    if (current) request.header.set("Authorization", `Bearer ${current.token}`);
    return next(request);
  };
  try {
    return await send();
  } catch (error) {
    if (ConnectError.from(error).code !== Code.Unauthenticated || request.stream) throw error;
    await refresh();
    return send();
  }
};

/** Whether the identity holds `permission`; `admin` holds them all, as on the server. The server checks every call
 * again: this only decides what a page offers. */
export function holds(identity: Identity, permission: string): boolean {
  return identity.permissions.includes(permission) || identity.permissions.includes("admin");
}
