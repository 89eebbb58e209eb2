"""worker_stuck.py -- new clients are served while a worker is stopped
(SIGSTOP), and nothing acknowledged is lost when the master replaces it.

usage: worker_stuck.py PORT SECRET_FILE BROKERS TOPIC LOG_FILE PID_FILE [CLIENTS] [SECONDS]
       worker_stuck.py unacked PORT SECRET_FILE LOG_FILE

- feeders: 4 native streams on connections of their own, two on each
  worker (the connection's server end, as ss -tnp shows it, tells which
  worker process it reached), opened before the stop and sending batches all along (up to 4
  in flight), so that batches are in flight on the stopped worker; a
  stream that breaks is opened again and every batch without an OK ack is
  sent again; the two on the stopped worker must break and recover;
- the stop: worker[0]'s pid (from "started worker[0] (pid P)" in the log)
  gets SIGSTOP and is written to PID_FILE (the caller's cleanup kills it);
- clients: CLIENTS (8) new clients, each on a connection of its own, each
  sends one batch and waits for its ack; each may try again on a new
  connection when a call fails, all within SECONDS (60) of the stop. A
  connection attempt waits up to 120 s (grpc.min_reconnect_backoff_ms) for
  the server's HTTP/2 SETTINGS, so a client that the kernel queued on the
  stopped worker's listening socket is served only if that socket closes;
- Kafka holds every record of every batch acknowledged OK.
Prints the figures; exit 0 when every check held.

unacked (Kafka away): one batch on each of the two workers, on a stream
that gets no ack within 3 s; the records stay in the lanes unacknowledged.
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

mode = "unacked" if sys.argv[1] == "unacked" else "stuck"
if mode == "unacked":
    port, secret_file, log_file = sys.argv[2:5]
else:
    port, secret_file, brokers, topic, log_file, pid_file = sys.argv[1:7]
    n_clients = int(sys.argv[7]) if len(sys.argv) > 7 else 8
    seconds = float(sys.argv[8]) if len(sys.argv) > 8 else 60.0
pyproto.stubs("fbpipe.proto")
import fbpipe_pb2 as pb  # noqa: E402

secret = open(secret_file, "rb").read().rstrip(b"\r\n")
fails = []
lock = threading.Lock()
acked = set()  # (who, seq) acknowledged OK
PER_BATCH = 20


def fail(msg):
    with lock:
        fails.append(msg)


def md():
    now = int(time.time())
    return [("authorization", "Bearer " + jwt.encode(
        {"access_key": "acme", "exp": now + 600, "iat": now}, secret, algorithm="HS256"))]


def channel(name):
    # a connection of its own; a connection attempt may wait 120 s
    return grpc.insecure_channel("127.0.0.1:" + port,
                                 options=[("grpc.use_local_subchannel_pool", 1),
                                          ("fbpipe.test.channel", name),
                                          ("grpc.min_reconnect_backoff_ms", 120000),
                                          ("grpc.initial_reconnect_backoff_ms", 500)])


def batch(who, seq):
    return pb.Batch(seq=seq, tag="stuck", records=[
        pb.BatchRecord(payload=json.dumps({"w": who, "b": seq, "i": i}).encode())
        for i in range(PER_BATCH)])


class Stream:
    """One Stream call: send() puts a batch, acks arrive on self.acks."""

    def __init__(self, ch, timeout):
        self.q = queue.Queue()
        self.acks = queue.Queue()
        self.call = ch.stream_stream("/fbpipe.v1.Ingest/Stream",
                                     request_serializer=pb.Batch.SerializeToString,
                                     response_deserializer=pb.Ack.FromString)(
            iter(self.q.get, None), metadata=md(), timeout=timeout, wait_for_ready=True)
        self.error = None
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


def log():
    with open(log_file, errors="replace") as f:
        return f.read()


# ---- feeders: streams in flight across the stop
stop_feeding = threading.Event()
feeder_stats = {}


def connections():
    """The established connections to the port: client address -> the pid
    of the process that holds the server end."""
    out = subprocess.run(["ss", "-Htnp", "state", "established", "( sport = :%s )" % port],
                         stdout=subprocess.PIPE, text=True, check=False).stdout
    found = {}
    for line in out.splitlines():
        m = re.search(r"\s(\S+:\d+)\s+users:\(\(\"[^\"]*\",pid=(\d+)", line)
        if m:
            found[m.group(1)] = int(m.group(2))
    return found


def worker_of(pid):
    """worker[N] of pid, from the master's "started worker[N] (pid P)"."""
    for name, p in re.findall(r"started (worker\[\d+\]) \(pid (\d+)\)", log()):
        if int(p) == pid:
            return name
    return None


def placed_channel(name):
    """A connection and the worker it reached: a call makes the channel
    connect, and the one new connection to the port is its."""
    ch = channel(name)
    before = set(connections())
    try:
        ch.unary_unary("/fbpipe.v1.Ingest/Exchange",
                       request_serializer=pb.ExchangeRequest.SerializeToString,
                       response_deserializer=pb.ExchangeResponse.FromString)(
            pb.ExchangeRequest(access_key="acme"), metadata=[("authorization", "Bearer no")],
            timeout=10)
    except grpc.RpcError:
        pass
    for _ in range(50):
        now = connections()
        new = [c for c in now if c not in before]
        if len(new) == 1:
            return ch, worker_of(now[new[0]])
        time.sleep(0.1)
    return ch, None


def feeder(f, ch):
    who = "f%d" % f
    inflight, next_seq, breaks, n_ok = set(), 1, 0, 0
    s = Stream(ch, 300)
    deadline = None
    while True:
        if stop_feeding.is_set() and deadline is None:
            deadline = time.monotonic() + 60
        while not stop_feeding.is_set() and len(inflight) < 4:
            s.send(batch(who, next_seq))
            inflight.add(next_seq)
            next_seq += 1
            time.sleep(0.02)
        if stop_feeding.is_set() and not inflight:
            break
        if deadline is not None and time.monotonic() > deadline:
            fail("%s: %d batches never acknowledged" % (who, len(inflight)))
            break
        try:
            a = s.acks.get(timeout=1)
        except queue.Empty:
            continue
        if a is not None:
            if a.code != pb.OK:
                fail("%s: batch %d answered %d %s" % (who, a.seq, a.code, a.detail))
            else:
                with lock:
                    acked.add((who, a.seq))
                n_ok += 1
            inflight.discard(a.seq)
            continue
        breaks += 1  # the stream broke: again on a new connection
        if breaks > 10:
            fail("%s: the stream broke %d times (%s)" % (who, breaks, s.error))
            break
        time.sleep(0.5)
        s = Stream(channel("%s.%d" % (who, breaks)), 300)
        for q in sorted(inflight):
            s.send(batch(who, q))
    s.close()
    feeder_stats[who] = (n_ok, breaks)


def place(each):
    """each connections on worker[0] and on worker[1]."""
    placed = {"worker[0]": [], "worker[1]": []}
    for i in range(40):
        if min(len(v) for v in placed.values()) >= each:
            break
        ch, w = placed_channel("place%d" % i)
        if w in placed and len(placed[w]) < each:
            placed[w].append(ch)
        else:
            ch.close()
    if min(len(v) for v in placed.values()) < each:
        sys.exit("worker_stuck: FAIL: 40 connections did not reach both workers %d times: %r" %
                 (each, {w: len(v) for w, v in placed.items()}))
    return placed


if mode == "unacked":
    streams = []
    for w, chs in sorted(place(1).items()):
        s = Stream(chs[0], 300)
        s.send(batch("u" + w, 1))
        streams.append((w, s))
    time.sleep(3)
    for w, s in streams:
        if not s.acks.empty():
            sys.exit("worker_stuck: FAIL: %s answered with Kafka away: %r" % (w, s.acks.get()))
    print("worker_stuck: one batch unacknowledged in each worker's lane")
    sys.exit(0)

# two feeders on each worker: their connections are placed before the stop
placed = place(2)
feeders = [threading.Thread(target=feeder, args=(f, ch)) for f, ch in
           enumerate(placed["worker[0]"] + placed["worker[1]"])]
for t in feeders:
    t.start()
t0 = time.monotonic()
while time.monotonic() - t0 < 60:
    with lock:
        per = [sum(1 for w, _ in acked if w == "f%d" % f) for f in range(4)]
    if min(per) >= 5:
        break
    time.sleep(0.1)
else:
    fail("the feeders got no acks before the stop: %r" % per)

# ---- the stop
pids = re.findall(r"started worker\[0\] \(pid (\d+)\)", log())
stuck = int(pids[-1])
with open(pid_file, "w") as f:
    f.write("%d\n" % stuck)
os.kill(stuck, signal.SIGSTOP)
t_stop = time.monotonic()
print("worker_stuck: worker[0] (pid %d) stopped" % stuck)

# ---- new clients
results = {}


def client(n):
    who = "c%d" % n
    end = t_stop + seconds
    tries, last = 0, None
    while time.monotonic() < end - 0.5:
        tries += 1
        s = Stream(channel("%s.%d" % (who, tries)), end - time.monotonic())
        s.send(batch(who, 1))
        a = s.acks.get()
        s.close()
        if a is not None and a.code == pb.OK:
            with lock:
                acked.add((who, 1))
            results[who] = (time.monotonic() - t_stop, tries)
            return
        last = a if a is not None else s.error
        if s.error is not None and s.error.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
            break
        time.sleep(0.5)
    results[who] = (None, tries)
    fail("client %s not served within %.0f s of the stop (%d tries, last: %s)" %
         (who, seconds, tries, last.code() if isinstance(last, grpc.RpcError) else last))


clients = [threading.Thread(target=client, args=(n,)) for n in range(n_clients)]
for t in clients:
    t.start()
for t in clients:
    t.join()
stop_feeding.set()
for t in feeders:
    t.join()
served = sorted(v[0] for v in results.values() if v[0] is not None)
waited = [v for v in served if v > 3]
print("worker_stuck: %d of %d new clients served within %.0f s of the stop; %d waited "
      "more than 3 s (slowest %.1f s); tries: %s" %
      (len(served), n_clients, seconds, len(waited), served[-1] if served else -1,
       " ".join(str(results[k][1]) for k in sorted(results))))
for who in ("f0", "f1"):  # on worker[0]
    if who in feeder_stats and feeder_stats[who][1] == 0:
        fail("%s, on the stopped worker, never broke" % who)
print("worker_stuck: feeders (acks/broken streams; f0, f1 on worker[0]): %s" %
      " ".join("%s=%d/%d" % (k, v[0], v[1]) for k, v in sorted(feeder_stats.items())))

# ---- Kafka holds everything acknowledged
if served:
    raw = subprocess.run(["kcat", "-b", brokers, "-C", "-t", topic, "-e", "-q",
                          "-f", "%k\t%R%s"],
                         stdout=subprocess.PIPE, check=True, timeout=120).stdout
    seen, dups, off = set(), 0, 0
    while off < len(raw):
        tab = raw.index(b"\t", off)
        off = tab + 1
        (vl,) = struct.unpack(">i", raw[off:off + 4])
        r = pb.Record.FromString(raw[off + 4:off + 4 + vl])
        off += 4 + vl
        if r.tag != "stuck":
            continue
        m = json.loads(r.message)
        k = (m["w"], m["b"], m["i"])
        dups += k in seen
        seen.add(k)
    missing = [(w, b, i) for (w, b) in sorted(acked) for i in range(PER_BATCH)
               if (w, b, i) not in seen]
    if missing:
        fail("%d records of acknowledged batches missing from Kafka, e.g. %r" %
             (len(missing), missing[:3]))
    print("worker_stuck: %d batches acknowledged, %d records in Kafka, %d duplicates, "
          "%d lost" % (len(acked), len(seen), dups, len(missing)))

for f in fails:
    print("worker_stuck: FAIL:", f)
print("worker_stuck: %d failures" % len(fails) if fails else "worker_stuck: OK")
sys.exit(1 if fails else 0)
