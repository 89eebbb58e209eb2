/*
 * bench_rounds.c -- the benchmarks' rounds, figures and CPU accounting
 * (bench_rounds.h). Reads /proc; never signals or waits for a process.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "bench_rounds.h"

static int cmp_double(const void *a, const void *b);
static double tv(struct timeval t);
static void name_from_log(const char *log, pid_t pid, char *name, size_t len);

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double
tv(struct timeval t)
{
    return (double)t.tv_sec + (double)t.tv_usec / 1e6;
}

/* bench_rounds -- FBPIPE_BENCH_ROUNDS, default 3. */
int
bench_rounds(void)
{
    const char *env = getenv("FBPIPE_BENCH_ROUNDS");
    int n = env ? atoi(env) : 3;

    if (n < 1)
        n = 1;
    if (n > BENCH_ROUNDS_MAX)
        n = BENCH_ROUNDS_MAX;
    return n;
}

/* bench_median -- the median of n values (the mean of the middle two). */
double
bench_median(const double *v, int n)
{
    double s[BENCH_ROUNDS_MAX];

    if (n <= 0)
        return 0;
    memcpy(s, v, (size_t)n * sizeof(*v));
    qsort(s, (size_t)n, sizeof(*s), cmp_double);
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* bench_min -- the least of n values. */
double
bench_min(const double *v, int n)
{
    double m = n > 0 ? v[0] : 0;

    for (int i = 1; i < n; i++)
        if (v[i] < m)
            m = v[i];
    return m;
}

/* bench_run_init -- an empty run of nsides named sides. */
void
bench_run_init(bench_run_t *r, const char *bench, const char *config, int nsides,
               const char *const *names)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->bench, sizeof(r->bench), "%s", bench);
    snprintf(r->config, sizeof(r->config), "%s", config);
    r->nsides = nsides > BENCH_SIDES_MAX ? BENCH_SIDES_MAX : nsides;
    for (int i = 0; i < r->nsides; i++)
        snprintf(r->side[i].name, sizeof(r->side[i].name), "%s", names[i]);
}

/* bench_run_add -- one round of a side. */
void
bench_run_add(bench_run_t *r, int side, double events, double secs)
{
    bench_side_t *s = &r->side[side];

    if (s->rounds < BENCH_ROUNDS_MAX && secs > 0)
        s->rate[s->rounds++] = events / secs;
    s->events += events;
}

/* bench_run_cpu -- secs of CPU by proc during a round of side. */
void
bench_run_cpu(bench_run_t *r, int side, const char *proc, double secs)
{
    bench_side_t *s = &r->side[side];
    int i;

    for (i = 0; i < s->nproc; i++)
        if (strcmp(s->proc[i], proc) == 0)
            break;
    if (i == s->nproc) {
        if (s->nproc == BENCH_PROCS_MAX)
            return;
        snprintf(s->proc[s->nproc++], sizeof(s->proc[0]), "%s", proc);
    }
    s->cpu[i] += secs;
}

/* bench_run_cpu_diff -- what each process sampled in both used between them. */
void
bench_run_cpu_diff(bench_run_t *r, int side, const bench_procs_t *before,
                   const bench_procs_t *after)
{
    for (int i = 0; i < after->n; i++)
        for (int j = 0; j < before->n; j++)
            if (after->p[i].pid == before->p[j].pid && after->p[i].cpu >= 0 &&
                before->p[j].cpu >= 0)
                bench_run_cpu(r, side, after->p[i].name, after->p[i].cpu - before->p[j].cpu);
}

/* bench_run_print -- the figures, for people, then for run-all. */
void
bench_run_print(const bench_run_t *r)
{
    const bench_side_t *b = &r->side[0];
    double q[BENCH_SIDES_MAX][BENCH_ROUNDS_MAX];
    int nq[BENCH_SIDES_MAX] = {0};

    for (int i = 1; i < r->nsides; i++) {
        const bench_side_t *s = &r->side[i];
        nq[i] = s->rounds < b->rounds ? s->rounds : b->rounds;
        for (int k = 0; k < nq[i]; k++)
            q[i][k] = s->rate[k] / b->rate[k]; /* the rounds side by side */
    }
    printf("  %-26s %6s %12s %12s  %s\n", r->config, "rounds", "min ev/s", "median ev/s",
           "ratio to the first: min, median");
    for (int i = 0; i < r->nsides; i++) {
        const bench_side_t *s = &r->side[i];
        printf("  %-26s %6d %12.0f %12.0f", s->name, s->rounds, bench_min(s->rate, s->rounds),
               bench_median(s->rate, s->rounds));
        if (i > 0)
            printf("  %.2f, %.2f", bench_min(q[i], nq[i]), bench_median(q[i], nq[i]));
        printf("\n  %-26s   ev/s per round:", "");
        for (int k = 0; k < s->rounds; k++)
            printf(" %.0f", s->rate[k]);
        if (i > 0) {
            printf("; ratio per round:");
            for (int k = 0; k < nq[i]; k++)
                printf(" %.2f", q[i][k]);
        }
        printf("\n");
        for (int p = 0; p < s->nproc && s->events > 0; p++)
            printf("  %-26s   CPU %-16s %8.2f s per million events\n", "", s->proc[p],
                   s->cpu[p] / (s->events / 1e6));
    }
    for (int i = 0; i < r->nsides; i++) {
        const bench_side_t *s = &r->side[i];
        printf("row:\trate\t%s\t%s\t%s\t%.0f\t%.0f\t%d\n", r->bench, r->config, s->name,
               bench_min(s->rate, s->rounds), bench_median(s->rate, s->rounds), s->rounds);
        if (i > 0)
            printf("row:\tratio\t%s\t%s\t%s\t%.3f\t%.3f\t%d\n", r->bench, r->config, s->name,
                   bench_min(q[i], nq[i]), bench_median(q[i], nq[i]), nq[i]);
        for (int p = 0; p < s->nproc && s->events > 0; p++)
            printf("row:\tcpu\t%s\t%s\t%s\t%s\t%.3f\n", r->bench, r->config, s->name,
                   s->proc[p], s->cpu[p] / (s->events / 1e6));
    }
    fflush(stdout);
}

double
bench_cpu_self(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return tv(ru.ru_utime) + tv(ru.ru_stime);
}

double
bench_cpu_children(void)
{
    struct rusage ru;

    getrusage(RUSAGE_CHILDREN, &ru);
    return tv(ru.ru_utime) + tv(ru.ru_stime);
}

/* bench_cpu_pid -- utime + stime of a live process, from /proc/PID/stat. */
double
bench_cpu_pid(pid_t pid)
{
    char path[64], buf[1024], *p;
    unsigned long long ut, st;
    size_t len;
    FILE *fp;

    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    fp = fopen(path, "r");
    if (fp == NULL)
        return -1;
    len = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[len] = '\0';
    p = strrchr(buf, ')'); /* the name may hold spaces */
    /* after the name: state ppid pgrp session tty tpgid flags minflt cminflt
     * majflt cmajflt utime stime */
    if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
                            &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* name_from_log -- NAME from the daemon's "started NAME (pid P)" line. */
static void
name_from_log(const char *log, pid_t pid, char *name, size_t len)
{
    char line[512], want[64];
    FILE *fp = log ? fopen(log, "r") : NULL;

    snprintf(name, len, "fbpiped-child");
    snprintf(want, sizeof(want), " (pid %ld)", (long)pid);
    while (fp != NULL && fgets(line, sizeof(line), fp) != NULL) {
        char *s = strstr(line, "started "), *e = strstr(line, want);
        if (s != NULL && e != NULL && e > s + 8) {
            snprintf(name, len, "%.*s", (int)(e - s - 8), s + 8);
            break;
        }
    }
    if (fp != NULL)
        fclose(fp);
}

/* bench_procs_sample -- the daemon, its children and this process. */
void
bench_procs_sample(pid_t daemon, const char *log, const char *self_name, bench_procs_t *out)
{
    char path[96];
    FILE *fp;
    long pid;

    out->n = 0;
    if (self_name != NULL) {
        out->p[0] = (bench_proc_t){.pid = getpid(), .cpu = bench_cpu_self()};
        snprintf(out->p[0].name, sizeof(out->p[0].name), "%s", self_name);
        out->n = 1;
    }
    if (daemon <= 0)
        return;
    out->p[out->n] = (bench_proc_t){.pid = daemon, .cpu = bench_cpu_pid(daemon)};
    snprintf(out->p[out->n].name, sizeof(out->p[0].name), "fbpiped-master");
    out->n++;
    snprintf(path, sizeof(path), "/proc/%ld/task/%ld/children", (long)daemon, (long)daemon);
    fp = fopen(path, "r");
    while (fp != NULL && out->n < BENCH_PROCS_MAX && fscanf(fp, "%ld", &pid) == 1) {
        bench_proc_t *p = &out->p[out->n++];
        p->pid = (pid_t)pid;
        p->cpu = bench_cpu_pid(p->pid);
        name_from_log(log, p->pid, p->name, sizeof(p->name));
    }
    if (fp != NULL)
        fclose(fp);
}

/* bench_print_load -- the load average now, for the reader to judge. */
void
bench_print_load(const char *bench, const char *when)
{
    double l[3] = {0, 0, 0};
    FILE *fp = fopen("/proc/loadavg", "r");

    if (fp == NULL || fscanf(fp, "%lf %lf %lf", &l[0], &l[1], &l[2]) != 3)
        l[0] = l[1] = l[2] = -1;
    if (fp != NULL)
        fclose(fp);
    printf("  load average %s: %.2f %.2f %.2f (1, 5, 15 min; %ld CPUs)\n", when, l[0], l[1],
           l[2], sysconf(_SC_NPROCESSORS_ONLN));
    printf("row:\tload\t%s\t%s\t%.2f\t%.2f\t%.2f\n", bench, when, l[0], l[1], l[2]);
    fflush(stdout);
}
