"""log_flood.py -- a flood of refused calls against fbpiped with Python
grpcio, a client that is not fbpipe's: every one is refused, and the test
script around it checks that the log stays small while the counters stay
exact.

usage: log_flood.py PORT SECRET_FILE N MAX_CALLS_PER_PEER

Phase 1, N calls over four connections (both workers get some), at most
IN_FLIGHT at once so that the per-peer limit never answers them: in turn
SendEvent without authorization (missing), ExchangeConfig with "Basic ..."
(not_bearer), Exchange with "Bearer garbage" (malformed), ExchangeConfig
with a token signed by another secret (bad_signature), and a method that
does not exist (UNIMPLEMENTED, not an authentication refusal).
Phase 2: one connection holds MAX_CALLS_PER_PEER health checks open that
never send their request (calls not authenticated count against their
address), then N/5 more calls on it are refused RESOURCE_EXHAUSTED by the
per-peer limit.

Prints what the client saw: "auth: kind=N ..." (what the master must
count), "unimplemented: N", "exhausted: N", "refused: N" (every refusal
the workers could log), "seconds: S"; exits 1 when a call got another
answer than its kind's.
"""
import collections
import os
import sys
import threading
import time

import grpc
import jwt

import pyproto  # tests/integration/pyproto.py, beside this script

port, secret_file, n, per_peer = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
pyproto.stubs("api.proto", "fbpipe.proto")
import api_pb2  # noqa: E402
import fbpipe_pb2  # noqa: E402

IN_FLIGHT = 16
UNAUTH = grpc.StatusCode.UNAUTHENTICATED
secret = open(secret_file, "rb").read().rstrip(b"\r\n")
now = int(time.time())
good = jwt.encode({"access_key": "acme", "iat": now, "exp": now + 600}, secret,
                  algorithm="HS256")
forged = jwt.encode({"access_key": "acme", "iat": now, "exp": now + 600}, os.urandom(48),
                    algorithm="HS256")


def channel():
    # a connection of its own (not shared through the global subchannel pool)
    return grpc.insecure_channel("127.0.0.1:" + port,
                                 options=[("grpc.use_local_subchannel_pool", 1)])


def methods(ch):
    return {
        "send_event": ch.stream_unary("/api.EventService/SendEvent",
                                      request_serializer=api_pb2.Event.SerializeToString,
                                      response_deserializer=api_pb2.EResponse.FromString),
        "exchange_config": ch.unary_unary("/api.EventService/ExchangeConfig",
                                          request_serializer=api_pb2.AccessKey.SerializeToString,
                                          response_deserializer=api_pb2.Config.FromString),
        "exchange": ch.unary_unary("/fbpipe.v1.Ingest/Exchange",
                                   request_serializer=fbpipe_pb2.ExchangeRequest.SerializeToString,
                                   response_deserializer=fbpipe_pb2.ExchangeResponse.FromString),
        "nope": ch.unary_unary("/fbpipe.v1.Nope/Flood"),
    }


# kind -> (start a call on m, the status it must get)
KINDS = [
    ("missing", lambda m: m["send_event"].future(iter(()), timeout=60), UNAUTH),
    ("not_bearer", lambda m: m["exchange_config"].future(
        api_pb2.AccessKey(AccessKey="acme"), timeout=60,
        metadata=[("authorization", "Basic Zm9vOmJhcg==")]), UNAUTH),
    ("malformed", lambda m: m["exchange"].future(
        fbpipe_pb2.ExchangeRequest(access_key="acme"), timeout=60,
        metadata=[("authorization", "Bearer garbage")]), UNAUTH),
    ("bad_signature", lambda m: m["exchange_config"].future(
        api_pb2.AccessKey(AccessKey="acme"), timeout=60,
        metadata=[("authorization", "Bearer " + forged)]), UNAUTH),
    ("unimplemented", lambda m: m["nope"].future(b"", timeout=60),
     grpc.StatusCode.UNIMPLEMENTED),
]

lock = threading.Lock()
slots = threading.Semaphore(IN_FLIGHT)
seen = collections.Counter()  # (kind, status name)
wrong = []


def done(kind, want):
    def cb(fut):
        code = fut.code()
        with lock:
            seen[(kind, code.name)] += 1
            if code != want and len(wrong) < 10:
                wrong.append("%s: %s %r" % (kind, code.name, fut.details()))
        slots.release()
    return cb


def call(kind, start, want, m):
    slots.acquire()
    start(m).add_done_callback(done(kind, want))


def drain():
    for _ in range(IN_FLIGHT):
        slots.acquire()
    for _ in range(IN_FLIGHT):
        slots.release()


t0 = time.monotonic()
chans = [channel() for _ in range(4)]
ms = [methods(c) for c in chans]
for i in range(n):
    kind, start, want = KINDS[i % len(KINDS)]
    call(kind, start, want, ms[i % len(ms)])
drain()

# phase 2: the per-peer limit, reached by calls that stay open before
# they authenticate (an authenticated call counts against its tenant)
hold_ch = channel()
hold_m = methods(hold_ch)
release = threading.Event()


def held_events():
    release.wait()
    return
    yield  # a generator that sends nothing until released


hold_health = hold_ch.stream_unary("/grpc.health.v1.Health/Check",
                                   request_serializer=lambda b: b,
                                   response_deserializer=lambda b: b)
holders = [hold_health.future(held_events(), timeout=120) for _ in range(per_peer)]
probe_exhausted = 0
deadline = time.monotonic() + 60
while True:  # until the server holds all of them: a further call is refused
    try:
        hold_m["exchange_config"](api_pb2.AccessKey(AccessKey="acme"), timeout=10,
                                  metadata=[("authorization", "Bearer " + good)])
    except grpc.RpcError as e:
        if e.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
            sys.exit("log_flood: FAIL: probe: %s %s" % (e.code(), e.details()))
        probe_exhausted += 1
        break
    if time.monotonic() > deadline:
        sys.exit("log_flood: FAIL: %d held calls never reached the per-peer limit" % per_peer)
    time.sleep(0.05)
for i in range(n // 5):
    call("per_peer", KINDS[0][1], grpc.StatusCode.RESOURCE_EXHAUSTED, hold_m)
drain()
for h in holders:
    h.cancel()
release.set()
seconds = time.monotonic() - t0

auth = {k: seen[(k, "UNAUTHENTICATED")] for k, _, w in KINDS if w == UNAUTH}
auth["missing"] += seen[("per_peer", "UNAUTHENTICATED")]  # none, unless admitted
unimplemented = seen[("unimplemented", "UNIMPLEMENTED")]
exhausted = probe_exhausted + sum(v for (k, c), v in seen.items() if c == "RESOURCE_EXHAUSTED")
print("auth: " + " ".join("%s=%d" % kv for kv in sorted(auth.items()) if kv[1]))
print("unimplemented: %d" % unimplemented)
print("exhausted: %d" % exhausted)
print("refused: %d" % (sum(auth.values()) + unimplemented + exhausted))
print("seconds: %.1f" % seconds)
print("answers: " + " ".join("%s/%s=%d" % (k, c, v) for (k, c), v in sorted(seen.items())))
if wrong:
    sys.exit("log_flood: FAIL: unexpected answers: " + "; ".join(wrong))
