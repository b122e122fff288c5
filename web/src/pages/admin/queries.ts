// The administration lists, read once per visit of their tab. After a change the list is edited in place from the
// server's answer rather than read again: another read could come from a replica whose informer has not seen the
// change yet, and would show it undone.
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { adminClient } from "../../api/clients";

export const TENANTS = ["admin", "tenants"] as const;
export const USERS = ["admin", "users"] as const;
export const ROLES = ["admin", "roles"] as const;
export const BINDINGS = ["admin", "bindings"] as const;

const FRESH_EACH_VISIT = { staleTime: 0, refetchOnMount: "always" } as const;

export function useTenants() {
  return useQuery({ queryKey: TENANTS, queryFn: ({ signal }) => adminClient.listTenants({}, { signal }), ...FRESH_EACH_VISIT });
}

export function useUsers(enabled = true) {
  return useQuery({
    queryKey: USERS,
    queryFn: ({ signal }) => adminClient.listUsers({}, { signal }),
    enabled,
    ...FRESH_EACH_VISIT,
  });
}

export function useRoles(enabled = true) {
  return useQuery({
    queryKey: ROLES,
    queryFn: ({ signal }) => adminClient.listRoles({}, { signal }),
    enabled,
    ...FRESH_EACH_VISIT,
  });
}

export function useBindings() {
  return useQuery({
    queryKey: BINDINGS,
    queryFn: ({ signal }) => adminClient.listRoleBindings({}, { signal }),
    ...FRESH_EACH_VISIT,
  });
}

/** Edits a cached list in place (see above); nothing happens to a list not read yet. */
export function useEditCache() {
  const queries = useQueryClient();
  return function editCache<T>(key: readonly string[], edit: (old: T) => T): void {
    queries.setQueryData<T>(key, (old) => (old ? edit(old) : old));
  };
}
