#!/usr/bin/env python3
"""http_receiver.py -- a small HTTP receiver for tests/integration/test-http-client.

    http_receiver.py DIR

Listens on a free port of 127.0.0.1 and writes it to DIR/port (whole, by
rename). Every request is stored before it is answered, numbered from 1:
DIR/req/N.headers (the method and path, the peer's port, then each header
line as received) and DIR/req/N.body (the body's bytes as received, not
decoded); DIR/req/N.status holds the status it is answered with, written
just before the answer. The answer depends on the mode, read from DIR/mode at each
request (missing: ok):

    ok          200
    fail        503, with a body holding a control byte
    refuse      400
    too_large   413 when the body has more bytes than DIR/limit says, else 200
    hang        no answer for DIR/hang seconds (default 10), then 200

Only the standard library; it ends on SIGTERM or SIGINT.
"""
import http.server
import os
import signal
import sys
import threading
import time

state = sys.argv[1]
reqdir = os.path.join(state, "req")
os.makedirs(reqdir, exist_ok=True)
lock = threading.Lock()
count = [0]


def setting(name, default):
    try:
        with open(os.path.join(state, name)) as f:
            return f.read().strip() or default
    except FileNotFoundError:
        return default


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the client reuses its connection

    def log_message(self, fmt, *args):
        pass

    def answer(self, status, body=b""):
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length) if length > 0 else b""
        with lock:
            count[0] += 1
            n = count[0]
        head = "%s %s\npeer-port: %d\n%s" % (
            self.command, self.path, self.client_address[1], "".join(
                "%s: %s\n" % (k, v) for k, v in self.headers.items()))
        with open(os.path.join(reqdir, "%d.body" % n), "wb") as f:
            f.write(body)
        with open(os.path.join(reqdir, "%d.headers.tmp" % n), "w") as f:
            f.write(head)
        os.rename(os.path.join(reqdir, "%d.headers.tmp" % n),
                  os.path.join(reqdir, "%d.headers" % n))
        mode = setting("mode", "ok")
        if mode == "fail":
            status, text = 503, b"busy\x01 try later\n"
        elif mode == "refuse":
            status, text = 400, b'{"error":"line 1: not JSON"}\n'
        elif mode == "too_large" and len(body) > int(setting("limit", "0")):
            status, text = 413, b"too large\n"
        elif mode == "hang":
            time.sleep(float(setting("hang", "10")))
            status, text = 200, b"late\n"
        else:
            status, text = 200, b"ok\n"
        with open(os.path.join(reqdir, "%d.status" % n), "w") as f:
            f.write("%d\n" % status)
        try:
            self.answer(status, text)
        except OSError:
            pass  # the client gave up (hang)


def stop(signum, frame):
    raise SystemExit(0)


signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
with open(os.path.join(state, "port.tmp"), "w") as f:
    f.write(str(server.server_address[1]))
os.rename(os.path.join(state, "port.tmp"), os.path.join(state, "port"))
try:
    server.serve_forever()
finally:
    server.server_close()
