"""tls_client.py -- api.EventService/ExchangeConfig over TLS, mTLS or
plaintext with Python grpcio, each attempt checked against what it should
give: "ok" (the tenant's Config) or "fail" (no connection: UNAVAILABLE,
never an answer of the server such as UNAUTHENTICATED).
usage: tls_client.py PORT SECRET_FILE CASE...
CASE is WANT,HOST,CA,CERT,KEY: WANT ok or fail; HOST the name to connect
to (127.0.0.1 or localhost); CA the PEM to verify the server with, or
"plain" for a plaintext channel, or "-" for the default roots; CERT and
KEY the client certificate and key, or "-" for none.
"""
import os
import sys
import time

os.environ.setdefault("GRPC_VERBOSITY", "ERROR")  # handshake failures are expected here
import grpc  # noqa: E402
import jwt  # noqa: E402

import pyproto  # noqa: E402  tests/integration/pyproto.py, beside this script

port, secret_file, cases = sys.argv[1], sys.argv[2], sys.argv[3:]
pyproto.stubs("api.proto")
import api_pb2  # noqa: E402

secret = open(secret_file, "rb").read().rstrip(b"\r\n")
now = int(time.time())
token = jwt.encode({"access_key": "acme", "exp": now + 600, "iat": now}, secret,
                   algorithm="HS256")
fails = []


def read(path):
    return None if path == "-" else open(path, "rb").read()


for case in cases:
    want, host, ca, cert, key = case.split(",")
    target = "%s:%s" % (host, port)
    if ca == "plain":
        ch = grpc.insecure_channel(target)
    else:
        ch = grpc.secure_channel(target, grpc.ssl_channel_credentials(
            root_certificates=read(ca), private_key=read(key), certificate_chain=read(cert)))
    xc = ch.unary_unary("/api.EventService/ExchangeConfig",
                        request_serializer=api_pb2.AccessKey.SerializeToString,
                        response_deserializer=api_pb2.Config.FromString)
    try:
        cfg = xc(api_pb2.AccessKey(AccessKey="acme"),
                 metadata=[("authorization", "Bearer " + token)], timeout=20)
        got = "ok" if cfg.AccessKey == "acme" and cfg.UserID == "u-acme" else "bad Config"
        detail = "Config %s/%s" % (cfg.AccessKey, cfg.UserID)
    except grpc.RpcError as e:
        got = "fail" if e.code() == grpc.StatusCode.UNAVAILABLE else e.code().name
        detail = "%s: %s" % (e.code().name, e.details())
    ch.close()
    shown = ",".join(os.path.basename(f) for f in case.split(","))
    print("tls_client: %s: want %s, got %s (%s)" % (shown, want, got, detail))
    if got != want:
        fails.append(shown)
for f in fails:
    print("tls_client: FAIL:", f)
sys.exit(1 if fails else 0)
