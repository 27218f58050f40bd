"""Serves files under /data, and /health answers 200 unless /data/unhealthy exists."""

import http.server
import os

MESSAGE = "v1"


class Handler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory="/data", **kwargs)

    def do_GET(self):
        if self.path in ("/health", "/message"):
            healthy = not os.path.exists("/data/unhealthy") or self.path == "/message"
            body = (MESSAGE if self.path == "/message" else "ok").encode()
            self.send_response(200 if healthy else 503)
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()


# All interfaces of the container: the port is reached over Docker networks.
server = http.server.ThreadingHTTPServer(("0.0.0.0", 8000), Handler)  # noqa: S104
server.serve_forever()
