"""A loopback server that answers geopy's Nominatim client like Nominatim's JSON /search does."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

Lookup = Callable[[str], tuple[float, float] | None]


class FakeNominatim:
    """`lookup(query)` decides what is found; `hits` lists the queries served (to prove caching)."""

    def __init__(self, lookup: Lookup) -> None:
        self.hits: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlparse(self.path)
                query = parse_qs(url.query).get("q", [""])[0]
                fake.hits.append(query)
                found = lookup(query)
                body = (
                    [{"lat": str(found[0]), "lon": str(found[1]), "display_name": query, "place_id": 1}]
                    if found
                    else []
                )
                data = json.dumps(body).encode()
                self.send_response(200 if url.path == "/search" else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def domain(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self._server.shutdown()
