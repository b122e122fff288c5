// What the signed-in caller may do here, from the identity the server gave at sign-in (`admin` implies everything, as
// on the server). The server checks again on every call: this only decides what to offer.
import type { Identity } from "@gen/novasphere/v1/auth_service_pb";
import { holds } from "../../api/session";

export const ADMIN = "admin";
export const TENANT_MANAGE = "tenant:manage";
export const USER_MANAGE = "user:manage";
export const ROLE_MANAGE = "role:manage";
export const BINDING_MANAGE = "binding:manage";
export const APIKEY_MANAGE = "apikey:manage";
export const NOTIFICATION_SUBSCRIBE = "notification:subscribe";
export const NOTIFICATION_WEBHOOK_MANAGE = "notification:webhook:manage";

/** Never held by an API key, whatever it asks for (server/auth NOT_FOR_API_KEYS): administration needs a login. */
export const NOT_FOR_API_KEYS: readonly string[] = [
  APIKEY_MANAGE,
  BINDING_MANAGE,
  TENANT_MANAGE,
  USER_MANAGE,
  ROLE_MANAGE,
  ADMIN,
];

export { holds };

/** The permissions of `wanted` the caller does not hold: what granting a role with them would escalate to. */
export function beyondCaller(identity: Identity, wanted: readonly string[]): string[] {
  return wanted.filter((permission) => !holds(identity, permission));
}
