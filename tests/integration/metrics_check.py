"""metrics_check.py -- the metrics endpoint of a running fbpiped, for
test-metrics.

  metrics_check.py http PORT WORKERS TENANT...
      (a daemon running the ingester and the routers) /healthz 200 "ok"; /metrics 200 in text format 0.0.4, parsed with
      prometheus_client's parser: fbpipe_build_info, child starts by role
      (workers >= WORKERS), every tenant's seven stages and no _other,
      histograms cumulative with _count the +Inf bucket, HEAD without a
      body; /readyz agrees with the gauges it is made from (200 "ready"
      once a worker serves, Kafka is up and a router has a partition; 503
      naming what is not otherwise); /nope 404; POST and PUT 405 with
      Allow: GET, HEAD. Prints what /readyz said.
  metrics_check.py bounds PORT LIMIT TIMEOUT
      LIMIT idle connections are held, one more gets no answer; once they
      are closed a request is answered; an idle connection is closed by
      the server after TIMEOUT seconds.
  metrics_check.py value PORT SAMPLE [LABEL=VALUE...]
      prints the value of one sample ("none" when there is none).
  metrics_check.py ledger-json TENANT...
      standard input is `fbpiped ledger --json`: the tenants in order, each
      with every column, and the total their sum.
  metrics_check.py ledger-settled FBPIPED PIDFILE TENANT N [TENANT N...]
      within 60 s, `fbpiped ledger --json` says of each TENANT: N acked, in
      Kafka and written, at least N received, nothing refused, dead
      lettered or spooled, no gap.

  metrics_check.py routed PORT DIR PARTITIONS TENANT...
      within 30 s: each TENANT's bytes written equal the size of its
      files in DIR (DIR/TENANT.log and its rotations), its bytes received
      are more than none, and their sum is fbpipe_bytes_received_total;
      every partition 0..PARTITIONS-1 has a lag series, each 0 (one router
      holds them all and has read them to their ends), and the total lag
      is 0; the spool holds nothing.

FBPIPE_METRICS_READY=1: /readyz must come to 200 (the roles count).
"""
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time

from prometheus_client.parser import text_string_to_metric_families

STAGES = ["received", "acked", "refused", "in_kafka", "written", "dead_lettered", "spooled"]
ROLES = ["producer", "worker", "router", "metrics"]
fails = []


def check(ok, what):
    if not ok:
        fails.append(what)
    return ok


def request(port, method, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request(method, path)
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, dict(r.getheaders()), body.decode()


def scrape(port):
    status, headers, body = request(port, "GET", "/metrics")
    check(status == 200, f"/metrics: status {status}")
    check("version=0.0.4" in headers.get("Content-Type", ""),
          f"/metrics: Content-Type {headers.get('Content-Type')}")
    samples = {}
    families = {}
    for fam in text_string_to_metric_families(body):
        families[fam.name] = fam
        for s in fam.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return body, families, samples


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))))


def readiness_expected(samples):
    why = []
    if value(samples, "fbpipe_workers_serving") < 1:
        why.append("no worker is serving")
    if value(samples, "fbpipe_kafka_up") != 1:
        why.append("Kafka is not up (no broker answered the producer within 10 s)")
    if value(samples, "fbpipe_router_partitions_assigned") < 1:
        why.append("no router has a partition assigned")
    return why


def cmd_http(port, workers, tenants):
    status, _, body = request(port, "GET", "/healthz")
    check(status == 200 and body == "ok\n", f"/healthz: {status} {body!r}")

    body, families, samples = scrape(port)
    build = [s for s in families["fbpipe_build_info"].samples]
    check(len(build) == 1 and build[0].value == 1 and build[0].labels.get("version"),
          f"fbpipe_build_info: {build}")
    check(families["fbpipe_calls"].type == "counter", "fbpipe_calls_total is not a counter")
    for role in ROLES:
        v = value(samples, "fbpipe_child_starts_total", role=role)
        check(v is not None and v >= (workers if role == "worker" else 1),
              f"fbpipe_child_starts_total{{role={role}}} = {v}")
        check(value(samples, "fbpipe_child_exits_total", role=role, reason="crash") == 0,
              f"fbpipe_child_exits_total{{role={role},reason=crash}} is not 0")
    for t in tenants:
        for st in STAGES:
            check(value(samples, "fbpipe_tenant_events_total", tenant=t, stage=st) is not None,
                  f"no fbpipe_tenant_events_total{{tenant={t},stage={st}}}")
    others = [k for k in samples if dict(k[1]).get("tenant") == "_other"]
    check(not others, f"_other rendered though it counted nothing: {others}")
    check(families["fbpipe_events_refused"].type == "counter", "refusals are not a counter")
    reasons = {s.labels["reason"] for s in families["fbpipe_auth_refusals"].samples}
    check({"expired", "bad_signature", "unknown_key"} <= reasons and "ok" not in reasons,
          f"auth refusal reasons: {sorted(reasons)}")
    lanes = {s.labels["lane"] for s in families["fbpipe_ring_lane_size_bytes"].samples}
    check(len(lanes) >= workers, f"ring lanes: {sorted(lanes)}")
    for h in ("fbpipe_kafka_delivery_latency_seconds", "fbpipe_router_fsync_latency_seconds"):
        fam = families.get(h)
        if not check(fam is not None and fam.type == "histogram", f"{h}: not a histogram"):
            continue
        buckets = [s for s in fam.samples if s.name == h + "_bucket"]
        les = [s.labels["le"] for s in buckets]
        check(les[-1] == "+Inf" and len(les) == 12, f"{h}: buckets {les}")
        vals = [s.value for s in buckets]
        check(vals == sorted(vals), f"{h}: buckets not cumulative {vals}")
        check(value(samples, h + "_count") == vals[-1], f"{h}: _count is not the +Inf bucket")

    # contrib/grafana/fbpipe.json asks only for series that are served
    dash = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "contrib",
                        "grafana", "fbpipe.json")
    served = set(families) | {s.name for f in families.values() for s in f.samples}
    exprs = [t["expr"] for p in json.load(open(dash))["panels"] for t in p["targets"]]
    asked = {n for e in exprs for n in re.findall(r"\bfbpipe_[a-z_]+", e)}
    check(asked and asked <= served,
          f"the dashboard asks for series not served: {sorted(asked - served)}")

    status, headers, body = request(port, "HEAD", "/metrics")
    check(status == 200 and body == "", f"HEAD /metrics: {status}, {len(body)} bytes of body")

    # /readyz is made from the gauges: it must agree with a scrape taken
    # just before and just after it (retried while they move)
    deadline = time.time() + 15
    said = None
    while True:
        _, _, before = scrape(port)
        status, _, text = request(port, "GET", "/readyz")
        _, _, after = scrape(port)
        want = readiness_expected(before)
        if want != readiness_expected(after):
            if not check(time.time() < deadline, "the readiness gauges never held still"):
                break
            time.sleep(0.2)
            continue
        said = f"{status} {text.strip()}"
        if not want:
            check(status == 200 and text == "ready\n", f"/readyz with ready gauges: {said}")
            break
        if time.time() >= deadline:
            check(status == 503 and text == "not ready: " + "; ".join(want) + "\n",
                  f"/readyz: {said}, the gauges say: {want}")
            check(os.environ.get("FBPIPE_METRICS_READY") != "1",
                  f"/readyz never came to 200: {said}")
            break
        time.sleep(0.5)

    for method, path, want in (("GET", "/nope", 404), ("GET", "/metrics/x", 404),
                               ("POST", "/metrics", 405), ("PUT", "/healthz", 405)):
        status, headers, _ = request(port, method, path)
        check(status == want, f"{method} {path}: {status}, not {want}")
        if want == 405:
            check(headers.get("Allow") == "GET, HEAD", f"{method} {path}: Allow {headers}")
    return said


def cmd_bounds(port, limit, timeout):
    held = []
    for _ in range(limit):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        held.append(s)
    time.sleep(0.5)
    extra = socket.create_connection(("127.0.0.1", port), timeout=3)
    try:
        extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        got = extra.recv(100)
    except OSError:
        got = b""
    check(not got.startswith(b"HTTP/"), f"connection {limit + 1} was answered: {got[:40]!r}")
    extra.close()
    for s in held:
        s.close()
    answered = False
    for _ in range(20):
        try:
            answered = request(port, "GET", "/healthz")[0] == 200
        except OSError:
            pass
        if answered:
            break
        time.sleep(0.25)
    check(answered, "no answer once the held connections were closed")
    idle = socket.create_connection(("127.0.0.1", port), timeout=timeout + 5)
    t0 = time.time()
    try:
        got = idle.recv(100)
    except OSError:
        got = b""
    took = time.time() - t0
    check(got == b"" and timeout - 1 <= took <= timeout + 4,
          f"an idle connection: {got[:40]!r} after {took:.1f} s, not closed after {timeout} s")
    idle.close()


def cmd_ledger_json(tenants):
    doc = json.load(sys.stdin)
    cols = STAGES + ["not_yet_in_kafka", "not_yet_written"]
    names = [t["tenant"] for t in doc["tenants"]]
    check(names == tenants, f"ledger --json tenants: {names}")
    for t in doc["tenants"]:
        check(all(isinstance(t.get(c), int) for c in cols), f"ledger --json row: {t}")
    for c in STAGES:
        check(doc["total"][c] == sum(t[c] for t in doc["tenants"]), f"ledger --json total {c}")
    check(isinstance(doc.get("pid"), int) and isinstance(doc.get("started"), int),
          "ledger --json: pid, started")


def cmd_ledger_settled(fbpiped, pid_file, want):
    deadline = time.time() + 60
    rows = {}
    while time.time() < deadline:
        out = subprocess.run([fbpiped, "ledger", "--json", "-p", pid_file], check=True,
                             capture_output=True, text=True).stdout
        rows = {t["tenant"]: t for t in json.loads(out)["tenants"]}
        if all(rows.get(t, {}).get("written") == n for t, n in want.items()):
            break
        time.sleep(0.5)
    for t, n in want.items():
        r = rows.get(t)
        if not check(r is not None, f"ledger: no row {t}"):
            continue
        check(r["received"] >= n and r["acked"] == n and r["in_kafka"] == n and
              r["written"] == n, f"ledger {t}: not {n} acked, in Kafka and written: {r}")
        check(r["refused"] == r["dead_lettered"] == r["spooled"] == 0, f"ledger {t}: {r}")
        check(r["not_yet_in_kafka"] == 0 and r["not_yet_written"] == 0, f"ledger {t}: gaps {r}")


def cmd_routed(port, out_dir, partitions, tenants):
    deadline = time.time() + 30
    while True:
        fails.clear()
        _, families, samples = scrape(port)
        received = 0
        for t in tenants:
            size = sum(os.path.getsize(os.path.join(out_dir, f)) for f in os.listdir(out_dir)
                       if f == t + ".log" or f.startswith(t + ".log."))
            wrote = value(samples, "fbpipe_tenant_bytes_total", tenant=t, stage="written")
            got = value(samples, "fbpipe_tenant_bytes_total", tenant=t, stage="received")
            check(wrote == size, f"{t}: {wrote} bytes written by the metrics, {size} in its files")
            check(got is not None and (got > 0) == (size > 0), f"{t}: {got} bytes received")
            received += got or 0
        check(received == value(samples, "fbpipe_bytes_received_total"),
              f"the tenants' bytes received ({received}) are not the total's")
        lags = {s.labels["partition"]: s.value
                for s in families["fbpipe_router_partition_lag"].samples} \
            if "fbpipe_router_partition_lag" in families else {}
        check(lags == {str(p): 0 for p in range(partitions)}, f"partition lags {lags}")
        check(value(samples, "fbpipe_router_consumer_lag") == 0, "the total lag is not 0")
        check(value(samples, "fbpipe_router_spool_bytes") == 0 and
              value(samples, "fbpipe_router_spool_files") == 0, "the spool is not empty")
        if not fails or time.time() > deadline:
            return
        time.sleep(0.5)


def main():
    cmd = sys.argv[1]
    said = None
    if cmd == "http":
        said = cmd_http(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:])
    elif cmd == "bounds":
        cmd_bounds(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
    elif cmd == "value":
        _, _, samples = scrape(int(sys.argv[2]))
        labels = dict(a.split("=", 1) for a in sys.argv[4:])
        v = value(samples, sys.argv[3], **labels)
        print("none" if v is None else f"{v:g}")
        return 0 if not fails else 1
    elif cmd == "routed":
        cmd_routed(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5:])
    elif cmd == "ledger-json":
        cmd_ledger_json(sys.argv[2:])
    elif cmd == "ledger-settled":
        pairs = sys.argv[4:]
        cmd_ledger_settled(sys.argv[2], sys.argv[3],
                           {pairs[i]: int(pairs[i + 1]) for i in range(0, len(pairs), 2)})
    else:
        print(__doc__)
        return 64
    for f in fails:
        print(f"metrics_check {cmd}: FAIL: {f}")
    if not fails and said is not None:
        print(f"readyz {said}")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
