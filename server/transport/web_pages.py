"""The web console's built files (web/dist), served on the console listener: Envoy routes a browser's GETs outside
the REST API there, so the page, its gRPC-Web calls and its console WebSockets share one origin.

`index.html` is never cached and carries a fresh Content-Security-Policy nonce on every response: no inline script
anywhere, and the only inline styles allowed are the `<style>` elements Ant Design injects with that nonce. Assets
have content-hashed names, so they are cached for a year. Any other path is a deep link into the app: index.html.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from aiohttp import web

NONCE_PLACEHOLDER = "__CSP_NONCE__"
"""What web/index.html holds where each response's nonce goes (a `<meta name="csp-nonce">` the app reads)."""
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'nonce-{nonce}'; img-src 'self' data:; "
    "font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}
ASSETS = "assets"
ASSET_CACHE = "public, max-age=31536000, immutable"
FILE_CACHE = "public, max-age=300"
"""Unhashed files beside index.html (icons): short, they may change with a release."""


def routes(root: Path) -> list[web.RouteDef]:
    """GET (and HEAD) routes for the bundle in `root`, which must hold index.html."""
    root = root.resolve()
    index = (root / "index.html").read_text(encoding="utf-8")
    if NONCE_PLACEHOLDER not in index:
        raise ValueError(f"{root / 'index.html'} has no {NONCE_PLACEHOLDER}: not a web console build")

    async def page(request: web.Request) -> web.StreamResponse:
        tail = request.match_info["tail"]
        if tail.startswith(f"{ASSETS}/"):
            return serve_file(root, tail, ASSET_CACHE)
        if tail and "/" not in tail and (root / tail).is_file() and tail != "index.html":
            return serve_file(root, tail, FILE_CACHE)
        nonce = secrets.token_urlsafe(18)
        return web.Response(
            text=index.replace(NONCE_PLACEHOLDER, nonce),
            content_type="text/html",
            headers={
                "Cache-Control": "no-cache",
                "Content-Security-Policy": CONTENT_SECURITY_POLICY.format(nonce=nonce),
                **SECURITY_HEADERS,
            },
        )

    return [web.get("/{tail:.*}", page)]


def serve_file(root: Path, relative: str, cache: str) -> web.StreamResponse:
    path = (root / relative).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise web.HTTPNotFound(text="no such file\n")
    return web.FileResponse(path, headers={"Cache-Control": cache, **SECURITY_HEADERS})
