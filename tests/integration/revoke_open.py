"""revoke_open.py -- a reload reaches the streams already open, for
test-revoke. Four native streams (Python grpcio) send a batch every 100 ms:
acme (to be disabled), delta (its tokens_not_before raised past its
token), beta (its token verified by key id k1, whose secret the reload
removes) and gamma (unchanged). After 2 s the key database and the
configuration are rewritten and the master gets SIGHUP. The first three
must end with PERMISSION_DENIED within 5 s; gamma must still be
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
pyproto.stubs("fbpipe.proto")
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


tenants = [Tenant("acme"), Tenant("delta"), Tenant("beta", kid="k1"), Tenant("gamma")]
time.sleep(2)
for t in tenants:
    if t.end is not None or not t.ok:
        fails.append("%s: not flowing before the reload (%s, %d acked)" % (t.key, t.end, len(t.ok)))
keys = json.load(open(os.path.join(work, "keys.json")))
keys["acme"]["disabled"] = True
keys["delta"]["tokens_not_before"] = int(time.time())
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
for f in fails:
    print("revoke_open: FAIL:", f)
print("revoke_open: %s" % ", ".join("%s %d acked" % (t.key, len(t.ok)) for t in tenants))
sys.exit(1 if fails else 0)
