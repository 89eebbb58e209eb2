# lib.sh -- shared by the integration test scripts, their runner and
# contrib/check (sourced, not run; functions only).
# write_conf DIR [EXTRA-INI-LINES...]: a configuration for the test broker
# with a secret and an empty key database beside it.
write_conf() {
    local dir=$1
    shift
    mkdir -p "$dir"
    (umask 077 && head -c 48 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/jwt.secret")
    echo '{}' >"$dir/keys.json"
    chmod 640 "$dir/keys.json"
    {
        printf '[ingester]\nlisten = 127.0.0.1:0\n'
        printf '[kafka]\nbrokers = %s\npartitions = 4\n' "$FBPIPE_KAFKA_BROKERS"
        for line in "$@"; do printf '%s\n' "$line"; done
    } >"$dir/fbpipe.conf"
}

# kafka_local_running: the broker under test is kafka-local's (faults possible)
kafka_local_running() {
    "$FBPIPE_SRCDIR/contrib/kafka/kafka-local" status >/dev/null 2>&1
}

# kill_tree PID: it and all its descendants, children first
kill_tree() {
    local c
    for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do kill_tree "$c"; done
    kill "$1" 2>/dev/null || true
}
