#!/usr/bin/env python3
"""unit_sandbox.py -- run a command in the sandbox a systemd unit declares,
as far as it can be built without systemd, so that a test finds what the
unit's directives break before an operator does.

usage: unit_sandbox.py UNIT [--rw DIR]... [--drop-cap CAP]... -- COMMAND [ARG]...

Runs as root and execs COMMAND (its pid is this process's). Each DIR stands
for one of the unit's ReadWritePaths= / RuntimeDirectory= (a test's own
folders in place of /var/lib/fbpipe and /run/fbpipe). --drop-cap takes a
capability out of the unit's CapabilityBoundingSet= (to show it is needed).

Built from the [Service] section, the way systemd builds them:
  CapabilityBoundingSet=  bounding set (root's capabilities after exec)
  NoNewPrivileges=        PR_SET_NO_NEW_PRIVS
  UMask=
  ProtectSystem=strict    every mount read-only except /dev, /proc and DIRs
  ProtectKernelTunables=  /proc/sys and /sys read-only too
  PrivateDevices=         a /dev of null, zero, full, random, urandom, tty,
                          shm and the /dev/log link
  ProtectProc=, ProcSubset=  /proc mounted again with hidepid=, subset=
  RestrictAddressFamilies=, MemoryDenyWriteExecute=, RestrictNamespaces=,
  LockPersonality=, SystemCallArchitectures=native, SystemCallFilter=~ (a
  deny list; its groups as systemd-analyze syscall-filter lists them),
  SystemCallErrorNumber=  seccomp (libseccomp), with systemd 252's rules
The other directives are listed on stderr as not applied. Exit 77 when
this machine cannot build the sandbox (not root, no libseccomp, no mount
namespace); 2 on a directive it cannot read.
"""
import ctypes
import ctypes.util
import errno
import os
import subprocess
import sys
import tempfile

CAPS = ["chown", "dac_override", "dac_read_search", "fowner", "fsetid", "kill", "setgid",
        "setuid", "setpcap", "linux_immutable", "net_bind_service", "net_broadcast",
        "net_admin", "net_raw", "ipc_lock", "ipc_owner", "sys_module", "sys_rawio",
        "sys_chroot", "sys_ptrace", "sys_pacct", "sys_admin", "sys_boot", "sys_nice",
        "sys_resource", "sys_time", "sys_tty_config", "mknod", "lease", "audit_write",
        "audit_control", "setfcap", "mac_override", "mac_admin", "syslog", "wake_alarm",
        "block_suspend", "audit_read", "perfmon", "bpf", "checkpoint_restore"]
FAMILIES = {"AF_UNIX": 1, "AF_LOCAL": 1, "AF_INET": 2, "AF_INET6": 10, "AF_NETLINK": 16,
            "AF_PACKET": 17}
APPLIED = {"CapabilityBoundingSet", "NoNewPrivileges", "UMask", "ProtectSystem",
           "ProtectKernelTunables", "PrivateDevices", "ProtectProc", "ProcSubset",
           "RestrictAddressFamilies", "MemoryDenyWriteExecute", "RestrictNamespaces",
           "LockPersonality", "SystemCallArchitectures", "ReadWritePaths", "RuntimeDirectory",
           "SystemCallFilter", "SystemCallErrorNumber", "PrivateMounts"}
NOT_SANDBOX = {"Type", "PIDFile", "ExecStartPre", "ExecStart", "ExecReload", "KillMode",
               "TimeoutStopSec", "Restart", "RestartPreventExitStatus", "LimitNOFILE",
               "AmbientCapabilities"}

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_MOVE = 32, 1024, 2048, 4096, 8192
MS_REC, MS_PRIVATE, MS_RELATIME, MS_STRICTATIME = 16384, 1 << 18, 1 << 21, 1 << 24
CLONE_NEWNS = 0x00020000
NS_FLAGS = [0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000,
            0x40000000]  # mnt, cgroup, uts, ipc, user, pid, net
PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT = 24, 38, 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
SCMP_ACT_ALLOW, SCMP_ACT_KILL_PROCESS = 0x7FFF0000, 0x80000000
SCMP_CMP_NE, SCMP_CMP_EQ, SCMP_CMP_MASKED_EQ = 1, 4, 7
PROT_WRITE, PROT_EXEC, SHM_EXEC = 2, 4, 0o100000

libc = ctypes.CDLL(None, use_errno=True)


def die(msg, code=2):
    print("unit_sandbox: " + msg, file=sys.stderr)
    sys.exit(code)


def check(rc, what, code=1):
    if rc != 0:
        e = ctypes.get_errno()
        die("%s failed: %s" % (what, os.strerror(e)), code)


def check_mount(rc, what):
    """A mount this machine refuses (an old kernel, a container without the
    right): the sandbox cannot be built here, which is not the unit's fault."""
    check(rc, what, 77)


def scmp_errno(e):
    return 0x00050000 | (e & 0xFFFF)


class ScmpArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int),
                ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64)]


def read_unit(path):
    """[Service] settings: name -> list of values (an empty one resets)."""
    out, section = {}, None
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = line
                continue
            if section != "[Service]" or "=" not in line:
                continue
            k, v = line.split("=", 1)
            k, v = k.strip(), v.strip()
            if v == "":
                out[k] = []
            else:
                out.setdefault(k, []).append(v)
    return out


def yes(unit, key):
    v = unit.get(key, [])
    return bool(v) and v[-1].lower() in ("yes", "true", "on", "1")


def mount(src, target, fstype, flags, data):
    enc = lambda s: None if s is None else s.encode()
    return libc.mount(enc(src), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data))


def mounts():
    """(mount point, per-mount flags) of this namespace, parents first."""
    res = []
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            fields = line.split()
            point = fields[4].encode().decode("unicode_escape")
            opts = fields[5].split(",")
            flags = 0
            for name, bit in (("nosuid", MS_NOSUID), ("nodev", MS_NODEV), ("noexec", MS_NOEXEC),
                              ("noatime", MS_NOATIME), ("nodiratime", MS_NODIRATIME),
                              ("relatime", MS_RELATIME), ("strictatime", MS_STRICTATIME)):
                if name in opts:
                    flags |= bit
            res.append((point, flags))
    return res


def under(path, top):
    return path == top or path.startswith(top.rstrip("/") + "/")


def private_dev():
    """PrivateDevices=yes: the pseudo devices only, as systemd lays them out."""
    stage = tempfile.mkdtemp(prefix="unit-sandbox-dev.")
    check_mount(mount("tmpfs", stage, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755"),
                "mount(tmpfs)")
    for name in ("null", "zero", "full", "random", "urandom", "tty"):
        open(os.path.join(stage, name), "w").close()
        check_mount(mount("/dev/" + name, os.path.join(stage, name), None, MS_BIND, None),
                    "mount(--bind /dev/%s)" % name)
    os.mkdir(os.path.join(stage, "shm"))
    check_mount(mount("tmpfs", os.path.join(stage, "shm"), "tmpfs", MS_NOSUID | MS_NODEV,
                      "mode=1777"), "mount(tmpfs, shm)")
    for link, to in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                     ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2"),
                     ("log", "/run/systemd/journal/dev-log")):
        os.symlink(to, os.path.join(stage, link))
    check_mount(mount(stage, "/dev", None, MS_MOVE, None), "mount(--move /dev)")
    os.rmdir(stage)


def syscall_group(name, seen=None):
    """The system calls of a SystemCallFilter= group, nested ones too."""
    seen = set() if seen is None else seen
    if name in seen:
        return set()
    seen.add(name)
    try:
        out = subprocess.run(["systemd-analyze", "syscall-filter", name], check=True,
                             capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        die("SystemCallFilter: systemd-analyze syscall-filter %s failed" % name, 77)
    calls = set()
    for line in out.splitlines()[1:]:
        word = line.strip()
        if not word or word.startswith("#"):
            continue
        calls |= syscall_group(word, seen) if word.startswith("@") else {word}
    return calls


def seccomp(unit):
    name = ctypes.util.find_library("seccomp")
    if name is None:
        die("no libseccomp", 77)
    ls = ctypes.CDLL(name, use_errno=True)
    ls.seccomp_init.restype = ctypes.c_void_p
    ls.seccomp_init.argtypes = [ctypes.c_uint32]
    ls.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                          ctypes.c_uint, ctypes.POINTER(ScmpArgCmp)]
    ls.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    ls.seccomp_load.argtypes = [ctypes.c_void_p]
    # the default filter holds the native architecture only: another ABI's
    # system calls kill the process (SystemCallArchitectures=native)
    ctx = ls.seccomp_init(SCMP_ACT_ALLOW)
    if not ctx:
        die("seccomp_init failed", 77)

    def rule(action, call, *cmps):
        nr = ls.seccomp_syscall_resolve_name(call.encode())
        if nr < 0:
            return
        arr = (ScmpArgCmp * max(1, len(cmps)))(*[ScmpArgCmp(*c) for c in cmps])
        rc = ls.seccomp_rule_add_array(ctx, action, nr, len(cmps), arr)
        if rc != 0:
            die("seccomp_rule_add(%s) failed: %s" % (call, os.strerror(-rc)))

    fams = unit.get("RestrictAddressFamilies", [])
    if fams:
        allowed = set()
        for v in fams:
            for fam in v.split():
                if fam.startswith("~") or fam not in FAMILIES:
                    die("RestrictAddressFamilies: cannot apply %s" % fam)
                allowed.add(FAMILIES[fam])
        for af in range(0, 64):
            if af not in allowed:
                rule(scmp_errno(errno.EAFNOSUPPORT), "socket", (0, SCMP_CMP_EQ, af, 0))
    if yes(unit, "MemoryDenyWriteExecute"):
        wx = PROT_WRITE | PROT_EXEC
        rule(scmp_errno(errno.EPERM), "mmap", (2, SCMP_CMP_MASKED_EQ, wx, wx))
        rule(scmp_errno(errno.EPERM), "mprotect", (2, SCMP_CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC))
        rule(scmp_errno(errno.EPERM), "pkey_mprotect",
             (2, SCMP_CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC))
        rule(scmp_errno(errno.EPERM), "shmat", (2, SCMP_CMP_MASKED_EQ, SHM_EXEC, SHM_EXEC))
    if yes(unit, "RestrictNamespaces"):
        rule(scmp_errno(errno.ENOSYS), "clone3")  # its flags cannot be filtered
        rule(scmp_errno(errno.EPERM), "setns")
        for flag in NS_FLAGS:
            rule(scmp_errno(errno.EPERM), "unshare", (0, SCMP_CMP_MASKED_EQ, flag, flag))
            rule(scmp_errno(errno.EPERM), "clone", (0, SCMP_CMP_MASKED_EQ, flag, flag))
    if yes(unit, "LockPersonality"):
        persona = libc.personality(ctypes.c_ulong(0xFFFFFFFF))
        rule(scmp_errno(errno.EPERM), "personality", (0, SCMP_CMP_NE, persona, 0))
    deny = set()
    for v in unit.get("SystemCallFilter", []):
        if not v.startswith("~"):
            die("SystemCallFilter=%s: only a deny list (~...) is applied" % v)
        for word in v[1:].split():
            deny |= syscall_group(word) if word.startswith("@") else {word}
    if deny:
        action = SCMP_ACT_KILL_PROCESS
        if unit.get("SystemCallErrorNumber"):
            action = scmp_errno(getattr(errno, unit["SystemCallErrorNumber"][-1]))
        for call in sorted(deny):
            rule(action, call)
    rc = ls.seccomp_load(ctx)
    if rc != 0:
        die("seccomp_load failed: %s" % os.strerror(-rc), 77)


def main(argv):
    if "--" not in argv or len(argv) < 3:
        die(__doc__.split("\n\n")[1])
    cmd = argv[argv.index("--") + 1:]
    opts = argv[1:argv.index("--")]
    unit = read_unit(opts.pop(0))
    rw, drop = [], set()
    while opts:
        o = opts.pop(0)
        if o == "--rw" and opts:
            rw.append(os.path.realpath(opts.pop(0)))
        elif o == "--drop-cap" and opts:
            drop.add(opts.pop(0).lower().removeprefix("cap_"))
        else:
            die("unknown option %s" % o)
    if os.geteuid() != 0:
        die("needs root", 77)
    skipped = sorted(k for k in unit if k not in APPLIED and k not in NOT_SANDBOX)
    if skipped:
        print("unit_sandbox: not applied: %s" % " ".join(skipped), file=sys.stderr)

    if libc.unshare(CLONE_NEWNS) != 0:
        die("unshare(CLONE_NEWNS) failed: %s" % os.strerror(ctypes.get_errno()), 77)
    check_mount(mount(None, "/", None, MS_REC | MS_PRIVATE, None), "mount(--make-rprivate /)")
    for d in rw:
        check_mount(mount(d, d, None, MS_BIND | MS_REC, None), "mount(--bind %s)" % d)
    if yes(unit, "PrivateDevices"):
        private_dev()
    proc_opts = []
    if unit.get("ProtectProc"):
        proc_opts.append("hidepid=" + unit["ProtectProc"][-1])
    if unit.get("ProcSubset"):
        proc_opts.append("subset=" + unit["ProcSubset"][-1])
    if proc_opts:
        check_mount(mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                          ",".join(proc_opts)), "mount(proc, %s)" % ",".join(proc_opts))
    tunables = yes(unit, "ProtectKernelTunables")
    if tunables:
        check_mount(mount("/proc/sys", "/proc/sys", None, MS_BIND | MS_REC, None),
                    "mount(--bind /proc/sys)")
    strict = unit.get("ProtectSystem", [""])[-1]
    if strict not in ("", "strict"):
        die("ProtectSystem=%s: only strict is applied" % strict)
    if strict == "strict":
        for point, flags in mounts():
            if any(under(point, d) for d in rw):
                continue
            if under(point, "/dev") or (under(point, "/proc") and not under(point, "/proc/sys")):
                continue
            if (under(point, "/sys") or under(point, "/proc/sys")) and not tunables:
                continue
            if mount(None, point, None, MS_REMOUNT | MS_BIND | MS_RDONLY | flags, None) != 0:
                e = ctypes.get_errno()
                if e not in (errno.ENOENT, errno.EACCES):  # hidden by a later mount
                    die("remount %s read-only failed: %s" % (point, os.strerror(e)), 77)

    caps = set()
    for v in unit.get("CapabilityBoundingSet", []):
        for c in v.split():
            c = c.lower().removeprefix("cap_")
            if c.startswith("~") or c not in CAPS:
                die("CapabilityBoundingSet: cannot apply %s" % c)
            caps.add(c)
    if "CapabilityBoundingSet" in unit:
        caps -= drop
        with open("/proc/sys/kernel/cap_last_cap", encoding="ascii") as f:
            last = int(f.read())
        for n in range(last + 1):
            if n >= len(CAPS) or CAPS[n] not in caps:
                check(libc.prctl(PR_CAPBSET_DROP, n, 0, 0, 0), "PR_CAPBSET_DROP(%d)" % n)
        libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    if "UMask" in unit:
        os.umask(int(unit["UMask"][-1], 8))
    if yes(unit, "NoNewPrivileges"):
        check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "PR_SET_NO_NEW_PRIVS")
    seccomp(unit)
    os.execvp(cmd[0], cmd)


if __name__ == "__main__":
    main(sys.argv)
