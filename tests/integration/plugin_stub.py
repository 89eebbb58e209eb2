"""plugin_stub.py -- a stand-in for fbpiped's native API (fbpipe.v1.Ingest,
plaintext, tokens not checked) that answers in one precise way fbpiped
never does, for test-plugin.

usage: plugin_stub.py PORT MODE LOG [CERT KEY]
  (with CERT and KEY, PEM files: TLS with that certificate)
  cipher=N       Exchange answers cipher N, with a 32-byte key and a key id;
                 Stream acknowledges every batch; each record is opened
                 with the associated data of the version it names
  end-after-ack  Exchange answers no cipher; Stream acknowledges each batch
                 OK, then ends the stream with UNAUTHENTICATED, as fbpiped
                 ends the stream of a token that expired once every batch
                 it holds is acknowledged
  end-on-next    Exchange answers no cipher; Stream acknowledges the first
                 batch of each stream OK and ends the stream with
                 UNAUTHENTICATED when the next one arrives, unread and
                 unanswered: the end crossed that batch on the wire
  refuse-marked  ExchangeConfig answers no EncryptionKey; a SendEvent stream
                 holding an event whose message contains BAD is refused
                 whole with INVALID_ARGUMENT (nothing of it is written, as
                 fbpiped refuses a stream with an invalid event); any other
                 is answered SUCCESS
  ok             Exchange answers no cipher; every call succeeds
  break-first=N  Exchange answers no cipher; the first N batches (counted
                 over every stream) are read and the stream is then broken
                 (UNAVAILABLE, unanswered, as a lost connection), the
                 others acknowledged OK
  retry-first=N  Exchange answers no cipher; the first N batches are
                 answered RETRY (retry_after_ms 10), the others OK
  fail-first=N   ExchangeConfig answers no EncryptionKey; the first N
                 SendEvent calls are answered FAILURE (the transient
                 failure of the original ingester), the others SUCCESS
LOG gets one line per call and per batch: "exchange ciphers=C,C..." (what
the agent listed), "stream", "batch SEQ RECORDS FIRST-PAYLOAD" and, with
cipher=N, "record enc=E opens=yes|no"; for the compat API "config",
"sendevent EVENTS refused|failure|ok" and, for each event written,
"event MESSAGE"; and for each batch "id SEQ EPOCH" (what router.dedupe
names its records by). Prints "listening" once it serves;
runs until killed.
"""
import sys
import time
from concurrent import futures

import grpc

import pyproto  # tests/integration/pyproto.py, beside this script

port, mode, log_path = sys.argv[1:4]
tls = sys.argv[4:6]
pyproto.stubs("fbpipe.proto", "api.proto")
import api_pb2 as api  # noqa: E402
import fbpipe_pb2 as pb  # noqa: E402

log = open(log_path, "a", buffering=1)
send_calls = 0
batches_seen = 0


KEY, KEY_ID = b"k" * 32, "stub"


def exchange(req, ctx):
    log.write("exchange ciphers=%s\n" % ",".join(str(c) for c in req.ciphers))
    r = pb.ExchangeResponse(access_key=req.access_key, user_id="u-stub", max_batch_records=1000,
                            max_batch_bytes=1 << 20, max_record_bytes=100000,
                            config_version=1, refresh_interval_s=300)
    if mode.startswith("cipher="):
        r.cipher = int(mode.split("=", 1)[1])
        r.key_id = KEY_ID
        r.encryption_key = KEY
    return r


def opens(rec, access_key):
    """rec's payload opens with the key and the associated data of its enc."""
    import nacl.bindings as sodium
    import struct
    ak, kid = access_key.encode(), rec.key_id.encode()
    if rec.enc == pb.CIPHER_XCHACHA20POLY1305:
        ad = ak + kid
    elif rec.enc == pb.CIPHER_XCHACHA20POLY1305_V2:
        ad = struct.pack(">H", len(ak)) + ak + struct.pack(">H", len(kid)) + kid
    else:
        return False
    try:
        sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(rec.payload[24:], ad,
                                                          rec.payload[:24], KEY)
        return True
    except Exception:  # noqa: BLE001
        return False


def stream(batches, ctx):
    global batches_seen
    log.write("stream\n")
    answered = 0
    for b in batches:
        if mode == "end-on-next" and answered == 1:
            log.write("ended before batch %d\n" % b.seq)
            ctx.set_code(grpc.StatusCode.UNAUTHENTICATED)
            ctx.set_details("token expired: open a new stream with a fresh token")
            return
        answered += 1
        first = b.records[0].payload.decode("utf-8", "replace") if b.records else ""
        log.write("batch %d %d %s\n" % (b.seq, len(b.records), first))
        log.write("id %d %d\n" % (b.seq, b.epoch))
        batches_seen += 1
        if mode.startswith("break-first=") and batches_seen <= int(mode.split("=", 1)[1]):
            ctx.abort(grpc.StatusCode.UNAVAILABLE, "stub: connection lost")
        if mode.startswith("retry-first=") and batches_seen <= int(mode.split("=", 1)[1]):
            yield pb.Ack(seq=b.seq, code=pb.RETRY, retry_after_ms=10)
            continue
        if mode.startswith("cipher="):
            for rec in b.records:
                log.write("record enc=%d opens=%s\n" %
                          (rec.enc, "yes" if opens(rec, "plug") else "no"))
        yield pb.Ack(seq=b.seq, code=pb.OK)
        if mode == "end-after-ack":
            # every batch read is acknowledged: the end follows the ack
            time.sleep(0.1)
            ctx.set_code(grpc.StatusCode.UNAUTHENTICATED)
            ctx.set_details("token expired: open a new stream with a fresh token")
            return


def exchange_config(req, ctx):
    log.write("config\n")
    return api.Config(AccessKey=req.AccessKey, UserID="u-stub")


def send_event(events, ctx):
    global send_calls
    send_calls += 1
    got = list(events)
    if mode == "refuse-marked" and any("BAD" in e.message for e in got):
        log.write("sendevent %d refused\n" % len(got))
        ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, "event has a BAD message")
    if mode.startswith("fail-first=") and send_calls <= int(mode.split("=", 1)[1]):
        log.write("sendevent %d failure\n" % len(got))
        return api.EResponse(status=api.FAILURE)
    log.write("sendevent %d ok\n" % len(got))
    for e in got:
        log.write("event %s\n" % e.message)
    return api.EResponse(status=api.SUCCESS)


compat = grpc.method_handlers_generic_handler("api.EventService", {
    "ExchangeConfig": grpc.unary_unary_rpc_method_handler(
        exchange_config, request_deserializer=api.AccessKey.FromString,
        response_serializer=api.Config.SerializeToString),
    "SendEvent": grpc.stream_unary_rpc_method_handler(
        send_event, request_deserializer=api.Event.FromString,
        response_serializer=api.EResponse.SerializeToString),
})
handlers = grpc.method_handlers_generic_handler("fbpipe.v1.Ingest", {
    "Exchange": grpc.unary_unary_rpc_method_handler(
        exchange, request_deserializer=pb.ExchangeRequest.FromString,
        response_serializer=pb.ExchangeResponse.SerializeToString),
    "Stream": grpc.stream_stream_rpc_method_handler(
        stream, request_deserializer=pb.Batch.FromString,
        response_serializer=pb.Ack.SerializeToString),
})
server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
server.add_generic_rpc_handlers((handlers, compat))
if tls:
    pair = (open(tls[1], "rb").read(), open(tls[0], "rb").read())
    bound = server.add_secure_port("127.0.0.1:" + port, grpc.ssl_server_credentials([pair]))
else:
    bound = server.add_insecure_port("127.0.0.1:" + port)
if bound == 0:
    sys.exit("plugin_stub.py: cannot listen on 127.0.0.1:" + port)
server.start()
print("listening", flush=True)
server.wait_for_termination()
