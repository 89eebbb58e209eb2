"""auth_failures.py -- every authentication failure fbpiped knows, and the
token attacks it must withstand, through all four calls that take a token:
api.EventService/ExchangeConfig and /SendEvent (the original API) and
fbpipe.v1.Ingest/Exchange and /Stream (the native API). Each refusal must
have its gRPC status and a precise message, be counted by kind, and write
nothing to Kafka; the controls beside them are accepted (and their events
are in Kafka), so that no refusal is an accident of the setup.

Server A: HS256, a secret without kid and one with kid "k2", auth.issuer,
auth.audience, clock skew 30 s; key "legacy" lists the fingerprint of one
token without key claim (unbound_tokens_sha256). Server B: RS256 with a
public key. Server C: ES256 with a public key.

usage: auth_failures.py CONFIG_JSON
CONFIG_JSON names: ports {A, B, C}; secret, secret_k2, issuer, audience,
not_before (server A); rsa_public, rsa_private, rsa_other_private (B);
ec_public, ec_private, ec_other_private (C); legacy_token_file; brokers,
topic.

The attacks: alg none in any case (to each server), HS/RS and HS/ES
confusion (an HS256 token keyed with the server's public key PEM), RS256
to HS256, HS512 to HS256, a signature stripped (empty, or no third part),
a changed signature byte, a payload changed under a kept signature (bound
to another key), another secret or private key, expired, nbf or iat in the
future, no exp, an unknown kid and kids that look like paths ("../"), a
token of 1 MiB (gRPC core refuses the headers before fbpiped sees the
call: RESOURCE_EXHAUSTED, or it closes that client's connection; nothing
is counted, and the next call, on another connection, is served), a token
bound to another tenant's key (ExchangeConfig, Exchange, SendEvent; a
Stream names no access key: its tenant is always its token's), unknown,
disabled and revoked keys, and tokens without key claim. Stream refuses
every token without key claim, listed or not.

Prints "refusals A: kind=N ..." (and B, C: what each server must have
counted) and exits 1 on any failure.
"""
import base64
import collections
import hashlib
import hmac
import json
import queue
import re
import subprocess
import sys
import time

import grpc
import jwt

import pyproto  # tests/integration/pyproto.py, beside this script

cfg = json.load(open(sys.argv[1]))
pyproto.stubs("api.proto", "fbpipe.proto")
import api_pb2  # noqa: E402
import fbpipe_pb2 as pb  # noqa: E402


def read(path):
    return open(path, "rb").read()


secret = read(cfg["secret"]).rstrip(b"\r\n")
secret2 = read(cfg["secret_k2"]).rstrip(b"\r\n")
issuer, audience, not_before = cfg["issuer"], cfg["audience"], int(cfg["not_before"])
legacy = read(cfg["legacy_token_file"]).decode().strip()
now = int(time.time())
UNAUTH = grpc.StatusCode.UNAUTHENTICATED
DENIED = grpc.StatusCode.PERMISSION_DENIED
# gRPC core refuses headers over its limit before fbpiped sees the call: the
# call is refused, or the client's connection is closed under it
TOO_BIG_OR_CLOSED = (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE)
RPCS = ("ExchangeConfig", "SendEvent", "Exchange", "Stream")


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


def unsigned(alg, claims):
    return part({"alg": alg, "typ": "JWT"}) + "." + part(claims) + "."


good_acme = tok_a()
h_, p_, s_ = good_acme.split(".")
flipped = good_acme[:-2] + ("A" if good_acme[-2] != "A" else "B") + good_acme[-1]
# acme's signature under a payload bound to zeta: the signature no longer covers it
escalated = h_ + "." + part(claims_a("zeta")) + "." + s_
rs_private, rs_public = read(cfg["rsa_private"]), read(cfg["rsa_public"])
ec_private, ec_public = read(cfg["ec_private"]), read(cfg["ec_public"])
claims_bc = {"access_key": "acme", "iat": now, "exp": now + 600}
good_b = jwt.encode(claims_bc, rs_private, algorithm="RS256")
good_c = jwt.encode(claims_bc, ec_private, algorithm="ES256")
huge = "a" * (1 << 20) + "." + p_ + "." + s_  # 1 MiB and more of header


def stream_only(code, words, kind):
    """Per-call expectations: the same everywhere but Stream."""
    return {"Stream": (code, words, kind)}


NEEDS_BOUND = stream_only(DENIED, ["needs a token bound to an access key"], "unbound_not_allowed")

# (name, server, metadata, request's access key, status or None (accepted),
#  words of the message, kind counted by the server, {rpc: (status, words,
#  kind)} where a call differs, rpcs to leave out)
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
    ("alg none", "A", bearer(unsigned("none", claims_a())), "acme", UNAUTH,
     ['algorithm "none"', "unsigned"], "alg_none"),
    ("alg NoNe", "A", bearer(part({"alg": "NoNe"}) + "." + part(claims_a()) + "."), "acme",
     UNAUTH, ['algorithm "NoNe"', "unsigned"], "alg_none"),
    ("alg NONE with a signature", "A",
     bearer(part({"alg": "NONE"}) + "." + part(claims_a()) + "." + s_), "acme", UNAUTH,
     ['algorithm "NONE"', "unsigned"], "alg_none"),
    ("RS256 token to an HS256 server", "A",
     bearer(jwt.encode(claims_a(), rs_private, algorithm="RS256")), "acme", UNAUTH,
     ["algorithm RS256 is not the configured HS256"], "wrong_alg"),
    ("HS512 token to an HS256 server", "A",
     bearer(jwt.encode(claims_a(), secret, algorithm="HS512")), "acme", UNAUTH,
     ["algorithm HS512 is not the configured HS256"], "wrong_alg"),
    ("unknown kid", "A", bearer(tok_a(header=dict(HS, kid="k9"))), "acme", UNAUTH,
     ['kid "k9" names no configured key'], "unknown_kid"),
    ("kid ../k2", "A", bearer(tok_a(header=dict(HS, kid="../k2"), secret_=secret2)), "acme",
     UNAUTH, ['kid "../k2" names no configured key'], "unknown_kid"),
    ("kid ../../../etc/passwd", "A",
     bearer(tok_a(header=dict(HS, kid="../../../etc/passwd"))), "acme", UNAUTH,
     ['kid "../../../etc/passwd" names no configured key'], "unknown_kid"),
    ("bad signature: another secret", "A", bearer(tok_a(secret_=b"x" * 48)), "acme", UNAUTH,
     ["signature does not verify"], "bad_signature"),
    ("bad signature: kid k2 signed with the secret without kid", "A",
     bearer(tok_a(header=dict(HS, kid="k2"))), "acme", UNAUTH,
     ['signature does not verify with the HS256 key of kid "k2"'], "bad_signature"),
    ("bad signature: a changed byte", "A", bearer(flipped), "acme", UNAUTH,
     ["signature does not verify"], "bad_signature"),
    ("bad signature: stripped, empty third part", "A", bearer(h_ + "." + p_ + "."), "acme",
     UNAUTH, ["signature does not verify"], "bad_signature"),
    ("malformed: signature stripped with its dot", "A", bearer(h_ + "." + p_), "acme", UNAUTH,
     ["2 parts, not 3"], "malformed"),
    ("bad signature: payload bound to zeta under acme's signature", "A", bearer(escalated),
     "zeta", UNAUTH, ["signature does not verify"], "bad_signature"),
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
    ("token bound to another tenant's key", "A", bearer(good_acme), "zeta", DENIED,
     ['bound to access key "acme", not "zeta"'], "key_mismatch", {}, ["Stream"]),
    ("unbound token, key that lists none", "A", bearer(legacy), "acme", DENIED,
     ["does not list its fingerprint", "in unbound_tokens_sha256"], "unbound_not_allowed",
     NEEDS_BOUND),
    ("unbound token the key does not list", "A",
     bearer(tok_a(access_key=None, role="other")), "legacy", DENIED,
     ['access key "legacy" does not list its fingerprint'], "unbound_not_allowed", NEEDS_BOUND),
    ("unbound token the key lists", "A", bearer(legacy), "legacy", None, [], None, NEEDS_BOUND),
    ("a token of 1 MiB", "A", bearer(huge), "acme", TOO_BIG_OR_CLOSED, [], None),
    ("control: after the 1 MiB token", "A", bearer(good_acme), "acme", None, [], None),
    ("control: RS256 server", "B", bearer(good_b), "acme", None, [], None),
    ("HS256 token keyed with the server's RSA public key PEM", "B",
     bearer(hs256(HS, claims_bc, rs_public)), "acme", UNAUTH,
     ["algorithm HS256 is not the configured RS256"], "wrong_alg"),
    ("alg none to an RS256 server", "B", bearer(unsigned("none", claims_bc)), "acme", UNAUTH,
     ["unsigned"], "alg_none"),
    ("ES256 token to an RS256 server", "B",
     bearer(jwt.encode(claims_bc, ec_private, algorithm="ES256")), "acme", UNAUTH,
     ["algorithm ES256 is not the configured RS256"], "wrong_alg"),
    ("RS256 signed by another key", "B",
     bearer(jwt.encode(claims_bc, read(cfg["rsa_other_private"]), algorithm="RS256")), "acme",
     UNAUTH, ["signature does not verify with the RS256 key"], "bad_signature"),
    ("RS256 signature stripped", "B", bearer(good_b.rsplit(".", 1)[0] + "."), "acme", UNAUTH,
     ["signature does not verify with the RS256 key"], "bad_signature"),
    ("RS256 token bound to another tenant's key", "B", bearer(good_b), "zeta", DENIED,
     ['bound to access key "acme", not "zeta"'], "key_mismatch", {}, ["Stream"]),
    ("control: ES256 server", "C", bearer(good_c), "acme", None, [], None),
    ("HS256 token keyed with the server's EC public key PEM", "C",
     bearer(hs256(HS, claims_bc, ec_public)), "acme", UNAUTH,
     ["algorithm HS256 is not the configured ES256"], "wrong_alg"),
    ("alg nOnE to an ES256 server", "C", bearer(unsigned("nOnE", claims_bc)), "acme", UNAUTH,
     ['algorithm "nOnE"', "unsigned"], "alg_none"),
    ("RS256 token to an ES256 server", "C", bearer(good_b), "acme", UNAUTH,
     ["algorithm RS256 is not the configured ES256"], "wrong_alg"),
    ("ES256 signed by another key", "C",
     bearer(jwt.encode(claims_bc, read(cfg["ec_other_private"]), algorithm="ES256")), "acme",
     UNAUTH, ["signature does not verify with the ES256 key"], "bad_signature"),
    ("ES256 signature changed", "C", bearer(good_c[:-2] + ("A" if good_c[-2] != "A" else "B") +
                                            good_c[-1]), "acme", UNAUTH,
     ["signature does not verify with the ES256 key"], "bad_signature"),
]

channels = {s: grpc.insecure_channel("127.0.0.1:%d" % p) for s, p in cfg["ports"].items()}
fails = []
counted = {s: collections.Counter() for s in channels}
sent_ok, sent_refused = set(), set()  # markers of events sent and accepted, or refused


def marker(server, i, rpc):
    return "authf-%s-%d-%s" % (server, i, rpc)


def call(ch, rpc, md, key, mark):
    """One call; (accepted, what) or raises grpc.RpcError."""
    if rpc == "ExchangeConfig":
        xc = ch.unary_unary("/api.EventService/ExchangeConfig",
                            request_serializer=api_pb2.AccessKey.SerializeToString,
                            response_deserializer=api_pb2.Config.FromString)
        c = xc(api_pb2.AccessKey(AccessKey=key), metadata=md, timeout=10)
        return c.AccessKey == key, "Config.AccessKey %r" % c.AccessKey
    if rpc == "Exchange":
        ex = ch.unary_unary("/fbpipe.v1.Ingest/Exchange",
                            request_serializer=pb.ExchangeRequest.SerializeToString,
                            response_deserializer=pb.ExchangeResponse.FromString)
        r = ex(pb.ExchangeRequest(access_key=key, agent_id="py-auth"), metadata=md, timeout=10)
        return r.access_key == key, "ExchangeResponse.access_key %r" % r.access_key
    body = json.dumps({"authf": mark})
    if rpc == "SendEvent":
        send = ch.stream_unary("/api.EventService/SendEvent",
                               request_serializer=api_pb2.Event.SerializeToString,
                               response_deserializer=api_pb2.EResponse.FromString)
        ev = api_pb2.Event(agent_id="py-auth", tag="t", message=body, AccessKey=key)
        r = send(iter([ev]), metadata=md, timeout=60)
        return r.status == api_pb2.SUCCESS, "EResponse %s" % api_pb2.EventCode.Name(r.status)
    # Stream: one batch sent at once (a refused stream must write nothing of
    # it), half-closed after its ack
    st = ch.stream_stream("/fbpipe.v1.Ingest/Stream",
                          request_serializer=pb.Batch.SerializeToString,
                          response_deserializer=pb.Ack.FromString)
    q = queue.Queue()
    q.put(pb.Batch(seq=1, tag="t", agent_id="py-auth",
                   records=[pb.BatchRecord(payload=body.encode())]))
    acks = []
    try:
        s = st(iter(q.get, None), metadata=md, timeout=60)
        for ack in s:
            acks.append(ack)
            q.put(None)
    finally:
        q.put(None)
    ok = len(acks) == 1 and acks[0].code == pb.OK
    return ok, "acks %r" % [(a.seq, a.code, a.detail) for a in acks]


for i, case in enumerate(CASES):
    name, server, md, key, code, words, kind = case[:7]
    per_rpc = case[7] if len(case) > 7 else {}
    left_out = case[8] if len(case) > 8 else []
    # the 1 MiB token may close its connection: a channel and a connection of
    # its own (channels share connections to one address unless told not to)
    ch = channels[server]
    if code == TOO_BIG_OR_CLOSED:
        ch = grpc.insecure_channel("127.0.0.1:%d" % cfg["ports"][server],
                                   options=[("grpc.use_local_subchannel_pool", 1)])
    for rpc in RPCS:
        if rpc in left_out:
            continue
        want, want_words, want_kind = per_rpc.get(rpc, (code, words, kind))
        mark = marker(server, i, rpc)
        what = "%s %s (%s)" % (server, rpc, name)
        try:
            ok, got = call(ch, rpc, md, key, mark)
            if want is not None:
                fails.append("%s: accepted, want %s" % (what, want))
                sent_refused.add(mark)  # it should not be in Kafka
            elif not ok:
                fails.append("%s: %s" % (what, got))
            elif rpc in ("SendEvent", "Stream"):
                sent_ok.add(mark)
            continue
        except grpc.RpcError as e:
            if rpc in ("SendEvent", "Stream"):
                sent_refused.add(mark)
            if want is None:
                fails.append("%s: refused: %s %s" % (what, e.code().name, e.details()))
                continue
            wants = want if isinstance(want, tuple) else (want,)
            if e.code() not in wants:
                fails.append("%s: status %s, want %s (%s)" %
                             (what, e.code().name, "/".join(w.name for w in wants), e.details()))
            missing = [w for w in want_words if w not in (e.details() or "")]
            if missing:
                fails.append("%s: message %r lacks %r" % (what, e.details(), missing))
            if want_kind is not None:
                counted[server][want_kind] += 1
    if ch is not channels[server]:
        ch.close()

# Kafka holds the events of every accepted call, and of no refused one
raw = subprocess.run(["kcat", "-b", cfg["brokers"], "-C", "-t", cfg["topic"], "-e", "-q",
                      "-f", "%s\n"], stdout=subprocess.PIPE, check=True, timeout=120).stdout
found = set(m.decode() for m in re.findall(rb"authf-[ABC]-[0-9]+-[A-Za-z]+", raw))
for m in sorted(sent_ok - found):
    fails.append("accepted, yet not in Kafka: %s" % m)
for m in sorted(found & sent_refused):
    fails.append("refused, yet in Kafka: %s" % m)
for m in sorted(found - sent_ok - sent_refused):
    fails.append("in Kafka, yet never sent as accepted: %s" % m)

for f in fails:
    print("auth_failures: FAIL:", f)
for server in sorted(channels):
    print("refusals %s:%s" % (server, "".join(" %s=%d" % kv for kv in
                                            sorted(counted[server].items()))))
print("auth_failures: %d cases through %s, %d events accepted and in Kafka, %d refused and not, "
      "%d failures" % (len(CASES), "/".join(RPCS), len(sent_ok), len(sent_refused), len(fails)))
sys.exit(1 if fails else 0)
