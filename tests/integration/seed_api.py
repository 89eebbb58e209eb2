"""seed_api.py -- the original API (api.EventService) with Python grpcio and
PyJWT, as a client that is not fbpipe's: ExchangeConfig (its AccessToken the
bare token, whatever the case of "Bearer" and the spaces around it),
SendEvent of N events answered SUCCESS, and the refusals (no token, another
tenant's key, a malformed token). usage: seed_api.py PORT SECRET_FILE N|full-lane
"""
import sys
import time

import grpc
import jwt

import pyproto  # tests/integration/pyproto.py, beside this script

port, secret_file, n = sys.argv[1], sys.argv[2], sys.argv[3]
pyproto.stubs("api.proto")
import api_pb2  # noqa: E402

secret = open(secret_file, "rb").read().rstrip(b"\r\n")
now = int(time.time())
token = jwt.encode({"access_key": "acme", "exp": now + 600, "iat": now}, secret,
                   algorithm="HS256")
md = [("authorization", "Bearer " + token)]
ch = grpc.insecure_channel("127.0.0.1:" + port)
send = ch.stream_unary("/api.EventService/SendEvent",
                       request_serializer=api_pb2.Event.SerializeToString,
                       response_deserializer=api_pb2.EResponse.FromString)
xc = ch.unary_unary("/api.EventService/ExchangeConfig",
                    request_serializer=api_pb2.AccessKey.SerializeToString,
                    response_deserializer=api_pb2.Config.FromString)
fails = []


def expect(what, got, want):
    if got != want:
        fails.append("%s: got %r, want %r" % (what, got, want))


def full_lane():
    """N = full-lane: fbpiped with no broker and one worker with lanes of
    1 MB; three streams of 450 KB each: two fill the lane, the third waits
    for room longer than ingester.backpressure_timeout (1s here) and is
    refused whole with UNAVAILABLE, as a native batch would be answered
    RETRY; the others wait for Kafka until the client gives up."""
    import threading
    results = []

    def big(i):
        try:
            r = send((api_pb2.Event(agent_id="py", tag="t", message='"%s"' % ("x" * 90000))
                      for _ in range(5)), metadata=md, timeout=15)
            results.append(("answered", api_pb2.EventCode.Name(r.status), ""))
        except grpc.RpcError as e:
            results.append(("refused", e.code(), e.details() or ""))

    threads = [threading.Thread(target=big, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
        time.sleep(1)
    for t in threads:
        t.join()
    busy = [r for r in results if r[1] == grpc.StatusCode.UNAVAILABLE]
    if len(busy) != 1 or "the ingester is busy" not in busy[0][2]:
        fails.append("a stream waiting for room past backpressure_timeout: %r" % results)
    if [r for r in results if r[0] == "answered"]:
        fails.append("answered with no broker: %r" % results)


if n == "full-lane":
    full_lane()
    for f in fails:
        print("seed_api: FAIL:", f)
    print("seed_api: %d failures" % len(fails) if fails else "seed_api: OK (full lane)")
    sys.exit(1 if fails else 0)
n = int(n)


def events(count, key=""):
    for i in range(count):
        yield api_pb2.Event(agent_id="py", tag="t", message='{"i":%d}' % i,
                            UserID="forged", AccessKey=key)


cfg = xc(api_pb2.AccessKey(AccessKey="acme"), metadata=md, timeout=10)
expect("Config.AccessKey", cfg.AccessKey, "acme")
expect("Config.UserID", cfg.UserID, "u-acme")
expect("Config.AccessToken echoes the token", cfg.AccessToken, token)
# the scheme in any case and extra spaces are accepted: the echo is the bare
# token, never the scheme or the spaces around it
for value in ["bearer " + token, "BEARER " + token, "Bearer   " + token, "bEaReR  " + token + "  "]:
    try:
        cfg = xc(api_pb2.AccessKey(AccessKey="acme"), metadata=[("authorization", value)],
                 timeout=10)
        expect("Config.AccessToken for %r" % (value[:10] + "..."), cfg.AccessToken, token)
    except grpc.RpcError as e:
        fails.append("ExchangeConfig with %r: %s %s" % (value[:10] + "...", e.code(), e.details()))
r = send(events(n), metadata=md, timeout=120)
expect("SendEvent", api_pb2.EventCode.Name(r.status), "SUCCESS")
for name, meta, gen, code in [
        ("no token", [], events(1), grpc.StatusCode.UNAUTHENTICATED),
        ("malformed token", [("authorization", "Bearer x.y.z")], events(1),
         grpc.StatusCode.UNAUTHENTICATED),
        ("another tenant's key", md, events(1, "zeta"), grpc.StatusCode.PERMISSION_DENIED)]:
    try:
        send(gen, metadata=meta, timeout=10)
        fails.append(name + ": accepted")
    except grpc.RpcError as e:
        expect(name, e.code(), code)
# what is acknowledged is exactly what is written (#8): an event that
# cannot be stored unchanged is refused
bad_events = [
    ("a NUL byte in the message", [api_pb2.Event(agent_id="py", tag="t",
                                                 message="before\0after")],
     "message: contains a NUL byte"),
    ("a NUL byte in the tag", [api_pb2.Event(agent_id="py", tag="t\0u", message="{}")],
     "tag: contains a NUL byte"),
    ("a time before year 1", [api_pb2.Event(agent_id="py", tag="t", message="{}",
                                            timestamp={"seconds": -62135596801})],
     "timestamp: -62135596801 s is out of range"),
]
for name, evs, detail in bad_events:
    try:
        r = send(iter(evs), metadata=md, timeout=10)
        fails.append("%s: answered %s" % (name, api_pb2.EventCode.Name(r.status)))
    except grpc.RpcError as e:
        expect(name, e.code(), grpc.StatusCode.INVALID_ARGUMENT)
        if detail not in (e.details() or ""):
            fails.append("%s: detail %r, want %r" % (name, e.details(), detail))
# a stream is stored whole or not at all: 5,000 good events then a bad
# one, on a token for zeta, leave nothing in Kafka (test-seed-api counts
# zeta's records)
zeta_token = jwt.encode({"access_key": "zeta", "exp": now + 600, "iat": now}, secret,
                        algorithm="HS256")


def good_then_bad():
    yield from events(5000)
    yield api_pb2.Event(agent_id="py", tag="t" * 1025, message="{}")


try:
    r = send(good_then_bad(), metadata=[("authorization", "Bearer " + zeta_token)],
             timeout=60)
    fails.append("a stream with a bad last event: answered %s" % api_pb2.EventCode.Name(r.status))
except grpc.RpcError as e:
    expect("a stream with a bad last event", e.code(), grpc.StatusCode.INVALID_ARGUMENT)
# ... and one larger than half a lane (1 MB lanes here) cannot be written
# as one chunk: refused, also with nothing of it written (zeta again)


def too_big():
    for i in range(6):
        yield api_pb2.Event(agent_id="py", tag="t", message='"%s"' % ("x" * 90000))


try:
    r = send(too_big(), metadata=[("authorization", "Bearer " + zeta_token)], timeout=60)
    fails.append("a stream larger than half a lane: answered %s"
                 % api_pb2.EventCode.Name(r.status))
except grpc.RpcError as e:
    expect("a stream larger than half a lane", e.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
    if "send fewer events per stream" not in (e.details() or ""):
        fails.append("stream size detail: %r" % e.details())
try:
    xc(api_pb2.AccessKey(AccessKey="zeta"), metadata=md, timeout=10)
    fails.append("ExchangeConfig for another key: accepted")
except grpc.RpcError as e:
    expect("ExchangeConfig for another key", e.code(), grpc.StatusCode.PERMISSION_DENIED)
# 8 streams at once on a small ring (1 MB lanes here): calls wait for room
# in the lane while their earlier chunks are acknowledged; all SUCCESS
import threading  # noqa: E402
results = []


def one_stream(i):
    try:
        r = send(events(4000), metadata=md, timeout=120)
        results.append(api_pb2.EventCode.Name(r.status))
    except grpc.RpcError as e:
        results.append(str(e.code()))


threads = [threading.Thread(target=one_stream, args=(i,)) for i in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
expect("8 concurrent streams on full lanes", results, ["SUCCESS"] * 8)

# a stream whose token expires (auth.clock_skew = 0s here) is closed
short = jwt.encode({"access_key": "acme", "exp": int(time.time()) + 2, "iat": int(time.time())},
                   secret, algorithm="HS256")


def slow_events():
    yield api_pb2.Event(agent_id="py", tag="t", message='{"before":"expiry"}')
    time.sleep(8)  # the server closes the stream meanwhile


try:
    send(slow_events(), metadata=[("authorization", "Bearer " + short)], timeout=30)
    fails.append("a stream past its token's expiry: answered")
except grpc.RpcError as e:
    expect("a stream past its token's expiry", e.code(), grpc.StatusCode.UNAUTHENTICATED)
    if "expired" not in (e.details() or ""):
        fails.append("expiry detail: %r" % e.details())
for f in fails:
    print("seed_api: FAIL:", f)
print("seed_api: %d failures" % len(fails) if fails else "seed_api: OK")
sys.exit(1 if fails else 0)
