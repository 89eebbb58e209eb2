"""fault_check.py -- the fault audit's checker: proves, event by event,
what became of the events one phase of test-faults sent.

usage:
  fault_check.py mark MARK ROUTER_DIR TOPIC PARTITIONS -- KCAT_ARGS...
      remember where the per-key files and the topic's partitions end
      (JSON in MARK): a phase's events lie beyond.
  fault_check.py watch SAMPLES ROUTER_DIR KEY...
      every 0.25 s, append "TIME KEY SIZE" for each key's file; runs until
      killed (SIGTERM).
  fault_check.py row MARK LOAD_DIR ROUTER_DIR TOPIC PARTITIONS PREFIX FAULT
                 SCOPE FAULT_START FAULT_END SAMPLES LOAD_LOG SETTLE_S -- KCAT_ARGS...
      wait up to SETTLE_S seconds until every acknowledged event of the
      agents named PREFIX* is in the files, then print one TSV row:
        fault sent acked refused unanswered in_kafka written lost
        duplicates stall_s verdict why dup_native dup_original
      lost = acknowledged but in no file (must be 0); refused = events
      fbpiped refused for good although every one is valid (must be 0);
      unanswered = sent and never answered by the end of the phase;
      duplicates = lines in the files beyond one per event (dup_native and
      dup_original: of the agents on the native API, PREFIXn-*, and on the
      original API, PREFIXs-*; with FAULT_DEDUPE=yes, a native duplicate
      fails the row: router.dedupe is on); stall_s = the
      longest time a tenant the fault did not touch went without progress
      (SCOPE all: "-"; key:K: the other keys' files did not grow; pid:N:
      acknowledgements of the agents whose connection process N did not
      hold, from PREFIX.conns (ss -tnp at the fault) and PREFIX.agents
      ("AGENT ADDRESS" lines) beside LOAD_LOG, PREFIX.log). verdict PASS
      or FAIL (why says what failed).

Stdlib only. Reads the topic with kcat (KCAT_ARGS carry the broker and
its security settings) and the files as bytes (ROUTER_DIR: one dir, or
the dirs of several router hosts joined by ':'): payloads are
{"a":"AGENT","s":SEQ} in a Kafka record's value and in a line's message.
"""
import json
import os
import re
import subprocess
import sys
import time

STALL_MAX = float(os.environ.get("FAULT_STALL_MAX_S", "15"))


def files_of(router_dir):
    """Per-key output files: KEY.log and its rotations, by path. ROUTER_DIR
    may name the dirs of several router hosts, joined by ':'."""
    out = {}
    for d in router_dir.split(":"):
        try:
            names = os.listdir(d)
        except OSError:
            continue
        for n in names:
            if n.startswith(".") or ".log" not in n:
                continue
            out[os.path.join(d, n)] = os.path.join(d, n)
    return out


def size_of(path):
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def end_offsets(kcat, topic, parts):
    args = ["kcat", "-Q"] + kcat
    for p in range(parts):
        args += ["-t", "%s:%d:-1" % (topic, p)]
    out = subprocess.run(args, capture_output=True, text=True, timeout=60).stdout
    offs = {}
    for m in re.finditer(r"\[(\d+)\]\s+offset\s+(-?\d+)", out):
        offs[int(m.group(1))] = int(m.group(2))
    if len(offs) != parts:
        sys.exit("fault_check: kcat -Q gave %r" % out)
    return offs


def cmd_mark(mark, router_dir, topic, parts, kcat):
    state = {"files": {n: size_of(p) for n, p in files_of(router_dir).items()},
             "offsets": end_offsets(kcat, topic, int(parts))}
    with open(mark, "w") as f:
        json.dump(state, f)


def cmd_watch(samples, router_dir, keys):
    with open(samples, "a") as f:
        while True:
            t = time.time()
            for k in keys:
                size = sum(size_of(os.path.join(d, k + ".log")) for d in router_dir.split(":"))
                f.write("%.3f %s %d\n" % (t, k, size))
            f.flush()
            time.sleep(0.25)


def scan(data, prefix):
    """(agent, seq) pairs of this phase in raw bytes, with repeats."""
    pat = re.compile(rb'"a":"(' + re.escape(prefix.encode()) + rb'[^"]*)","s":(\d+)\}')
    return [(m.group(1).decode(), int(m.group(2))) for m in pat.finditer(data)]


def written(mark, router_dir, prefix):
    pairs = []
    for n, p in files_of(router_dir).items():
        start = mark["files"].get(n, 0)
        try:
            with open(p, "rb") as f:
                if size_of(p) >= start:
                    f.seek(start)
                pairs += scan(f.read(), prefix)
        except OSError:
            pass
    return pairs


def in_kafka(mark, topic, kcat, prefix):
    found = set()
    for p, off in mark["offsets"].items():
        r = subprocess.run(["kcat", "-C", "-e", "-q", "-t", topic, "-p", str(p), "-o", str(off),
                            "-f", "%s\n"] + kcat, capture_output=True, timeout=600)
        found.update(scan(r.stdout, prefix))
    return found


def load_logs(load_dir, prefix):
    sent, acked, refused, ack_times = 0, set(), 0, {}
    for n in os.listdir(load_dir):
        if not n.startswith(prefix):
            continue
        agent, ext = n.rsplit(".", 1)
        path = os.path.join(load_dir, n)
        if ext == "sent":
            sent += int(open(path).read().strip() or 0)
        elif ext == "acked":
            for line in open(path):
                first, count, ms = (int(x) for x in line.split()[:3])
                acked.update((agent, s) for s in range(first, first + count))
                ack_times.setdefault(agent, []).append(ms / 1000.0)
        elif ext == "refused":
            for line in open(path):
                refused += int(line.split()[1])
    return sent, acked, refused, ack_times


def longest_gap(times, t0, t1):
    """Longest interval in [t0, t1] without a time from times."""
    pts = [t0] + sorted(t for t in times if t0 < t < t1) + [t1]
    return max(b - a for a, b in zip(pts, pts[1:]))


def stall(scope, t0, t1, samples, ack_times, load_log, prefix):
    if scope == "all":
        return None
    if scope.startswith("key:"):
        touched = scope[4:]
        grow = {}
        last = {}
        for line in open(samples):
            t, k, size = line.split()
            t, size = float(t), int(size)
            if k == touched or not (t0 <= t <= t1):
                continue
            if k not in last or size > last[k]:
                grow.setdefault(k, []).append(t)
            last[k] = size
        if not grow:
            return float("inf")
        return max(longest_gap(ts, t0, t1) for ts in grow.values())
    # pid:N -- one process failed (a worker, or the owner of a lane): the
    # agents whose connection it did not hold at the fault must flow on
    pid = scope[4:]
    conns, hosts = load_dir_file(load_log, ".conns"), load_dir_file(load_log, ".agents")
    held = set(re.findall(r"(\d+\.\d+\.\d+\.\d+)\]?:\d+\s+\S+\s+users:\(\(\"[^\"]*\",pid=" +
                          re.escape(pid) + r",", conns))
    calm = [a for a, h in (line.split() for line in hosts.splitlines() if line.strip())
            if h not in held]
    if not calm:
        return None
    return max(longest_gap(ack_times.get(a, []), t0, t1) for a in calm)


def load_dir_file(load_log, ext):
    """The file beside LOAD_LOG (PREFIX.log) named PREFIX + ext."""
    try:
        return open(load_log[:-len(".log")] + ext, errors="replace").read()
    except OSError:
        return ""


def cmd_row(a, kcat):
    (mark_f, load_dir, router_dir, topic, parts, prefix, fault, scope, t0, t1, samples,
     load_log, settle) = a
    mark = json.load(open(mark_f))
    mark["offsets"] = {int(k): v for k, v in mark["offsets"].items()}
    sent, acked, refused, ack_times = load_logs(load_dir, prefix)
    deadline = time.time() + float(settle)
    while True:
        lines = written(mark, router_dir, prefix)
        got = set(lines)
        if acked <= got or time.time() > deadline:
            break
        time.sleep(2)
    kafka = in_kafka(mark, topic, kcat, prefix)
    lost = len(acked - got)
    unanswered = sent - len(acked) - refused
    st = stall(scope, float(t0), float(t1), samples, ack_times, load_log, prefix)
    why = []
    if lost:
        why.append("%d acknowledged events in no file" % lost)
    if refused:
        why.append("%d valid events refused" % refused)
    if unanswered > 0:
        why.append("%d events never answered" % unanswered)
    if st is not None and st > STALL_MAX:
        why.append("an untouched tenant stalled %.1f s (bound %.0f s)" % (st, STALL_MAX))
    if sent == 0 or not acked:
        why.append("no event was acknowledged: the load did not run")
    dup = {}
    for api in "ns":
        mine = [x for x in lines if x[0].startswith(prefix + api + "-")]
        dup[api] = len(mine) - len(set(mine))
    if os.environ.get("FAULT_DEDUPE") == "yes" and dup["n"]:
        why.append("%d duplicate lines of native events with router.dedupe on" % dup["n"])
    row = [fault, sent, len(acked), refused, max(unanswered, 0), len(kafka), len(got), lost,
           len(lines) - len(got), "-" if st is None else "%.1f" % st,
           "FAIL" if why else "PASS", "; ".join(why) or "-", dup["n"], dup["s"]]
    print("\t".join(str(x) for x in row))


def main():
    argv = sys.argv[1:]
    kcat = []
    if "--" in argv:
        i = argv.index("--")
        argv, kcat = argv[:i], argv[i + 1:]
    if not argv:
        sys.exit(__doc__)
    cmd, args = argv[0], argv[1:]
    if cmd == "mark" and len(args) == 4:
        cmd_mark(*args, kcat)
    elif cmd == "watch" and len(args) >= 3:
        cmd_watch(args[0], args[1], args[2:])
    elif cmd == "row" and len(args) == 13:
        cmd_row(args, kcat)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
