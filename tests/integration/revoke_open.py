"""revoke_open.py -- a reload reaches the streams already open, for
test-revoke. Four native streams (Python grpcio) send a batch every 100 ms:
acme (to be disabled), delta (its tokens_not_before raised past its
token), beta (its token verified by key id k1, whose secret the reload
removes) and gamma (unchanged); with an unbound token (api.proto,
SendEvent), one short call for epsilon is answered SUCCESS, then a long
call sends an event for epsilon every 100 ms. After 2 s
the key database and the configuration are rewritten (acme disabled,
delta's tokens_not_before, k1 removed, the unbound token's fingerprint
dropped from epsilon's unbound_tokens_sha256) and the master gets SIGHUP.
The first three and the long legacy call must end with PERMISSION_DENIED
within 5 s, a new short call with the token must be refused, and nothing
of either may be in Kafka (a SendEvent call is stored whole or not at
all); gamma must still be
acknowledged 5 s after, and end once ingester.drain_timeout (DRAIN_S) is
over. Then every record of the topic must be one that was acknowledged
OK (gamma's excepted: a batch in the lane when drain_timeout cancelled
its call is written, unacknowledged): nothing sent after a stream was
refused reached Kafka.

usage: revoke_open.py PORT WORK_DIR MASTER_PID DRAIN_S BROKERS TOPIC
"""
import json
import os
import queue
import signal
import struct
import subprocess
import sys
import threading
import time

import grpc
import jwt

import pyproto  # tests/integration/pyproto.py, beside this script

port, work, master, drain_s, brokers, topic = sys.argv[1:7]
master, drain_s = int(master), float(drain_s)
pyproto.stubs("api.proto", "fbpipe.proto")
import api_pb2  # noqa: E402
import fbpipe_pb2 as pb  # noqa: E402

secret = open(os.path.join(work, "jwt.secret"), "rb").read().rstrip(b"\r\n")
secret_k1 = open(os.path.join(work, "jwt.secret.k1"), "rb").read().rstrip(b"\r\n")
fails = []
ch = grpc.insecure_channel("127.0.0.1:" + port)


class Tenant:
    def __init__(self, key, kid=None):
        now = int(time.time()) - 5  # issued well before the reload
        claims = {"access_key": key, "exp": now + 600, "iat": now}
        tok = (jwt.encode(claims, secret_k1, algorithm="HS256", headers={"kid": kid}) if kid
               else jwt.encode(claims, secret, algorithm="HS256"))
        self.key, self.q, self.ok, self.sent = key, queue.Queue(), set(), {}
        self.end, self.end_at = None, None
        self.call = ch.stream_stream("/fbpipe.v1.Ingest/Stream",
                                     request_serializer=pb.Batch.SerializeToString,
                                     response_deserializer=pb.Ack.FromString)(
            iter(self.q.get, None), metadata=[("authorization", "Bearer " + tok)], timeout=120)
        threading.Thread(target=self.read, daemon=True).start()
        threading.Thread(target=self.send, daemon=True).start()

    def read(self):
        try:
            for a in self.call:
                if a.code == pb.OK:
                    self.ok.add(a.seq)
        except grpc.RpcError as e:
            self.end, self.end_at = e.code(), time.monotonic()

    def send(self):
        seq = 0
        while self.end is None and seq < 1000:
            seq += 1
            self.sent[seq] = time.monotonic()
            self.q.put(pb.Batch(seq=seq, tag="t", agent_id="revoke", records=[
                pb.BatchRecord(payload=b'{"k":"%s","s":%d}' % (self.key.encode(), seq))]))
            time.sleep(0.1)
        self.q.put(None)


def legacy_event(key, seq):
    return api_pb2.Event(agent_id="revoke", tag="t", AccessKey=key,
                         message='{"k":"%s","s":%d}' % (key, seq))


def legacy_once(token, key, first):
    """A short SendEvent call of 5 events (seq first..first+4): its status."""
    send = ch.stream_unary("/api.EventService/SendEvent",
                           request_serializer=api_pb2.Event.SerializeToString,
                           response_deserializer=api_pb2.EResponse.FromString)
    try:
        r = send(iter([legacy_event(key, s) for s in range(first, first + 5)]),
                 metadata=[("authorization", "Bearer " + token)], timeout=30)
        return api_pb2.EventCode.Name(r.status)
    except grpc.RpcError as e:
        return e.code()


class Legacy:
    """A long SendEvent call with an unbound token (no access_key claim),
    writing for key, which lists the token's fingerprint until the reload."""

    def __init__(self, key, token):
        self.key, self.q, self.sent = key, queue.Queue(), {}
        self.end, self.end_at = None, None
        self.call = ch.stream_unary("/api.EventService/SendEvent",
                                    request_serializer=api_pb2.Event.SerializeToString,
                                    response_deserializer=api_pb2.EResponse.FromString).future(
            iter(self.q.get, None), metadata=[("authorization", "Bearer " + token)],
            timeout=120)
        self.call.add_done_callback(self.done)
        threading.Thread(target=self.send, daemon=True).start()

    def done(self, f):
        self.end_at = time.monotonic()
        self.end = f.code() if f.exception() is not None else grpc.StatusCode.OK

    def send(self):
        seq = 0
        while self.end is None and seq < 1000:
            seq += 1
            self.sent[seq] = time.monotonic()
            self.q.put(legacy_event(self.key, seq))
            time.sleep(0.1)
        self.q.put(None)


with open(os.path.join(work, "legacy.token")) as f:
    legacy_token = f.read().strip()
before = legacy_once(legacy_token, "epsilon", 10001)
if before != "SUCCESS":
    fails.append("epsilon (unbound token): a call before the reload answered %s" % before)
legacy = Legacy("epsilon", legacy_token)
tenants = [Tenant("acme"), Tenant("delta"), Tenant("beta", kid="k1"), Tenant("gamma")]
time.sleep(2)
for t in tenants:
    if t.end is not None or not t.ok:
        fails.append("%s: not flowing before the reload (%s, %d acked)" % (t.key, t.end, len(t.ok)))
keys = json.load(open(os.path.join(work, "keys.json")))
if legacy.end is not None:
    fails.append("epsilon (unbound token): ended before the reload (%s)" % legacy.end)
keys["acme"]["disabled"] = True
keys["delta"]["tokens_not_before"] = int(time.time())
keys["epsilon"]["unbound_tokens_sha256"] = []
with open(os.path.join(work, "keys.json.new"), "w") as f:
    json.dump(keys, f)
os.chmod(os.path.join(work, "keys.json.new"), 0o640)
os.rename(os.path.join(work, "keys.json.new"), os.path.join(work, "keys.json"))
conf = os.path.join(work, "fbpipe.conf")
lines = [l for l in open(conf) if not l.startswith("jwt_secret_file.k1")]
open(conf, "w").writelines(lines)
hup = time.monotonic()
os.kill(master, signal.SIGHUP)
time.sleep(5)
for t in tenants[:3]:
    if t.end != grpc.StatusCode.PERMISSION_DENIED:
        fails.append("%s: %s 5 s after the reload, want PERMISSION_DENIED" % (t.key, t.end))
    else:
        print("revoke_open: %s ended %.1f s after SIGHUP" % (t.key, t.end_at - hup))
if legacy.end != grpc.StatusCode.PERMISSION_DENIED:
    fails.append("epsilon (unbound token): %s 5 s after the reload, want PERMISSION_DENIED"
                 % legacy.end)
else:
    print("revoke_open: epsilon (unbound token) ended %.1f s after SIGHUP"
          % (legacy.end_at - hup))
refused = legacy_once(legacy_token, "epsilon", 20001)
if refused != grpc.StatusCode.PERMISSION_DENIED:
    fails.append("epsilon (unbound token): a call after the reload: %s, want PERMISSION_DENIED"
                 % refused)
gamma = tenants[3]
if gamma.end is not None:
    fails.append("gamma ended (%s) though nothing revoked it" % gamma.end)
late = [s for s, at in gamma.sent.items() if at > hup + 1 and s in gamma.ok]
if not late:
    fails.append("gamma: nothing acknowledged after the reload")
deadline = hup + drain_s + 15
while gamma.end is None and time.monotonic() < deadline:
    time.sleep(0.2)
if gamma.end is None:
    fails.append("gamma still open %.0f s after the reload (drain_timeout %.0f s)"
                 % (deadline - hup, drain_s))
else:
    print("revoke_open: gamma (unchanged) ended by drain_timeout %.1f s after SIGHUP (%s)"
          % (gamma.end_at - hup, gamma.end))
time.sleep(3)  # what was in the lane reaches Kafka
raw = subprocess.run(["kcat", "-b", brokers, "-C", "-t", topic, "-e", "-q", "-f", "%k\t%R%s"],
                     stdout=subprocess.PIPE, check=True, timeout=120).stdout
written, off = {}, 0
while off < len(raw):
    tab = raw.index(b"\t", off)  # access keys hold no tab
    key = raw[off:tab].decode()
    off = tab + 1
    (vl,) = struct.unpack(">i", raw[off:off + 4])
    r = json.loads(pb.Record.FromString(raw[off + 4:off + 4 + vl]).message)
    off += 4 + vl
    written.setdefault(key, set()).add(r["s"])
for t in tenants:
    extra = written.get(t.key, set()) - t.ok
    # gamma's calls were cancelled by drain_timeout: a batch already in the
    # lane is in Kafka unacknowledged (its agent sends it again: at least
    # once); a revoked tenant's must not be
    if extra and t is not gamma:
        fails.append("%s: %d records in Kafka that were never acknowledged OK (seq %s...)"
                     % (t.key, len(extra), sorted(extra)[:5]))
    missing = t.ok - written.get(t.key, set())
    if missing:
        fails.append("%s: %d acknowledged records not in Kafka" % (t.key, len(missing)))
got = written.get(legacy.key, set())
if got != set(range(10001, 10006)):
    fails.append("epsilon (unbound token): in Kafka %s..., want the 5 events of the call "
                 "before the reload (10001-10005) only" % sorted(got)[:8])
for f in fails:
    print("revoke_open: FAIL:", f)
print("revoke_open: %s; epsilon %d in Kafka" % (
    ", ".join("%s %d acked" % (t.key, len(t.ok)) for t in tenants),
    len(written.get(legacy.key, set()))))
sys.exit(1 if fails else 0)
