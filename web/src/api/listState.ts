// The VM list's view as URL search parameters, so a reload or a shared link shows the same page.
export const SORTABLE = ["name", "createTime", "status", "cpu", "memory"] as const;
export type SortField = (typeof SORTABLE)[number];
export const COLUMNS = [
  "name",
  "namespace",
  "status",
  "cpu",
  "memory",
  "image",
  "node",
  "ip",
  "access",
  "created",
] as const;
export type Column = (typeof COLUMNS)[number];
export const PAGE_SIZES = [10, 20, 50, 100];

export type ListState = {
  page: number;
  size: number;
  sort: SortField;
  order: "asc" | "desc";
  status: string[];
  namespace: string;
  name: string;
  labels: string;
  columns: Column[];
};

export function readListState(params: URLSearchParams): ListState {
  const number = (key: string, fallback: number) => {
    const value = Number.parseInt(params.get(key) ?? "", 10);
    return Number.isFinite(value) && value > 0 ? value : fallback;
  };
  const size = number("size", 20);
  const sort = params.get("sort") ?? "name";
  const columns = (params.get("cols") ?? "").split(",").filter((c): c is Column => COLUMNS.includes(c as Column));
  return {
    page: number("page", 1),
    size: PAGE_SIZES.includes(size) ? size : 20,
    sort: SORTABLE.includes(sort as SortField) ? (sort as SortField) : "name",
    order: params.get("order") === "desc" ? "desc" : "asc",
    status: (params.get("status") ?? "").split(",").filter(Boolean),
    namespace: params.get("ns") ?? "",
    name: params.get("q") ?? "",
    labels: params.get("labels") ?? "",
    columns: columns.length ? columns : [...COLUMNS],
  };
}

/** Only what differs from the defaults, so URLs stay short. */
export function writeListState(state: ListState): URLSearchParams {
  const params = new URLSearchParams();
  if (state.page !== 1) params.set("page", String(state.page));
  if (state.size !== 20) params.set("size", String(state.size));
  if (state.sort !== "name") params.set("sort", state.sort);
  if (state.order !== "asc") params.set("order", state.order);
  if (state.status.length) params.set("status", state.status.join(","));
  if (state.namespace) params.set("ns", state.namespace);
  if (state.name) params.set("q", state.name);
  if (state.labels) params.set("labels", state.labels);
  if (state.columns.length !== COLUMNS.length) params.set("cols", state.columns.join(","));
  return params;
}
