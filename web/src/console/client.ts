// The ConsoleService client, on the signed-in transport like the other services' (web/src/api/clients.ts).
import { createClient } from "@connectrpc/connect";
import { ConsoleService } from "@gen/novasphere/v1/console_service_pb";
import { holds, session, withAccessToken } from "../api/session";
import { transport } from "../api/transport";

export const consoleClient = createClient(ConsoleService, transport([withAccessToken]));

/** The subprotocol that carries the one-time ticket (never the query string: URLs end up in logs and history). */
export const TICKET_PROTOCOL = "ticket.novasphere.dev.";
/** Offered beside the ticket: raw bytes in binary frames (noVNC's name for it). */
export const BINARY_PROTOCOL = "binary";
export const MANAGE_CONSOLES = "vm:console:manage";
export const ACCESS_CONSOLES = "vm:console:access";

/** Whether the signed-in user holds `permission` (the `admin` permission holds them all, as on the server). */
export function may(permission: string): boolean {
  const current = session();
  return current !== null && holds(current.identity, permission);
}
