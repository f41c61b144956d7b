"""Shared helpers: the live gateway's address and key from the environment, and small local servers."""
import http.server
import os
import sys
import threading
import unittest
from typing import Callable, List, Tuple

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import switchboard  # noqa: E402

URL = os.environ.get("SWITCHBOARD_URL")
API_KEY = os.environ.get("SWITCHBOARD_API_KEY")


def live_client(**kwargs) -> switchboard.Client:
    if not URL or not API_KEY:
        raise unittest.SkipTest("SWITCHBOARD_URL and SWITCHBOARD_API_KEY are not set")
    return switchboard.Client(URL, API_KEY, timeout=10, **kwargs)


class Recorded:
    """One request a local server received."""

    def __init__(self, method: str, path: str, headers, body: bytes) -> None:
        self.method = method
        self.path = path
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.body = body


class LocalServer:
    """A loopback HTTP server on a free port whose answers come from ``respond(recorded, index)``
    → ``(status, headers, body)``; every request is recorded."""

    def __init__(self, respond: Callable[[Recorded, int], Tuple[int, dict, bytes]]) -> None:
        self.requests: List[Recorded] = []
        self.arrived = threading.Condition()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                rec = Recorded(self.command, self.path, self.headers, body)
                with outer.arrived:
                    index = len(outer.requests)
                    outer.requests.append(rec)
                    outer.arrived.notify_all()
                status, headers, payload = respond(rec, index)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = do_DELETE = _handle

            def log_message(self, *args) -> None:  # quiet
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def wait_for(self, predicate: Callable[[Recorded], bool], timeout: float = 10.0) -> Recorded:
        with self.arrived:
            found = None

            def check() -> bool:
                nonlocal found
                found = next((r for r in self.requests if predicate(r)), None)
                return found is not None

            if not self.arrived.wait_for(check, timeout=timeout):
                raise AssertionError("no matching request arrived in time")
            return found

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
