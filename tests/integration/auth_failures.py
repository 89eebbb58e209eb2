"""auth_failures.py -- every authentication failure fbpiped knows, through
api.EventService/ExchangeConfig and api.EventService/SendEvent, each with its
own gRPC status and a precise message; the controls beside them are
accepted, so that no refusal is an accident of the setup.

Server A: HS256, a secret without kid and one with kid "k2", auth.issuer,
auth.audience, clock skew 30 s. Server B: RS256 with a public key.
usage: auth_failures.py PORT_A SECRET SECRET_K2 ISSUER AUDIENCE NOT_BEFORE
                        PORT_B PUBLIC_PEM PRIVATE_PEM OTHER_PRIVATE_PEM LEGACY_TOKEN_FILE
(LEGACY_TOKEN_FILE: a token without key claim for server A, whose
fingerprint key "legacy" lists in unbound_tokens_sha256)
Prints "refusals A: kind=N ..." and "refusals B: ..." (what each server
must have counted) and exits 1 on any failure.
"""
import base64
import collections
import hashlib
import hmac
import json
import sys
import time

import grpc
import jwt

import pyproto  # tests/integration/pyproto.py, beside this script

(port_a, sec_file, sec2_file, issuer, audience, not_before, port_b, pub_file, priv_file,
 other_priv_file, legacy_file) = sys.argv[1:12]
not_before = int(not_before)
pyproto.stubs("api.proto")
import api_pb2  # noqa: E402

secret = open(sec_file, "rb").read().rstrip(b"\r\n")
secret2 = open(sec2_file, "rb").read().rstrip(b"\r\n")
public_pem = open(pub_file, "rb").read()
private_pem = open(priv_file, "rb").read()
other_private_pem = open(other_priv_file, "rb").read()
legacy = open(legacy_file).read().strip()
now = int(time.time())
UNAUTH = grpc.StatusCode.UNAUTHENTICATED
DENIED = grpc.StatusCode.PERMISSION_DENIED


def b64(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def part(obj):
    return b64(json.dumps(obj, separators=(",", ":")).encode())


def hs256(header, claims, key):
    """A token signed by hand: PyJWT will not take a PEM as an HMAC secret."""
    signing_input = part(header) + "." + part(claims)
    sig = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64(sig)


def claims_a(key="acme", **over):
    c = {"access_key": key, "iat": now, "exp": now + 600, "iss": issuer, "aud": audience}
    for k, v in over.items():
        if v is None:
            c.pop(k, None)
        else:
            c[k] = v
    return c


HS = {"alg": "HS256", "typ": "JWT"}


def tok_a(key="acme", header=None, secret_=None, **over):
    return hs256(header or HS, claims_a(key, **over), secret_ or secret)


def bearer(tok):
    return [("authorization", "Bearer " + tok)]


good_acme = tok_a()
flipped = good_acme[:-2] + ("A" if good_acme[-2] != "A" else "B") + good_acme[-1]
rs_on_a = jwt.encode(claims_a(), private_pem, algorithm="RS256")
claims_b = {"access_key": "acme", "iat": now, "exp": now + 600}

# (name, server, metadata, request's access key, status or None (accepted),
#  words of the message, kind counted by the server)
CASES = [
    ("control: bound token", "A", bearer(good_acme), "acme", None, [], None),
    ("control: kid k2", "A", bearer(tok_a(header=dict(HS, kid="k2"), secret_=secret2)), "acme",
     None, [], None),
    ("control: iat and nbf within the clock skew", "A",
     bearer(tok_a(iat=now + 10, nbf=now + 10)), "acme", None, [], None),
    ("control: issued after tokens_not_before", "A", bearer(tok_a("revk")), "revk", None, [],
     None),
    ("missing authorization header", "A", [], "acme", UNAUTH,
     ["no authorization metadata"], "missing"),
    ("scheme Basic", "A", [("authorization", "Basic " + good_acme)], "acme", UNAUTH,
     ['scheme "Basic" is not Bearer'], "not_bearer"),
    ("no scheme", "A", [("authorization", good_acme)], "acme", UNAUTH,
     ["not \"Bearer <token>\"", "no scheme"], "not_bearer"),
    ("malformed: two parts", "A", bearer("abc.def"), "acme", UNAUTH,
     ["2 parts, not 3"], "malformed"),
    ("malformed: header not JSON", "A", bearer(b64(b"{alg") + "." + part(claims_a()) + ".x"),
     "acme", UNAUTH, ["header is not JSON"], "malformed"),
    ("malformed: not base64url", "A", bearer("a*b.c.d"), "acme", UNAUTH,
     ["not base64url"], "malformed"),
    ("alg none", "A", bearer(part({"alg": "none", "typ": "JWT"}) + "." + part(claims_a()) + "."),
     "acme", UNAUTH, ['algorithm "none"', "unsigned"], "alg_none"),
    ("alg NoNe", "A", bearer(part({"alg": "NoNe"}) + "." + part(claims_a()) + "."), "acme",
     UNAUTH, ['algorithm "NoNe"', "unsigned"], "alg_none"),
    ("RS256 token to an HS256 server", "A", bearer(rs_on_a), "acme", UNAUTH,
     ["algorithm RS256 is not the configured HS256"], "wrong_alg"),
    ("HS512 token to an HS256 server", "A",
     bearer(jwt.encode(claims_a(), secret, algorithm="HS512")), "acme", UNAUTH,
     ["algorithm HS512 is not the configured HS256"], "wrong_alg"),
    ("unknown kid", "A", bearer(tok_a(header=dict(HS, kid="k9"))), "acme", UNAUTH,
     ['kid "k9" names no configured key'], "unknown_kid"),
    ("bad signature: another secret", "A", bearer(tok_a(secret_=b"x" * 48)), "acme", UNAUTH,
     ["signature does not verify"], "bad_signature"),
    ("bad signature: kid k2 signed with the secret without kid", "A",
     bearer(tok_a(header=dict(HS, kid="k2"))), "acme", UNAUTH,
     ['signature does not verify with the HS256 key of kid "k2"'], "bad_signature"),
    ("bad signature: a changed byte", "A", bearer(flipped), "acme", UNAUTH,
     ["signature does not verify"], "bad_signature"),
    ("expired", "A", bearer(tok_a(iat=now - 7200, exp=now - 3600)), "acme", UNAUTH,
     ["token expired", "clock skew 30 s"], "expired"),
    ("no exp", "A", bearer(tok_a(exp=None)), "acme", UNAUTH, ["no exp"], "no_exp"),
    ("not yet valid: nbf", "A", bearer(tok_a(nbf=now + 3600)), "acme", UNAUTH,
     ["not valid for another", "nbf"], "not_yet_valid"),
    ("not yet valid: iat", "A", bearer(tok_a(iat=now + 3600, exp=now + 7200)), "acme", UNAUTH,
     ["issued", "in the future (iat"], "not_yet_valid"),
    ("wrong issuer", "A", bearer(tok_a(iss="someone-else")), "acme", UNAUTH,
     ['issuer "someone-else" is not the configured'], "bad_issuer"),
    ("no issuer", "A", bearer(tok_a(iss=None)), "acme", UNAUTH, ["no iss"], "bad_issuer"),
    ("wrong audience", "A", bearer(tok_a(aud="elsewhere")), "acme", UNAUTH,
     ["audience does not include"], "bad_audience"),
    ("no audience", "A", bearer(tok_a(aud=None)), "acme", UNAUTH, ["no aud"], "bad_audience"),
    ("unknown access key", "A", bearer(tok_a("ghost")), "ghost", DENIED,
     ['access key "ghost" is not in the key database'], "unknown_key"),
    ("disabled key", "A", bearer(tok_a("off")), "off", DENIED,
     ['access key "off" is disabled'], "disabled"),
    ("revoked: iat before tokens_not_before", "A", bearer(tok_a("revk", iat=not_before - 60)),
     "revk", DENIED, ["before access key \"revk\" tokens_not_before"], "revoked"),
    ("revoked: no iat", "A", bearer(tok_a("revk", iat=None)), "revk", DENIED,
     ["no iat", "revokes tokens"], "revoked"),
    ("token bound to another key", "A", bearer(good_acme), "zeta", DENIED,
     ['bound to access key "acme", not "zeta"'], "key_mismatch"),
    ("unbound token, key that lists none", "A", bearer(legacy), "acme", DENIED,
     ["does not list its fingerprint", "in unbound_tokens_sha256"], "unbound_not_allowed"),
    ("unbound token the key does not list", "A",
     bearer(tok_a(access_key=None, role="other")), "legacy", DENIED,
     ['access key "legacy" does not list its fingerprint'], "unbound_not_allowed"),
    ("unbound token the key lists", "A", bearer(legacy), "legacy", None, [], None),
    ("control: RS256 server", "B", bearer(jwt.encode(claims_b, private_pem, algorithm="RS256")),
     "acme", None, [], None),
    ("HS256 token keyed with the server's RSA public key PEM", "B",
     bearer(hs256(HS, claims_b, public_pem)), "acme", UNAUTH,
     ["algorithm HS256 is not the configured RS256"], "wrong_alg"),
    ("alg none to an RS256 server", "B",
     bearer(part({"alg": "none", "typ": "JWT"}) + "." + part(claims_b) + "."), "acme", UNAUTH,
     ["unsigned"], "alg_none"),
    ("RS256 signed by another key", "B",
     bearer(jwt.encode(claims_b, other_private_pem, algorithm="RS256")), "acme", UNAUTH,
     ["signature does not verify with the RS256 key"], "bad_signature"),
]

channels = {"A": grpc.insecure_channel("127.0.0.1:" + port_a),
            "B": grpc.insecure_channel("127.0.0.1:" + port_b)}
fails = []
counted = {"A": collections.Counter(), "B": collections.Counter()}


def call(server, rpc, md, key):
    ch = channels[server]
    if rpc == "ExchangeConfig":
        xc = ch.unary_unary("/api.EventService/ExchangeConfig",
                            request_serializer=api_pb2.AccessKey.SerializeToString,
                            response_deserializer=api_pb2.Config.FromString)
        cfg = xc(api_pb2.AccessKey(AccessKey=key), metadata=md, timeout=10)
        return cfg.AccessKey == key, "Config.AccessKey %r" % cfg.AccessKey
    send = ch.stream_unary("/api.EventService/SendEvent",
                           request_serializer=api_pb2.Event.SerializeToString,
                           response_deserializer=api_pb2.EResponse.FromString)
    ev = api_pb2.Event(agent_id="py-auth", tag="t", message='{"auth":"case"}', AccessKey=key)
    r = send(iter([ev]), metadata=md, timeout=60)
    return r.status == api_pb2.SUCCESS, "EResponse %s" % api_pb2.EventCode.Name(r.status)


for name, server, md, key, code, words, kind in CASES:
    for rpc in ("ExchangeConfig", "SendEvent"):
        what = "%s %s (%s)" % (server, rpc, name)
        try:
            ok, got = call(server, rpc, md, key)
            if code is not None:
                fails.append("%s: accepted, want %s" % (what, code.name))
            elif not ok:
                fails.append("%s: %s" % (what, got))
            continue
        except grpc.RpcError as e:
            if code is None:
                fails.append("%s: refused: %s %s" % (what, e.code().name, e.details()))
                continue
            if e.code() != code:
                fails.append("%s: status %s, want %s (%s)" %
                             (what, e.code().name, code.name, e.details()))
            missing = [w for w in words if w not in (e.details() or "")]
            if missing:
                fails.append("%s: message %r lacks %r" % (what, e.details(), missing))
            counted[server][kind] += 1
for f in fails:
    print("auth_failures: FAIL:", f)
for server in ("A", "B"):
    print("refusals %s:%s" % (server, "".join(" %s=%d" % kv for kv in
                                            sorted(counted[server].items()))))
print("auth_failures: %d cases, %d failures" % (len(CASES), len(fails)))
sys.exit(1 if fails else 0)
