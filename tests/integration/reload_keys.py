"""reload_keys.py -- SIGHUP reloads the key database without dropping a
connection: a stream open across the reload keeps being acknowledged, a
new key is accepted, a disabled key is refused, and a broken file changes
nothing. Python grpcio client (not fbpipe's).

usage: reload_keys.py PORT SECRET_FILE KEYS_FILE MASTER_PID LOG_FILE
"""
import os
import queue
import signal
import sys
import threading
import time

import grpc
import jwt

import pyproto  # tests/integration/pyproto.py, beside this script

port, secret_file, keys_file, master, log_file = sys.argv[1:6]
master = int(master)
pyproto.stubs("fbpipe.proto")
import fbpipe_pb2 as pb  # noqa: E402

secret = open(secret_file, "rb").read().rstrip(b"\r\n")
fails = []


def expect(what, got, want):
    if got != want:
        fails.append("%s: got %r, want %r" % (what, got, want))


def md(key):
    now = int(time.time())
    return [("authorization", "Bearer " + jwt.encode(
        {"access_key": key, "exp": now + 600, "iat": now}, secret, algorithm="HS256"))]


def write_keys(text):
    tmp = keys_file + ".new"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o640)
    os.rename(tmp, keys_file)


def log_count(marker):
    with open(log_file, errors="replace") as f:
        return f.read().count(marker)


def hup_and_wait(marker, retiring=0):
    """SIGHUP; wait for marker, and for `retiring` workers of the previous
    generation to stop accepting calls (reload is asynchronous: until then
    they still answer new calls with the keys they hold)."""
    retired = "retiring: no new calls"
    before, before_r = log_count(marker), log_count(retired)
    os.kill(master, signal.SIGHUP)
    for _ in range(400):
        if log_count(marker) > before and log_count(retired) >= before_r + retiring:
            return True
        time.sleep(0.05)
    fails.append("no %r (and %d retiring) in the log after SIGHUP" % (marker, retiring))
    return False


def one_batch(ch, key, seq):
    """A fresh stream with one batch: its Ack code, or the error status."""
    call = ch.stream_stream("/fbpipe.v1.Ingest/Stream",
                            request_serializer=pb.Batch.SerializeToString,
                            response_deserializer=pb.Ack.FromString)
    b = pb.Batch(seq=seq, tag="t", records=[pb.BatchRecord(payload=b'{"k":"%s"}' % key.encode())])
    try:
        acks = list(call(iter([b]), metadata=md(key), timeout=30))
        return acks[0].code if acks else "no ack"
    except grpc.RpcError as e:
        return e.code()


ch = grpc.insecure_channel("127.0.0.1:" + port)
# a stream of zeta, open across the reloads
q, acks, errors = queue.Queue(), queue.Queue(), []
call = ch.stream_stream("/fbpipe.v1.Ingest/Stream",
                        request_serializer=pb.Batch.SerializeToString,
                        response_deserializer=pb.Ack.FromString)(
    iter(q.get, None), metadata=md("zeta"), timeout=120)


def reader():
    try:
        for a in call:
            acks.put(a)
    except grpc.RpcError as e:
        errors.append(e)


threading.Thread(target=reader, daemon=True).start()


def zeta_batch(seq):
    q.put(pb.Batch(seq=seq, tag="t", records=[pb.BatchRecord(payload=b'{"zeta":%d}' % seq)]))
    try:
        a = acks.get(timeout=30)
        return (a.seq, a.code)
    except queue.Empty:
        return ("no ack", errors and errors[0].code())


expect("zeta before the reload", zeta_batch(1), (1, pb.OK))
expect("acme before the reload", one_batch(ch, "acme", 1), pb.OK)
expect("newco before the reload", one_batch(ch, "newco", 1), grpc.StatusCode.PERMISSION_DENIED)

write_keys('{"acme": {"UserID": "u-acme", "disabled": true}, "zeta": {"UserID": "u-zeta"},'
           ' "newco": {"UserID": "u-newco"}}\n')
hup_and_wait("workers started with the new keys", retiring=2)
expect("zeta across the reload (same stream)", zeta_batch(2), (2, pb.OK))
expect("newco after the reload", one_batch(ch, "newco", 2), pb.OK)
expect("acme disabled by the reload", one_batch(ch, "acme", 2),
       grpc.StatusCode.PERMISSION_DENIED)

write_keys('{"acme": {')
hup_and_wait("keeping the running configuration")
expect("newco after a broken reload", one_batch(ch, "newco", 3), pb.OK)
expect("acme still disabled after a broken reload", one_batch(ch, "acme", 3),
       grpc.StatusCode.PERMISSION_DENIED)

# a second good reload while the first generation still serves zeta's stream
write_keys('{"zeta": {"UserID": "u-zeta"}, "newco": {"UserID": "u-newco"},'
           ' "third": {"UserID": "u-third"}}\n')
hup_and_wait("workers started with the new keys", retiring=2)
expect("third after the second reload", one_batch(ch, "third", 1), pb.OK)
q.put(None)
call_err = None
for _ in range(100):
    if call.done():
        break
    time.sleep(0.1)
try:
    call.result() if hasattr(call, "result") else None
except grpc.RpcError as e:
    call_err = e.code()
except Exception:  # noqa: BLE001  stream calls have no result(); done() suffices
    pass
for f in fails:
    print("reload_keys: FAIL:", f)
print("reload_keys: %d failures" % len(fails) if fails else "reload_keys: OK")
sys.exit(1 if fails else 0)
