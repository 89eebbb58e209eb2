/*
 * proc.c -- signal dispositions of a child process: TERM and INT call
 * on_stop (which must only set a flag), HUP and USR1 are ignored until the
 * child handles them, SIGPIPE never kills; and the descriptor limit,
 * raised to the hard one. Never logs.
 */
#include <signal.h>
#include <string.h>
#include <sys/resource.h>

#include "common/proc.h"

/* fb_proc_raise_nofile -- see proc.h: a worker holds one descriptor per
 * connection, and the usual soft limit (1024) is far below what the hard
 * limit allows (systemd: 524288). */
int
fb_proc_raise_nofile(unsigned long long *before, unsigned long long *after)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return -1;
    *before = *after = (unsigned long long)rl.rlim_cur;
    if (rl.rlim_cur == rl.rlim_max)
        return 0;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
        return -1;
    *after = (unsigned long long)rl.rlim_cur;
    return 0;
}

/* fb_proc_child_signals -- install a child's signal dispositions. */
void
fb_proc_child_signals(void (*on_stop)(int))
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGHUP, SIG_IGN);
    signal(SIGUSR1, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
}
