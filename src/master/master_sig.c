/*
 * master_sig.c -- signal handlers of the master: each saves errno, sets a
 * flag, writes one byte to the self-pipe, restores errno. Nothing else:
 * no logging, no malloc, no waitpid in a handler. The main loop clears a
 * flag first, then acts.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "master/master.h"

volatile sig_atomic_t fb_sig_child, fb_sig_term, fb_sig_quick, fb_sig_hup, fb_sig_usr1;
static int self_pipe[2] = {-1, -1};

static void
on_signal(int sig)
{
    int saved = errno;
    char c = 0;

    switch (sig) {
    case SIGCHLD: fb_sig_child = 1; break;
    case SIGTERM: fb_sig_term = 1; break;
    case SIGINT:
    case SIGQUIT: fb_sig_quick = 1; break;
    case SIGHUP: fb_sig_hup = 1; break;
    case SIGUSR1: fb_sig_usr1 = 1; break;
    default: break;
    }
    if (write(self_pipe[1], &c, 1) < 0) {
        /* the pipe is full: the loop wakes anyway */
    }
    errno = saved;
}

/* fb_master_signals_init -- the self-pipe and the handlers. */
int
fb_master_signals_init(void)
{
    static const int sigs[] = {SIGCHLD, SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1};
    struct sigaction sa;

    if (pipe2(self_pipe, O_NONBLOCK | O_CLOEXEC) < 0) {
        fb_log_error("pipe2(self-pipe) failed");
        return -1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        if (sigaction(sigs[i], &sa, NULL) < 0) {
            fb_log_error("sigaction(%d) failed", sigs[i]);
            return -1;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

int
fb_master_signal_fd(void)
{
    return self_pipe[0];
}

/* fb_master_signals_read -- empty the self-pipe after waking. */
void
fb_master_signals_read(void)
{
    char buf[64];

    while (read(self_pipe[0], buf, sizeof(buf)) > 0)
        ;
}

/* fb_master_signals_reset_child -- in a new child: default handlers, no pipe. */
void
fb_master_signals_reset_child(void)
{
    static const int sigs[] = {SIGCHLD, SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1};

    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        signal(sigs[i], SIG_DFL);
    close(self_pipe[0]);
    close(self_pipe[1]);
    self_pipe[0] = self_pipe[1] = -1;
}
