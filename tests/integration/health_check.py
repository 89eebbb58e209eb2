"""health_check.py -- grpc.health.v1.Health/Check against fbpiped's workers
with Python grpcio (a client that is not fbpipe's own).

usage: health_check.py PORT WANT [SECONDS]
  WANT: SERVING or NOT_SERVING -- polls until the answer is WANT, for at
  most SECONDS (default 30); also checks that an unknown service is
  NOT_FOUND and an unknown method UNIMPLEMENTED. Exit 0 on success.
"""
import sys
import time

import grpc

import pyproto  # tests/integration/pyproto.py, beside this script

port, want = sys.argv[1], sys.argv[2]
seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 30.0
pyproto.stubs("health.proto")
import health_pb2  # noqa: E402

channel = grpc.insecure_channel("127.0.0.1:" + port)
check = channel.unary_unary(
    "/grpc.health.v1.Health/Check",
    request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
    response_deserializer=health_pb2.HealthCheckResponse.FromString)

for service in ("nope", "api.EventServicex"):
    try:
        check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        sys.exit("health_check: FAIL: service %r answered" % service)
    except grpc.RpcError as e:
        if e.code() != grpc.StatusCode.NOT_FOUND:
            sys.exit("health_check: FAIL: service %r: %s" % (service, e.code()))
try:
    channel.unary_unary("/fbpipe.v1.Nope/Nope")(b"", timeout=5)
    sys.exit("health_check: FAIL: an unknown method answered")
except grpc.RpcError as e:
    if e.code() != grpc.StatusCode.UNIMPLEMENTED:
        sys.exit("health_check: FAIL: unknown method: %s" % e.code())

deadline = time.monotonic() + seconds
last = None
while time.monotonic() < deadline:
    for service in ("", "fbpipe.v1.Ingest", "api.EventService"):
        r = check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        last = health_pb2.HealthCheckResponse.ServingStatus.Name(r.status)
        if last != want:
            break
    else:
        print("health_check: %s" % want)
        sys.exit(0)
    time.sleep(0.5)
sys.exit("health_check: FAIL: still %s after %.0f s, wanted %s" % (last, seconds, want))
