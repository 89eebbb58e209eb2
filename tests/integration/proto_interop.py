"""proto_interop.py -- the protos as another implementation reads them.

Compiles proto/*.proto with grpcio-tools (Google's protoc), then checks that
what fbpipe's protoc-c code encodes decodes in Python -- a Record as an
api.Event and as a fbpipe.v1.Record -- and that what Python encodes decodes
in C. Run by test-proto-interop inside the test virtual environment.
"""
import os
import subprocess
import sys

import pyproto  # tests/integration/pyproto.py, beside this script

src = os.environ["FBPIPE_SRCDIR"]
codec = os.path.join(os.environ["FBPIPE_BUILDDIR"], "tests/integration/proto_codec")
pyproto.stubs("api.proto", "fbpipe.proto", "health.proto", grpc=True)
import api_pb2  # noqa: E402
import fbpipe_pb2  # noqa: E402
import health_pb2_grpc  # noqa: E402,F401

failures = []


def check(what, got, want):
    if got != want:
        failures.append("%s: got %r, want %r" % (what, got, want))


def c_codec(*args):
    return subprocess.run([codec, *args], check=True, capture_output=True,
                          text=True).stdout


# C encodes a Record; Python reads it both ways.
blob = bytes.fromhex(c_codec("record").strip())
ev = api_pb2.Event.FromString(blob)
check("Event.timestamp.seconds", ev.timestamp.seconds, 1700000000)
check("Event.agent_id", ev.agent_id, "agent-\u00e9")
check("Event.message", ev.message, '{"k":1}')
check("Event.UserID", ev.UserID, "user-1")
check("Event.AccessKey", ev.AccessKey, "acme")
rec = fbpipe_pb2.Record.FromString(blob)
check("Record.cipher", rec.cipher, fbpipe_pb2.CIPHER_AES256GCM_HEX)
check("Record.key_id", rec.key_id, "k1")
check("Record.agent_seq", rec.agent_seq, 12345678901234)
check("Record.received_at", rec.received_at.seconds, 1700000009)
check("Record re-encoded by Python", rec.SerializeToString(), blob)

# Python encodes; C reads.
e = api_pb2.Event(agent_id="py", tag="t", message="m", UserID="u", AccessKey="k")
e.timestamp.seconds = 42
e.timestamp.nanos = 7
check("C reads api.Event", c_codec("event", e.SerializeToString().hex()).strip(),
      "seconds=42 nanos=7 agent_id=py tag=t message=m userid=u accesskey=k")
b = fbpipe_pb2.Batch(seq=3, tag="tag", agent_id="a")
b.records.add(payload=b"\x00\xff", enc=fbpipe_pb2.CIPHER_XCHACHA20POLY1305, key_id="k2")
check("C reads fbpipe.v1.Batch", c_codec("batch", b.SerializeToString().hex()),
      "seq=3 tag=tag agent_id=a records=1\nrecord 0 enc=2 key_id=k2 payload=00ff\n")

# The service paths agents call must be exactly these.
check("EventService methods",
      [m.name for m in api_pb2.DESCRIPTOR.services_by_name["EventService"].methods],
      ["SendEvent", "ExchangeConfig"])
check("Ingest methods",
      [m.name for m in fbpipe_pb2.DESCRIPTOR.services_by_name["Ingest"].methods],
      ["Exchange", "Stream"])

for f in failures:
    print("proto_interop: FAIL:", f)
print("proto_interop: %d checks failed" % len(failures) if failures else "proto_interop: OK")
sys.exit(1 if failures else 0)
