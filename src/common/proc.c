/*
 * proc.c -- signal dispositions of a child process: TERM and INT call
 * on_stop (which must only set a flag), HUP and USR1 are ignored until the
 * child handles them, SIGPIPE never kills. Never logs.
 */
#include <signal.h>
#include <string.h>

#include "common/proc.h"

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
