"""partition_check.py -- test-partition-by's checker: where one tenant's
events went with kafka.partition_by = key_agent, and what the routers
wrote of them.

usage: partition_check.py LOAD_DIR ROUTER_DIR KEY TOPIC PARTITIONS SETTLE_S -- KCAT_ARGS...

Reads fault_load's AGENT.acked files (the events fbpiped acknowledged),
every partition of TOPIC with kcat (values are fbpipe.v1.Record; the
payload {"a":"AGENT","s":SEQ} is found in their bytes) and KEY's files
(KEY.log and its rotations) in ROUTER_DIR. Waits up to SETTLE_S seconds
for every acknowledged event to be in the files, then checks:
  - every line is whole JSON of KEY (no torn line);
  - every acknowledged event is in the files (lost = 0);
  - the tenant's events are on 2 partitions or more;
  - each agent's events are on one partition only, the one Kafka's murmur2
    of KEY, a 0 byte and the agent id gives (computed here on its own);
  - within it, each agent's events first appear in the order sent.
Prints one line of figures; exit 0 when all hold, 1 otherwise. Stdlib only.
"""
import glob
import json
import os
import re
import subprocess
import sys
import time

PAYLOAD = re.compile(rb'\{"a":"([^"]+)","s":([0-9]+)\}')


def murmur2(data):
    """Kafka's Utils.murmur2 (the Java client's default partitioner)."""
    m, r = 0x5BD1E995, 24
    h = (0x9747B28C ^ len(data)) & 0xFFFFFFFF
    n4 = len(data) // 4
    for i in range(n4):
        k = int.from_bytes(data[4 * i:4 * i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    rest = data[4 * n4:]
    if len(rest) >= 3:
        h ^= rest[2] << 16
    if len(rest) >= 2:
        h ^= rest[1] << 8
    if len(rest) >= 1:
        h ^= rest[0]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h


def acked_events(load_dir):
    acked = set()
    for path in glob.glob(os.path.join(load_dir, "*.acked")):
        agent = os.path.basename(path)[:-len(".acked")]
        for line in open(path):
            first, count = (int(x) for x in line.split()[:2])
            acked.update((agent, s) for s in range(first, first + count))
    return acked


def file_events(router_dir, key):
    got, torn, lines = set(), 0, 0
    for path in glob.glob(os.path.join(router_dir, key + ".log*")):
        with open(path, "rb") as f:
            data = f.read()
        if data and not data.endswith(b"\n"):
            torn += 1
        for raw in data.split(b"\n")[:-1] if data else []:
            lines += 1
            try:
                o = json.loads(raw)
                assert o["access_key"] == key
                m = PAYLOAD.search(raw)
                got.add((m.group(1).decode(), int(m.group(2))))
            except Exception:
                torn += 1
    return got, torn, lines


def main():
    load_dir, router_dir, key, topic, parts, settle = sys.argv[1:7]
    kcat = sys.argv[sys.argv.index("--") + 1:]
    parts, settle = int(parts), float(settle)
    acked = acked_events(load_dir)
    deadline = time.time() + settle
    while True:
        got, torn, lines = file_events(router_dir, key)
        if acked <= got or time.time() > deadline:
            break
        time.sleep(1)
    where, order_bad = {}, []
    for p in range(parts):
        out = subprocess.run(["kcat", "-C", "-q", "-e", "-t", topic, "-p", str(p), "-f", "%s\x1e"]
                             + kcat, capture_output=True, check=True).stdout
        for m in PAYLOAD.finditer(out):
            where.setdefault(m.group(1).decode(), set()).add(p)
        for agent, seqs in firsts(out).items():
            if seqs != sorted(seqs):
                order_bad.append(agent)
    used = set().union(*where.values()) if where else set()
    spread_bad = {a: sorted(ps) for a, ps in where.items() if len(ps) != 1}
    hash_bad = {a: (sorted(ps), (murmur2(key.encode() + b"\0" + a.encode()) & 0x7FFFFFFF) % parts)
                for a, ps in where.items()
                if ps != {(murmur2(key.encode() + b"\0" + a.encode()) & 0x7FFFFFFF) % parts}}
    lost = len(acked - got)
    print(f"acked={len(acked)} written={len(got)} lines={lines} lost={lost} torn={torn} "
          f"agents={len(where)} partitions_used={len(used)} of {parts} "
          f"agents_on_several={len(spread_bad)} off_hash={len(hash_bad)} "
          f"out_of_order={len(order_bad)}")
    ok = (acked and lost == 0 and torn == 0 and len(used) >= 2 and not spread_bad
          and not hash_bad and not order_bad)
    if not ok:
        for what, v in (("lost (first 10)", sorted(acked - got)[:10]), ("on several", spread_bad),
                        ("off the documented hash", hash_bad), ("out of order", order_bad)):
            if v:
                print(f"  {what}: {v}")
    return 0 if ok else 1


def firsts(out):
    """each agent's sequence numbers in the order they first appear"""
    order, met = {}, set()
    for m in PAYLOAD.finditer(out):
        k = (m.group(1).decode(), int(m.group(2)))
        if k not in met:
            met.add(k)
            order.setdefault(k[0], []).append(k[1])
    return order


if __name__ == "__main__":
    sys.exit(main())
