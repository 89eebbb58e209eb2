"""native_faults.py -- fbpipe.v1.Ingest/Stream under faults, with a Python
grpcio client that resends what was not acknowledged.

usage: native_faults.py PORT SECRET_FILE BROKERS TOPIC LOG_FILE KAFKA_LOCAL|-

- spread: 16 separate connections reach both workers (SO_REUSEPORT);
- kill: every worker is killed with SIGKILL in the middle of a stream; the
  client sees an error, reconnects, sends again every batch without an OK
  ack; afterwards every record of every batch is in Kafka (duplicates are
  counted, not refused);
- outage (only with kafka-local, which can stop the broker): a batch sent
  while the broker is down is not acknowledged; batches that find the lane
  full are answered RETRY with retry_after_ms; once the broker is back the
  pending batch is acknowledged OK.
"""
import json
import os
import queue
import re
import signal
import struct
import subprocess
import sys
import threading
import time

import grpc
import jwt

import pyproto  # tests/integration/pyproto.py, beside this script

port, secret_file, brokers, topic, log_file, kafka_local = sys.argv[1:7]
pyproto.stubs("fbpipe.proto")
import fbpipe_pb2 as pb  # noqa: E402

secret = open(secret_file, "rb").read().rstrip(b"\r\n")
fails = []


def expect(what, got, want):
    if got != want:
        fails.append("%s: got %r, want %r" % (what, got, want))


def md(key="acme"):
    now = int(time.time())
    return [("authorization", "Bearer " + jwt.encode(
        {"access_key": key, "exp": now + 600, "iat": now}, secret, algorithm="HS256"))]


def channel(i=0):
    # a connection of its own (channels share subchannels otherwise)
    return grpc.insecure_channel("127.0.0.1:" + port,
                                 options=[("grpc.use_local_subchannel_pool", 1),
                                          ("fbpipe.test.channel", i)])


def log():
    with open(log_file, errors="replace") as f:
        return f.read()


class Stream:
    """One Stream call: send() puts a batch, acks arrive on self.acks."""

    def __init__(self, ch):
        self.q = queue.Queue()
        self.acks = queue.Queue()
        self.error = None
        self.call = ch.stream_stream("/fbpipe.v1.Ingest/Stream",
                                     request_serializer=pb.Batch.SerializeToString,
                                     response_deserializer=pb.Ack.FromString)(
            iter(self.q.get, None), metadata=md(), timeout=300)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        try:
            for a in self.call:
                self.acks.put(a)
        except grpc.RpcError as e:
            self.error = e
        self.acks.put(None)  # the end

    def send(self, b):
        self.q.put(b)

    def close(self):
        self.q.put(None)


def batch(seq, n=50, size=0):
    pad = "x" * size
    return pb.Batch(seq=seq, tag="faults", records=[
        pb.BatchRecord(payload=json.dumps({"b": seq, "i": i, "p": pad}).encode())
        for i in range(n)])


# ---- spread: both workers get connections
for i in range(16):
    try:
        channel(i).unary_unary("/fbpipe.v1.Ingest/Exchange",
                               request_serializer=pb.ExchangeRequest.SerializeToString,
                               response_deserializer=pb.ExchangeResponse.FromString)(
            pb.ExchangeRequest(access_key="acme"), metadata=[("authorization", "Bearer no")],
            timeout=10)
    except grpc.RpcError:
        pass
served = set(re.findall(r"(worker\[\d+\]): notice: \S+ refused", log()))
if len(served) < 2:
    fails.append("16 connections all went to %s" % sorted(served))

# ---- kill: SIGKILL every worker mid-stream; resend what was not acked
TOTAL, WINDOW = 200, 8
acked, sent_at, next_seq, kills, errors = set(), {}, 1, 0, 0
s = Stream(channel(100))
inflight = set()
while len(acked) < TOTAL:
    while len(inflight) < WINDOW and next_seq <= TOTAL:
        s.send(batch(next_seq))
        inflight.add(next_seq)
        next_seq += 1
    a = s.acks.get(timeout=120)
    if a is not None:
        expect("ack code of batch %d" % a.seq, a.code, pb.OK)
        acked.add(a.seq)
        inflight.discard(a.seq)
        if len(acked) == 50 and kills == 0:
            pids = re.findall(r"started worker\[\d+\] \(pid (\d+)\)", log())
            for p in pids:
                try:
                    os.kill(int(p), signal.SIGKILL)
                    kills += 1
                except ProcessLookupError:
                    pass
        continue
    # the stream broke: a new one, after the master restarted the workers
    errors += 1
    if errors > 20:
        fails.append("the stream broke %d times" % errors)
        break
    time.sleep(0.5)
    s = Stream(channel(100 + errors))
    for q in sorted(inflight):  # every batch not acknowledged, again
        s.send(batch(q))
s.close()
if kills == 0 or errors == 0:
    fails.append("the kill did not break the stream (kills %d, errors %d)" % (kills, errors))

raw = subprocess.run(["kcat", "-b", brokers, "-C", "-t", topic, "-e", "-q", "-f", "%k\t%R%s"],
                     stdout=subprocess.PIPE, check=True, timeout=120).stdout
seen, dups, off = set(), 0, 0
while off < len(raw):
    tab = raw.index(b"\t", off)
    off = tab + 1
    (vl,) = struct.unpack(">i", raw[off:off + 4])
    r = pb.Record.FromString(raw[off + 4:off + 4 + vl])
    off += 4 + vl
    if r.tag != "faults":
        continue
    m = json.loads(r.message)
    if (m["b"], m["i"]) in seen:
        dups += 1
    seen.add((m["b"], m["i"]))
missing = [(b, i) for b in sorted(acked) for i in range(50) if (b, i) not in seen]
expect("records of acknowledged batches missing from Kafka", missing[:5], [])
print("native_faults: kill: %d workers killed, stream broke %d time(s), %d records, "
      "%d duplicates, 0 lost" % (kills, errors, len(seen), dups))

# ---- outage: no ack while the broker is down; RETRY when the lane is full
if kafka_local != "-":
    s = Stream(channel(500))
    s.send(batch(1, 1))
    a = s.acks.get(timeout=60)
    expect("before the outage", a and a.code, pb.OK)
    subprocess.run([kafka_local, "stop-node", "1"], check=True, stdout=subprocess.DEVNULL)
    s.send(batch(2, 1))
    try:
        a = s.acks.get(timeout=5)
        fails.append("acknowledged while the broker is down: %r" % a)
    except queue.Empty:
        pass
    # fill the lane (2 MB) with 300 KB batches until one waits too long
    retry = None
    for seq in range(3, 40):
        s.send(batch(seq, 30, 10000))
    t0 = time.time()
    while retry is None and time.time() - t0 < 60:
        try:
            a = s.acks.get(timeout=5)
        except queue.Empty:
            continue
        if a is None:
            break
        if a.code == pb.RETRY:
            retry = a
        elif a.code == pb.OK:
            fails.append("batch %d acknowledged while the broker is down" % a.seq)
    if retry is None:
        fails.append("no RETRY while the lane was full")
    elif retry.retry_after_ms == 0:
        fails.append("RETRY without retry_after_ms")
    subprocess.run([kafka_local, "start-node", "1"], check=True, stdout=subprocess.DEVNULL)
    got2 = None
    t0 = time.time()
    while got2 is None and time.time() - t0 < 120:
        try:
            a = s.acks.get(timeout=5)
        except queue.Empty:
            continue
        if a is None:
            break
        if a.seq == 2:
            got2 = a
    expect("the batch sent during the outage, after it", got2 and got2.code, pb.OK)
    s.close()
    print("native_faults: outage: no ack while down, RETRY (%s ms) on a full lane, OK after" %
          (retry and retry.retry_after_ms))

for f in fails:
    print("native_faults: FAIL:", f)
print("native_faults: %d failures" % len(fails) if fails else "native_faults: OK")
sys.exit(1 if fails else 0)
