"""notify_check.py -- fbpiped speaks systemd's notification protocol, for
test-notify: with NOTIFY_SOCKET set to a datagram socket of this script,
fbpiped -f sends READY=1 (with MAINPID, its own pid) once it has started
its children, RELOADING=1 (with MONOTONIC_USEC) and READY=1 again around a
HUP, and STOPPING=1 on TERM; fbpiped exits 0.

usage: notify_check.py FBPIPED CONF LOG
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

fbpiped, conf, log = sys.argv[1:4]
d = tempfile.mkdtemp(prefix="fbpipe-notify.")
path = os.path.join(d, "notify")
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
s.settimeout(30)
env = dict(os.environ, NOTIFY_SOCKET=path)
p = subprocess.Popen([fbpiped, "-f", "-c", conf], env=env, stdout=open(log, "w"),
                     stderr=subprocess.STDOUT)
fails = []


def expect(want):
    try:
        msg = s.recv(4096).decode()
    except socket.timeout:
        fails.append("no %s within 30 s" % want)
        return {}
    fields = dict(l.split("=", 1) for l in msg.split("\n") if "=" in l)
    if fields.get(want.split("=")[0]) != "1":
        fails.append("got %r, want %s" % (msg, want))
    return fields


try:
    ready = expect("READY=1")
    if ready.get("MAINPID") != str(p.pid):
        fails.append("READY=1 with MAINPID %s, want %d" % (ready.get("MAINPID"), p.pid))
    children = subprocess.run(["pgrep", "-P", str(p.pid)], stdout=subprocess.PIPE,
                              text=True).stdout.split()
    if not children:
        fails.append("READY=1 before any child started")
    p.send_signal(signal.SIGHUP)
    reloading = expect("RELOADING=1")
    if not reloading.get("MONOTONIC_USEC", "").isdigit():
        fails.append("RELOADING=1 without MONOTONIC_USEC: %r" % reloading)
    expect("READY=1")
    p.send_signal(signal.SIGTERM)
    expect("STOPPING=1")
    rc = p.wait(timeout=60)
    if rc != 0:
        fails.append("exit status %d" % rc)
finally:
    if p.poll() is None:
        p.kill()
    os.unlink(path)
    os.rmdir(d)
for f in fails:
    print("notify_check: FAIL:", f)
if not fails:
    print("notify_check: READY=1 (MAINPID, after %d children started), RELOADING=1 and "
          "READY=1 around HUP, STOPPING=1 on TERM" % len(children))
sys.exit(1 if fails else 0)
