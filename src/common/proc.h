/*
 * proc.h -- what every process of fbpiped sets up alike: a child's signal
 * dispositions, and the descriptor limit (raised once, in the master,
 * before any fork, so every child inherits it).
 */
#ifndef FB_PROC_H
#define FB_PROC_H

void fb_proc_child_signals(void (*on_stop)(int));

/* descriptors a process keeps for what is not a client's connection (the
 * ring, Kafka's sockets, logs, files): a worker serves about
 * RLIMIT_NOFILE - FB_NOFILE_RESERVE connections */
#define FB_NOFILE_RESERVE 64

/* A child's exit status for "what it needs is not there yet" (a router's
 * directory missing or not writable): not a crash and not a configuration
 * error; the master starts it again with back-off while the other roles
 * run (the statuses 3, 4 and 5 are the workers', in common/ring.h). */
#define FB_EXIT_NOT_READY 6

/* Raise RLIMIT_NOFILE's soft limit to its hard limit; *before and *after
 * are the soft limits (equal when nothing changed). 0, or -1 with errno. */
int fb_proc_raise_nofile(unsigned long long *before, unsigned long long *after);

#endif /* FB_PROC_H */
