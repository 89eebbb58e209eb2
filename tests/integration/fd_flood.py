"""fd_flood.py -- a client without a token floods one fbpiped worker with
idle TCP connections (no TLS, no HTTP/2 preface), for test-fd-flood.

usage: fd_flood.py PORT HELD OVER HANDSHAKE_S
  1. HELD idle connections are opened and held: a health check (Python
     grpcio) must still be answered SERVING while they are open;
  2. the worker must close them once its handshake timeout (HANDSHAKE_S)
     is over;
  3. OVER idle connections, more than the worker has descriptors for,
     are opened and closed again: the service must answer SERVING again
     afterwards, without a reload.
Prints one line of figures; exit 0 when every outcome holds.
"""
import resource
import selectors
import socket
import sys
import time

import grpc

import pyproto  # tests/integration/pyproto.py, beside this script

port, held, over, handshake_s = (int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]),
                                 float(sys.argv[4]))
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if hard != resource.RLIM_INFINITY and hard < over + 256:
    print("fd_flood: SKIP: this process may open %d descriptors, %d needed" % (hard, over + 256))
    sys.exit(77)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

pyproto.stubs("health.proto")
import health_pb2  # noqa: E402


def serving(timeout):
    """A health check on a new channel: True when answered SERVING."""
    channel = grpc.insecure_channel("127.0.0.1:%d" % port)
    try:
        check = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString)
        r = check(health_pb2.HealthCheckRequest(service=""), timeout=timeout)
        return r.status == health_pb2.HealthCheckResponse.SERVING
    except grpc.RpcError:
        return False
    finally:
        channel.close()


def flood(n):
    """n connections, opened without waiting for each (a full accept queue
    drops SYNs); those not connected within 10 s are given up."""
    sel = selectors.DefaultSelector()
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        sel.register(s, selectors.EVENT_WRITE)
    deadline = time.monotonic() + 10
    while sel.get_map() and time.monotonic() < deadline:
        for key, _ in sel.select(0.5):
            s = key.fileobj
            sel.unregister(s)
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                socks.append(s)
            else:
                s.close()
    for key in list(sel.get_map().values()):
        key.fileobj.close()
    sel.close()
    return socks


def closed_by_server(socks, seconds):
    """How many of socks the server closed (EOF or reset) within seconds."""
    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    closed = 0
    deadline = time.monotonic() + seconds
    while sel.get_map() and time.monotonic() < deadline:
        for key, _ in sel.select(0.5):
            s = key.fileobj
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            if not data:
                sel.unregister(s)
                closed += 1
    sel.close()
    return closed


if not serving(10):
    sys.exit("fd_flood: FAIL: not serving before the flood")
# 1. a flood the worker has descriptors for: still served
socks = flood(held)
if len(socks) < held * 0.9:
    sys.exit("fd_flood: FAIL: only %d of %d connections opened" % (len(socks), held))
t0 = time.monotonic()
ok = serving(20)
during = time.monotonic() - t0
if not ok:
    sys.exit("fd_flood: FAIL: not served while %d idle connections were open" % len(socks))
# 2. connections without a handshake are closed by the server
closed = closed_by_server(socks, handshake_s + 30)
for s in socks:
    s.close()
if closed < len(socks) * 0.99:
    sys.exit("fd_flood: FAIL: %d of %d idle connections closed within %.0f s of a %.0f s "
             "handshake timeout" % (closed, len(socks), handshake_s + 30, handshake_s))
# 3. more than its descriptors: the worker stops accepting; once the
#    flood is gone, the service accepts again without a reload
socks = flood(over)
time.sleep(2)
for s in socks:
    s.close()
t0 = time.monotonic()
while not serving(5):
    if time.monotonic() - t0 > 60:
        sys.exit("fd_flood: FAIL: not serving 60 s after a flood of %d connections ended"
                 % len(socks))
back = time.monotonic() - t0
print("fd_flood: %d idle connections held, health answered in %.1f s; %d closed by the "
      "handshake timeout; after %d connections, serving again %.1f s after the flood ended"
      % (held, during, closed, len(socks), back))
