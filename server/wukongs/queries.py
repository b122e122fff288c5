"""Reading Wukongs: one with its detail, or a filtered, sorted page, all from this replica's cache.

Page tokens are keyset tokens: they carry the sort key of the page's last Wukong, so the next page starts right
after it whatever was added or removed meanwhile (no Wukong skipped or shown twice, unless its own sort key changes),
and any replica can continue them. They also carry the filter's fingerprint, to refuse reuse with other filters.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import AsyncGenerator, Callable, Iterable, Sequence
from dataclasses import dataclass

from server import errors, names, paging
from server.auth import Caller
from server.tenancy import Tenancy
from server.wukongs import detail
from server.wukongs.cache import Change, WukongCache, WukongState
from server.wukongs.detail_sources import DetailSources
from server.wukongs.filters import WukongFilter
from server.wukongs.watch import Encoder, Scope, WatchHub

VIEWS_KEPT = 32
SortKey = paging.SortKey
_SORT_KEYS: dict[str, Callable[[WukongState], SortKey]] = {
    "name": lambda s: (s.name, s.namespace),
    "createTime": lambda s: (s.wukong["metadata"].get("creationTimestamp") or "", s.namespace, s.name),
    "status": lambda s: (s.status.power_state.name, s.namespace, s.name),
    "cpu": lambda s: (s.status.cpu, s.namespace, s.name),
    "memory": lambda s: (s.status.memory_bytes, s.namespace, s.name),
}
SORT_FIELDS = tuple(_SORT_KEYS)
SORT_ORDERS = ("asc", "desc")
"""`sort_order`'s values, in any case; empty is `asc`."""
_SORT_ALIASES = {"create_time": "createTime", "createtime": "createTime"}


@dataclass(frozen=True)
class ListRequest:
    namespace: str = ""
    page_size: int = 0
    page_token: str = ""
    page: int = 0
    status: str = ""
    name_like: str = ""
    label_selector: str = ""
    sort_by: str = ""
    sort_order: str = ""
    cursor: str = ""


@dataclass(frozen=True)
class Page:
    wukongs: tuple[WukongState, ...]
    next_page_token: str
    total: int
    page: int
    pages: int
    page_size: int
    cursor: int


SHOWN_MAX = 500
"""`names` a WatchWukong may give: a page of a list, and then some."""


def _shown(entries: Sequence[str], namespace: str) -> frozenset[tuple[str, str]]:
    """WatchWukong's `names` as (namespace, name) keys: `namespace/name`, or a name in the request's namespace."""
    if len(entries) > SHOWN_MAX:
        raise errors.InvalidArgument.field("names", f"at most {SHOWN_MAX} Wukongs (got {len(entries)})")
    keys: set[tuple[str, str]] = set()
    for index, entry in enumerate(entries):
        where, _, name = entry.rpartition("/")
        where = where or namespace
        if not where:
            raise errors.InvalidArgument.field(
                f"names[{index}]", f"'{entry[:120]}' needs its namespace: give namespace/name, or set namespace"
            )
        if not (names.is_dns_label(where) and names.is_dns_label(name)) or len(entry) > 2 * names.DNS_LABEL_MAX + 1:
            raise errors.InvalidArgument.field(f"names[{index}]", f"'{entry[:120]}' is not namespace/name or a name")
        keys.add((where, name))
    return frozenset(keys)


def parse_cursor(text: str, *, field: str = "cursor") -> int | None:
    if not text:
        return None
    if not text.isdigit() or len(text) > 20:
        raise errors.InvalidArgument.field(field, f"'{text[:30]}' is not a cursor: pass a `cursor` the API returned")
    return int(text)


class WukongQueries:
    def __init__(
        self,
        *,
        cache: WukongCache,
        detail_sources: DetailSources,
        hub: WatchHub,
        tenancy: Tenancy,
        cursor_wait_seconds: float,
    ) -> None:
        self._cache = cache
        self._detail_sources = detail_sources
        self._hub = hub
        self._tenancy = tenancy
        self._cursor_wait = cursor_wait_seconds
        self._views: dict[tuple[str, str], _SortedView] = {}
        cache.subscribe(self._apply)

    async def get_with_detail(
        self, caller: Caller, *, namespace: str, name: str, vm_id: str, cursor: str, view: detail.View
    ) -> tuple[WukongState, detail.Detail | None]:
        """`get`, and in the full view the Wukong's detail (None in the basic view, which calls no one)."""
        state = await self.get(caller, namespace=namespace, name=name, vm_id=vm_id, cursor=cursor)
        if view is detail.View.BASIC:
            return state, None
        return state, detail.of(self._detail_sources, state)

    async def get(self, caller: Caller, *, namespace: str, name: str, vm_id: str, cursor: str = "") -> WukongState:
        """The caller's Wukong by name (default namespace when empty) or UID; NOT_FOUND outside its tenant. (Every
        permission is checked by the transport, from its table.)"""
        wanted = parse_cursor(cursor)
        if vm_id:
            if name or namespace:
                raise errors.InvalidArgument.field("vm_id", "give either vm_id or name (and namespace), not both")
            return await self._get_by_uid(caller, vm_id, wanted)
        names.check_wukong_name("name", name)
        namespace = await self._tenancy.namespace_for(caller, namespace)
        if wanted is not None:
            await self.wait_for(wanted, key=(namespace, name))
        state = self._cache.get((namespace, name))
        if state is None:
            raise errors.WukongNotFound(namespace=namespace, name=name)
        return state

    async def _get_by_uid(self, caller: Caller, uid: str, wanted: int | None) -> WukongState:
        if len(uid) > 64:
            raise errors.InvalidArgument.field("vm_id", "is not a Wukong UID (too long)")
        if wanted is not None:
            await self.wait_for(wanted, key=None)
        state = self._cache.by_uid(uid)
        if state is None or state.namespace not in self._tenancy.namespaces(caller):
            raise errors.WukongNotFound(namespace="*", name=f"uid {uid}")
        return state

    async def list(self, caller: Caller, request: ListRequest) -> Page:
        wukong_filter = WukongFilter.parse(
            namespaces=await self._tenancy.scope(caller, request.namespace),
            status=request.status,
            name_like=request.name_like,
            label_selector=request.label_selector,
        )
        sort_by, descending = _sort(request.sort_by, request.sort_order)
        page_size = paging.page_size(request.page_size)
        if request.page < 0:
            raise errors.InvalidArgument.field(
                "page", f"must be 1 or more (or 0 for the first page); got {request.page}"
            )
        if request.page and request.page_token:
            raise errors.InvalidArgument.field("page", "give either page or page_token, not both")
        wanted = parse_cursor(request.cursor)
        fingerprint = f"{wukong_filter.fingerprint()}:{sort_by}:{'desc' if descending else 'asc'}"
        after = (
            paging.decode_token(
                request.page_token,
                fingerprint,
                same_as="namespace, status, name_like, label_selector, sort_by and sort_order",
            )
            if request.page_token
            else None
        )
        if wanted is not None:
            await self.wait_for(wanted, key=None)

        view = self._sorted(wukong_filter, sort_by)
        rows, keys = view.rows, view.keys
        total, pages = len(rows), max(1, math.ceil(len(rows) / page_size))
        page_number = after.page if after is not None else (request.page or 1)
        if descending:
            end = bisect.bisect_left(keys, after.key) if after else total - (page_number - 1) * page_size
            begin = max(0, end - page_size)
            chosen, more = rows[begin : max(0, end)][::-1], begin > 0
        else:
            begin = bisect.bisect_right(keys, after.key) if after else (page_number - 1) * page_size
            chosen, more = rows[begin : begin + page_size], begin + page_size < total
        next_token = paging.encode_token(fingerprint, chosen[-1][0], page_number + 1) if chosen and more else ""
        return Page(
            wukongs=tuple(state for _, state in chosen),
            next_page_token=next_token,
            total=total,
            page=page_number,
            pages=pages,
            page_size=page_size,
            cursor=self._cache.cursor,
        )

    async def watch(
        self,
        caller: Caller,
        *,
        name: str,
        namespace: str,
        status: str,
        name_like: str,
        label_selector: str,
        cursor: str,
        encoder: Encoder,
        shown: Sequence[str] = (),
    ) -> AsyncGenerator[object, None]:
        """The stream of WatchWukong's payloads (see `WatchHub.watch`), once `cursor` is reached as for a read."""
        namespaces = (
            frozenset({await self._tenancy.namespace_for(caller, namespace)})
            if name
            else await self._tenancy.scope(caller, namespace)
        )
        wukong_filter = WukongFilter.parse(
            namespaces=namespaces, name=name, status=status, name_like=name_like, label_selector=label_selector
        )
        wanted = parse_cursor(cursor)
        if wanted is not None:
            await self.wait_for(wanted, key=None)
        scope = Scope(
            lambda: self._tenancy.namespaces(caller), named=next(iter(namespaces)) if name or namespace else ""
        )
        keys = _shown(shown, namespace)
        group = (caller.tenant, scope.named, wukong_filter.fingerprint(), caller.permissions, keys)
        return self._hub.watch(wukong_filter, encoder, group, wanted, scope, keys)

    def _sorted(self, wukong_filter: WukongFilter, sort_by: str) -> _SortedView:
        """The matching Wukongs in ascending order. Views of the most recent filters are kept and updated with every
        change, so paging and polling the same view costs a bisect, not a filter and sort of every Wukong."""
        view_key = (wukong_filter.fingerprint(), sort_by)
        view = self._views.pop(view_key, None)
        if view is None:
            view = _SortedView(wukong_filter, _SORT_KEYS[sort_by], self._cache.states())
        self._views[view_key] = view  # most recently used last
        while len(self._views) > VIEWS_KEPT:
            del self._views[next(iter(self._views))]
        return view

    def _apply(self, change: Change) -> None:
        for view in self._views.values():
            view.apply(change)

    async def wait_for(self, cursor: int, *, key: tuple[str, str] | None) -> None:
        if not await self._cache.wait_for(cursor, key=key, within=self._cursor_wait):
            raise errors.CursorNotReached(cursor=cursor, seen=self._cache.cursor, waited=self._cursor_wait)


class _SortedView:
    """The Wukongs one filter selects, sorted by one key, kept sorted as changes arrive."""

    def __init__(
        self, wukong_filter: WukongFilter, key: Callable[[WukongState], SortKey], states: Iterable[WukongState]
    ) -> None:
        self._filter = wukong_filter
        self._key = key
        self.rows = sorted((key(s), s) for s in states if wukong_filter.matches(s))
        self.keys = [row[0] for row in self.rows]

    def apply(self, change: Change) -> None:
        if change.before is not None and self._filter.matches(change.before):
            index = bisect.bisect_left(self.keys, self._key(change.before))
            if index < len(self.keys) and self.rows[index][1].key == change.before.key:
                del self.rows[index], self.keys[index]
        if change.after is not None and self._filter.matches(change.after):
            key = self._key(change.after)
            index = bisect.bisect_left(self.keys, key)
            self.rows.insert(index, (key, change.after))
            self.keys.insert(index, key)


def _sort(sort_by: str, sort_order: str) -> tuple[str, bool]:
    field = _SORT_ALIASES.get(sort_by.lower(), sort_by) if sort_by else "name"
    violations = []
    if field not in _SORT_KEYS:
        violations.append(
            errors.FieldViolation("sort_by", f"cannot sort by '{sort_by}'; use one of {', '.join(_SORT_KEYS)}")
        )
    order = sort_order.lower() or "asc"
    if order not in SORT_ORDERS:
        violations.append(errors.FieldViolation("sort_order", f"'{sort_order}' is not an order; use asc or desc"))
    if violations:
        raise errors.InvalidArgument(violations)
    return field, order == "desc"
