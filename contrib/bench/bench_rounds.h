/*
 * bench_rounds.h -- what every benchmark shares to report fairly: rounds
 * that alternate the sides (A/B/A/B...), min and median of each side's
 * rate and of the per-round ratio to the baseline, CPU seconds per
 * million events per process, and the load average. Prints figures and
 * `row:` lines for contrib/bench/run-all; never judges or asserts them.
 * Never used by fbpiped itself.
 */
#ifndef FB_BENCH_ROUNDS_H
#define FB_BENCH_ROUNDS_H

#include <sys/types.h>

#define BENCH_SIDES_MAX 4
#define BENCH_ROUNDS_MAX 32
#define BENCH_PROCS_MAX 24

/* one process's CPU seconds, as sampled at a round's start and end */
typedef struct bench_proc {
    pid_t pid;
    char name[32];
    double cpu; /* utime + stime, seconds */
} bench_proc_t;

typedef struct bench_procs {
    int n;
    bench_proc_t p[BENCH_PROCS_MAX];
} bench_procs_t;

typedef struct bench_side {
    char name[48];
    int rounds;
    double rate[BENCH_ROUNDS_MAX]; /* events/s */
    double events;                 /* over all rounds, for the CPU figures */
    int nproc;
    char proc[BENCH_PROCS_MAX][32];
    double cpu[BENCH_PROCS_MAX]; /* seconds over all rounds */
} bench_side_t;

typedef struct bench_run {
    char bench[32];  /* e.g. "produce-bench" */
    char config[64]; /* no spaces, e.g. "keys=100" */
    int nsides;      /* side 0 is the baseline of the ratios */
    bench_side_t side[BENCH_SIDES_MAX];
} bench_run_t;

/* FBPIPE_BENCH_ROUNDS: rounds per side (default 3; 1..BENCH_ROUNDS_MAX). */
int bench_rounds(void);
void bench_run_init(bench_run_t *r, const char *bench, const char *config, int nsides,
                    const char *const *names);
/* one round of a side: events in secs */
void bench_run_add(bench_run_t *r, int side, double events, double secs);
/* CPU seconds a process spent during a side's round (summed by name) */
void bench_run_cpu(bench_run_t *r, int side, const char *proc, double secs);
/* the CPU used between two samples, per process name, into a side */
void bench_run_cpu_diff(bench_run_t *r, int side, const bench_procs_t *before,
                        const bench_procs_t *after);
/* a table of min/median rates and ratios, CPU per million events per
 * process, and `row:` lines */
void bench_run_print(const bench_run_t *r);

/* CPU seconds of this process (all threads) and of its reaped children */
double bench_cpu_self(void);
double bench_cpu_children(void);
/* CPU seconds of a live process (/proc/PID/stat); -1 if gone */
double bench_cpu_pid(pid_t pid);
/* daemon and its children (from /proc/PID/task/PID/children), named by
 * the "started NAME (pid P)" lines of log when given, plus this process
 * as self_name; a sample of each one's CPU */
void bench_procs_sample(pid_t daemon, const char *log, const char *self_name,
                        bench_procs_t *out);

/* print "load average: ..." and a `row: load` line */
void bench_print_load(const char *bench, const char *when);
double bench_median(const double *v, int n);
double bench_min(const double *v, int n);

#endif /* FB_BENCH_ROUNDS_H */
