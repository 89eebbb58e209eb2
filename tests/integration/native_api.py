"""native_api.py -- fbpipe.v1.Ingest (Exchange, Stream) driven by Python
grpcio with stubs generated from proto/, a client that is not fbpipe's.

usage: native_api.py PORT SECRET_FILE BROKERS TOPIC N

Checks: Exchange for a plaintext and an encrypting tenant; N records in
batches with several in flight, every batch acknowledged OK, then read back
from Kafka (key, AccessKey/UserID from the key database, per-key order,
XChaCha20-Poly1305 ciphertexts that decrypt with access key || key id as
associated data); and the hostile inputs: malformed protobuf, invalid
UTF-8, empty batch, too many records, a duplicate seq in flight, a plaintext
record for an encrypting tenant, an unbound token, calls over
max_calls_per_tenant (another tenant behind the same address served),
max_calls_per_peer for calls not yet authenticated (held health checks), a
health request that would
unpack into far more than it weighs, a client that never reads its
acks, a client that disconnects mid-batch, an expiring token.
The server runs with kafka.linger = 1s, so a batch stays in flight long
enough for the duplicate to meet it.
"""
import json
import os
import queue
import struct
import subprocess
import sys
import threading
import time

import grpc
import jwt
import nacl.bindings as sodium

import pyproto  # tests/integration/pyproto.py, beside this script

port, secret_file, brokers, topic, n = sys.argv[1:6]
n = int(n)
pyproto.stubs("fbpipe.proto", "health.proto")
import fbpipe_pb2 as pb  # noqa: E402
import health_pb2  # noqa: E402

secret = open(secret_file, "rb").read().rstrip(b"\r\n")
SEC_KEY = bytes(range(32))  # keys.json gives "sec" this key as 64 hex digits


def token(claims_extra=None, key="acme", life=600):
    now = int(time.time())
    claims = {"exp": now + life, "iat": now}
    if key is not None:
        claims["access_key"] = key
    claims.update(claims_extra or {})
    return jwt.encode(claims, secret, algorithm="HS256")


def md(tok):
    return [("authorization", "Bearer " + tok)]


ch = grpc.insecure_channel("127.0.0.1:" + port)
exchange = ch.unary_unary("/fbpipe.v1.Ingest/Exchange",
                          request_serializer=pb.ExchangeRequest.SerializeToString,
                          response_deserializer=pb.ExchangeResponse.FromString)
stream = ch.stream_stream("/fbpipe.v1.Ingest/Stream",
                          request_serializer=pb.Batch.SerializeToString,
                          response_deserializer=pb.Ack.FromString)
raw_stream = ch.stream_stream("/fbpipe.v1.Ingest/Stream",
                              request_serializer=lambda b: b,
                              response_deserializer=pb.Ack.FromString)
health = ch.unary_unary("/grpc.health.v1.Health/Check",
                        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
                        response_deserializer=health_pb2.HealthCheckResponse.FromString)
fails = []


def expect(what, got, want):
    if got != want:
        fails.append("%s: got %r, want %r" % (what, got, want))


def expect_in(what, needle, hay):
    if needle not in hay:
        fails.append("%s: %r not in %r" % (what, needle, hay))


class Sender:
    """Batches into a stream, at most `window` unacknowledged."""

    def __init__(self, tok, window=8, call=None):
        self.q = queue.Queue()
        self.window = threading.Semaphore(window)
        self.acks = {}
        self.call = (call or stream)(iter(self.q.get, None), metadata=md(tok), timeout=120)
        self.error = None
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        try:
            for ack in self.call:
                self.acks[ack.seq] = ack
                self.window.release()
        except grpc.RpcError as e:
            self.error = e

    def send(self, batch):
        self.window.acquire()
        self.q.put(batch)

    def close(self):
        self.q.put(None)
        self.reader.join(130)
        return self.error


def batch(seq, recs, tag="t", agent="py"):
    return pb.Batch(seq=seq, tag=tag, agent_id=agent, records=recs)


def rec(payload, enc=pb.CIPHER_NONE, key_id=""):
    return pb.BatchRecord(payload=payload, enc=enc, key_id=key_id)


# ---- Exchange
x = exchange(pb.ExchangeRequest(access_key="acme", agent_id="py"), metadata=md(token()),
             timeout=10)
expect("Exchange(acme).user_id", x.user_id, "u-acme")
expect("Exchange(acme).cipher", x.cipher, pb.CIPHER_NONE)
expect("Exchange(acme).max_batch_records", x.max_batch_records, 1000)
if not (x.max_batch_bytes > 0 and x.max_record_bytes > 0 and x.refresh_interval_s > 0):
    fails.append("Exchange(acme): limits missing: %r" % x)
# an agent that lists no cipher (every agent before the second version)
# gets the first version of XChaCha20-Poly1305; one that lists the second, it
xs = exchange(pb.ExchangeRequest(access_key="sec"), metadata=md(token(key="sec")), timeout=10)
expect("Exchange(sec).cipher", xs.cipher, pb.CIPHER_XCHACHA20POLY1305)
for listed, want in [([pb.CIPHER_XCHACHA20POLY1305_V2, pb.CIPHER_XCHACHA20POLY1305],
                      pb.CIPHER_XCHACHA20POLY1305_V2),
                     ([pb.CIPHER_XCHACHA20POLY1305], pb.CIPHER_XCHACHA20POLY1305),
                     ([pb.CIPHER_XCHACHA20POLY1305, pb.CIPHER_XCHACHA20POLY1305_V2],
                      pb.CIPHER_XCHACHA20POLY1305_V2),
                     ([7, 9], pb.CIPHER_XCHACHA20POLY1305)]:
    xv = exchange(pb.ExchangeRequest(access_key="sec", ciphers=listed),
                  metadata=md(token(key="sec")), timeout=10)
    expect("Exchange(sec, ciphers=%r).cipher" % listed, xv.cipher, want)
    expect("Exchange(sec, ciphers=%r).key_id" % listed, xv.key_id, "k2")
xa = exchange(pb.ExchangeRequest(access_key="acme", ciphers=[pb.CIPHER_XCHACHA20POLY1305_V2]),
              metadata=md(token()), timeout=10)
expect("Exchange(acme, ciphers=[V2]).cipher", xa.cipher, pb.CIPHER_NONE)
expect("Exchange(sec).key_id", xs.key_id, "k2")
expect("Exchange(sec).encryption_key", xs.encryption_key, SEC_KEY)
try:
    exchange(pb.ExchangeRequest(access_key="zeta"), metadata=md(token()), timeout=10)
    fails.append("Exchange for another key: accepted")
except grpc.RpcError as e:
    expect("Exchange for another key", e.code(), grpc.StatusCode.PERMISSION_DENIED)

# ---- N plaintext records for acme, 100 per batch, 8 in flight
per = 100
s = Sender(token())
seqs = []
for b in range(0, n, per):
    seq = 1000 + b // per
    seqs.append(seq)
    s.send(batch(seq, [rec(json.dumps({"i": i}).encode()) for i in range(b, min(n, b + per))]))
err = s.close()
expect("stream status", err, None)
expect("acks received", sorted(s.acks), seqs)
expect("acks OK", [a.code for a in s.acks.values() if a.code != pb.OK], [])

# ---- encrypted records for sec: the first version (as agents before the
# second send them), then the second, with associated data built here


def ad(version, access_key, key_id):
    if version == pb.CIPHER_XCHACHA20POLY1305:
        return access_key + key_id
    return (struct.pack(">H", len(access_key)) + access_key +
            struct.pack(">H", len(key_id)) + key_id)


s = Sender(token(key="sec"))
for i in range(20):
    version = pb.CIPHER_XCHACHA20POLY1305 if i < 10 else pb.CIPHER_XCHACHA20POLY1305_V2
    nonce = os.urandom(24)
    ct = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
        json.dumps({"secret": i}).encode(), ad(version, b"sec", b"k2"), nonce, SEC_KEY)
    s.send(batch(i + 1, [rec(nonce + ct, version, "k2")]))
expect("encrypted stream status", s.close(), None)
expect("encrypted acks", sorted(a.seq for a in s.acks.values() if a.code == pb.OK),
       list(range(1, 21)))

# ---- hostile inputs, each on its own stream
s = Sender(token())
s.send(batch(1, [rec(b"\xff\xfe not utf-8")]))
s.send(batch(3, []))
s.send(batch(4, [rec(b"x")] * 1001))
s.send(batch(5, [rec(b"{}", pb.CIPHER_XCHACHA20POLY1305, "k2")]))
s.send(batch(6, [rec(b"{}", 7)]))
expect("hostile stream status", s.close(), None)
a = s.acks
expect("invalid UTF-8 payload", a.get(1) and a[1].code, pb.REJECTED)
expect_in("invalid UTF-8 payload detail", "UTF-8", a.get(1) and a[1].detail or "")
expect("empty batch", a.get(3) and a[3].code, pb.OK)
expect("1001 records", a.get(4) and a[4].code, pb.REJECTED)
expect_in("1001 records detail", "at most 1000", a.get(4) and a[4].detail or "")
expect("encrypted record for a plaintext tenant", a.get(5) and a[5].code, pb.REJECTED)
expect("unknown cipher", a.get(6) and a[6].code, pb.REJECTED)

# invalid UTF-8 in a string field: built by hand (Python refuses to encode it)
good = batch(7, [rec(b"{}")], tag="T").SerializeToString()
bad = good.replace(b"\x12\x01T", b"\x12\x01\xff")
s = Sender(token(), call=raw_stream)
s.send(bad)
expect("invalid UTF-8 tag: status", s.close(), None)
expect("invalid UTF-8 tag", s.acks.get(7) and s.acks[7].code, pb.REJECTED)
expect_in("invalid UTF-8 tag detail", "tag", s.acks.get(7) and s.acks[7].detail or "")

# plaintext for an encrypting tenant
s = Sender(token(key="sec"))
s.send(batch(1, [rec(b"{}")]))
s.close()
expect("plaintext for sec", s.acks.get(1) and s.acks[1].code, pb.REJECTED)

# malformed protobuf ends the stream with INVALID_ARGUMENT
s = Sender(token(), call=raw_stream)
s.send(b"\x0a\xff\xff\xff")
e = s.close()
expect("malformed protobuf", e and e.code(), grpc.StatusCode.INVALID_ARGUMENT)

# a duplicate seq while the first is in flight (linger 1s holds it)
s = Sender(token())
s.send(batch(9, [rec(b'{"dup":1}')]))
s.send(batch(9, [rec(b'{"dup":2}')]))
e = s.close()
expect("duplicate seq", e and e.code(), grpc.StatusCode.INVALID_ARGUMENT)
expect_in("duplicate seq detail", "already in flight", e and e.details() or "")
expect("duplicate seq: the first still acknowledged", s.acks.get(9) and s.acks[9].code, pb.OK)

# a message over ingester.max_message_size (256K here): RESOURCE_EXHAUSTED
s = Sender(token())
s.send(batch(11, [rec(b"y" * 300000)]))
e = s.close()
expect("message over max_message_size", e and e.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)

def acked(sender, seq):
    """Wait (30 s at most) for the ack of seq: the call is open on the server."""
    for _ in range(300):
        if seq in sender.acks or sender.error is not None:
            return
        time.sleep(0.1)


# calls per tenant (ingester.max_calls_per_tenant = 12 here): the 13th open
# call of one access key is refused at once, its others are served, and
# another tenant behind the same address is served all the same (an
# authenticated call no longer counts against its address)
open_calls = [Sender(token()) for _ in range(12)]
for i, o in enumerate(open_calls):
    o.send(batch(900 + i, [rec(b'{"tenant":1}')]))
for i, o in enumerate(open_calls):
    acked(o, 900 + i)
extra = Sender(token())
e = extra.close()
expect("call over max_calls_per_tenant", e and e.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
expect_in("call over max_calls_per_tenant detail", "too many calls for access key acme",
          e and e.details() or "")
other = Sender(token(key="zeta"))
other.send(batch(950, [rec(b'{"tenant":2}')]))
acked(other, 950)
expect("another tenant behind the same address: acked", other.acks.get(950) and
       other.acks[950].code, pb.OK)
expect("another tenant behind the same address", other.close(), None)
# calls that have not authenticated count against the address
# (ingester.max_calls_per_peer = 12 here): health checks held open waiting
# for their request; the 13th check is refused
hold = ch.stream_stream("/grpc.health.v1.Health/Check", request_serializer=lambda b: b,
                        response_deserializer=lambda b: b)
held = [hold(iter(queue.Queue().get, None), timeout=120) for _ in range(12)]
time.sleep(1)
try:
    health(health_pb2.HealthCheckRequest(service=""), timeout=10)
    fails.append("health check over max_calls_per_peer: answered")
except grpc.RpcError as he:
    expect("health check over max_calls_per_peer", he.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
    expect_in("health check over max_calls_per_peer detail", "too many calls from",
              he.details() or "")
for h in held:
    h.cancel()
for o in open_calls:
    expect("calls within max_calls_per_tenant", o.close(), None)
# and is served again once the server has let the held checks go
for _ in range(100):
    try:
        hr = health(health_pb2.HealthCheckRequest(service=""), timeout=10)
        expect("health check under max_calls_per_peer", hr.status,
               health_pb2.HealthCheckResponse.SERVING)
        break
    except grpc.RpcError as he:
        if he.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
            fails.append("health check under max_calls_per_peer: %s" % he.code())
            break
        time.sleep(0.1)
else:
    fails.append("health check: still RESOURCE_EXHAUSTED after the calls closed")
# a HealthCheckRequest of 100,000 unknown fields (200 KB) would unpack into
# megabytes of structures: refused by the capped allocator
raw_health = ch.unary_unary("/grpc.health.v1.Health/Check", request_serializer=lambda b: b,
                            response_deserializer=health_pb2.HealthCheckResponse.FromString)
try:
    raw_health(b"\x10\x00" * 100000, timeout=10)
    fails.append("health check of 100,000 unknown fields: answered")
except grpc.RpcError as he:
    expect("health check of 100,000 unknown fields", he.code(), grpc.StatusCode.INVALID_ARGUMENT)

# an unbound token cannot open a stream
s = Sender(token(key=None))
e = s.close()
expect("unbound token", e and e.code(), grpc.StatusCode.PERMISSION_DENIED)

# a client that never reads its acks: once its acks fill HTTP/2's window
# the server stops reading it (at most max_inflight_batches held), so the
# client's sends stall far below what it offers; others are served meanwhile
HOG = 20000
hog_sent = [0]


def hog_batches():
    b = batch(0, [rec(b"x")] * 1001)  # each answered REJECTED, a long detail
    for i in range(HOG):
        b.seq = 50000 + i
        hog_sent[0] += 1
        yield b


# its own connection, with a receive window that does not grow (no BDP probe)
hog_ch = grpc.insecure_channel("127.0.0.1:" + port, options=[("grpc.http2.bdp_probe", 0)])
hog = hog_ch.stream_stream("/fbpipe.v1.Ingest/Stream",
                           request_serializer=pb.Batch.SerializeToString,
                           response_deserializer=pb.Ack.FromString)(
    hog_batches(), metadata=md(token()), timeout=120)
last = -1
for _ in range(60):  # until the sends stall
    time.sleep(0.5)
    if hog_sent[0] == last:
        break
    last = hog_sent[0]
if hog_sent[0] >= HOG:
    fails.append("a client that does not read its acks was read to the end (%d batches)" % HOG)
s = Sender(token())
s.send(batch(77, [rec(b'{"beside":"hog"}')]))
expect("stream beside a client that does not read", s.close(), None)
expect("its ack", s.acks.get(77) and s.acks[77].code, pb.OK)
hog.cancel()

# a client that disconnects mid-batch
q2 = queue.Queue()
gone = stream(iter(q2.get, None), metadata=md(token()), timeout=60)
for i in range(20):
    q2.put(batch(600 + i, [rec(b'{"gone":1}')] * 50))
time.sleep(0.2)
gone.cancel()

# an expiring token closes the stream with UNAUTHENTICATED
s = Sender(token(life=2))
s.send(batch(1, [rec(b'{"before":"expiry"}')]))
t0 = time.time()
while time.time() - t0 < 15 and s.reader.is_alive():
    time.sleep(0.2)
e = s.error
expect("expired token", e and e.code(), grpc.StatusCode.UNAUTHENTICATED)
expect_in("expired token detail", "expired", e and e.details() or "")
expect("before expiry: acknowledged", s.acks.get(1) and s.acks[1].code, pb.OK)
s.q.put(None)

# ---- read the topic back
raw = subprocess.run(["kcat", "-b", brokers, "-C", "-t", topic, "-e", "-q", "-f", "%k\t%R%s"],
                     stdout=subprocess.PIPE, check=True, timeout=120).stdout
got, off = [], 0
while off < len(raw):
    tab = raw.index(b"\t", off)  # access keys hold no tab
    key = raw[off:tab]
    off = tab + 1
    (vl,) = struct.unpack(">i", raw[off:off + 4])
    got.append((key.decode(), pb.Record.FromString(raw[off + 4:off + 4 + vl])))
    off += 4 + vl
acme = [json.loads(r.message)["i"] for k, r in got if k == "acme" and '"i"' in r.message]
expect("acme records in Kafka (count of distinct)", len(set(acme)), n)
first = {}
for pos, i in enumerate(acme):
    first.setdefault(i, pos)
if sorted(first, key=first.get) != sorted(first):
    fails.append("acme records out of order in Kafka")
for k, r in got:
    if k != r.AccessKey or r.UserID != {"acme": "u-acme", "sec": "u-sec", "zeta": "u-zeta"}.get(k):
        fails.append("record identity: key %s AccessKey %s UserID %s" % (k, r.AccessKey, r.UserID))
        break
secs = [r for k, r in got if k == "sec"]
expect("sec records", len(secs), 20)
expect("sec records of each version", sorted(r.cipher for r in secs),
       [pb.CIPHER_XCHACHA20POLY1305] * 10 + [pb.CIPHER_XCHACHA20POLY1305_V2] * 10)
for r in secs:
    import base64
    blob = base64.b64decode(r.message)
    try:
        pt = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
            blob[24:], ad(r.cipher, b"sec", r.key_id.encode()), blob[:24], SEC_KEY)
        json.loads(pt)
    except Exception as ex:  # noqa: BLE001
        fails.append("sec record (cipher %d) does not decrypt: %r" % (r.cipher, ex))
        break
bad_written = [r.message for k, r in got if "not utf-8" in r.message or r.message == "x"]
expect("refused batches written to Kafka", bad_written, [])

for f in fails:
    print("native_api: FAIL:", f)
print("native_api: %d failures" % len(fails) if fails else "native_api: OK")
sys.exit(1 if fails else 0)
