"""The REST API's OpenAPI 3 document (gen/openapi/, written by `make gen` from proto/) at /api/v1/openapi.json and
/api/v1/openapi.yaml, and its reference page (Swagger UI, built into web/dist/api-docs/) at /api/docs: served on the
console listener beside the web console, where Envoy routes exactly these GETs.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from server.transport import web_pages

DOCUMENT_DIR = Path(__file__).resolve().parents[2] / "gen" / "openapi"
DOCUMENTS = {
    "/api/v1/openapi.json": ("novasphere.openapi.json", "application/json"),
    "/api/v1/openapi.yaml": ("novasphere.openapi.yaml", "application/yaml"),
}
DOCS_PATH = "/api/docs"
DOCS_FOLDER = "api-docs"
"""The page's files in the web bundle (web/vite.config.ts puts them there)."""
# Swagger UI needs no inline script or style element (React sets its inline styles through the DOM, which CSP allows);
# it fetches the document and sends "Try it out" requests to this origin only.
DOCS_CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def routes(web_root: Path | None) -> list[web.RouteDef]:
    """The documents always; the page when there is a web bundle (`web_root`) to serve it from."""
    documents = {path: ((DOCUMENT_DIR / name).read_bytes(), kind) for path, (name, kind) in DOCUMENTS.items()}

    async def document(request: web.Request) -> web.StreamResponse:
        body, kind = documents[request.path]
        return web.Response(
            body=body,
            content_type=kind,
            charset="utf-8",
            headers={"Cache-Control": "no-cache", **web_pages.SECURITY_HEADERS},
        )

    found = [web.get(path, document) for path in documents]
    if web_root is None:
        return found
    folder = (web_root / DOCS_FOLDER).resolve()
    page = (folder / "index.html").read_bytes()

    async def index(_: web.Request) -> web.StreamResponse:
        return web.Response(
            body=page,
            content_type="text/html",
            charset="utf-8",
            headers={
                "Cache-Control": "no-cache",
                "Content-Security-Policy": DOCS_CONTENT_SECURITY_POLICY,
                **web_pages.SECURITY_HEADERS,
            },
        )

    async def asset(request: web.Request) -> web.StreamResponse:
        return web_pages.serve_file(folder, request.match_info["file"], "no-cache")

    return [*found, web.get(DOCS_PATH, index), web.get(f"{DOCS_PATH}/", index), web.get(DOCS_PATH + "/{file}", asset)]
