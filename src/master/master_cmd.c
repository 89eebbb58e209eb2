/*
 * master_cmd.c -- what the subcommands (fbpiped token, ledger, status)
 * share: one plain line per error on standard error, named by the
 * command; the command-line mistakes they refuse alike; and the metrics
 * zone of a running daemon, found beside its pid file.
 *
 * Commands only: the daemon never calls these. A value from the command
 * line is escaped before it is shown.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <getopt.h>

#include "common/conf.h"
#include "common/log.h"
#include "common/metrics.h"
#include "master/master.h"

#define CMD_SHOW_MAX 64 /* bytes of a command-line value shown in an error */

void
fb_cmd_err(const char *cmd, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "fbpiped %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int
fb_cmd_bad_option(const char *cmd, int c, char **argv, void (*usage)(FILE *))
{
    char shown[CMD_SHOW_MAX * 4 + 4];

    if (c == ':') {
        fb_cmd_err(cmd, "option %s needs a value", argv[optind - 1]);
    } else {
        if (optopt != 0)
            fb_log_show(shown, sizeof(shown), &(char){(char)optopt}, 1, 1);
        else
            fb_log_show(shown, sizeof(shown), argv[optind - 1], strlen(argv[optind - 1]),
                        CMD_SHOW_MAX);
        fb_cmd_err(cmd, "unknown option %s%s", optopt != 0 ? "-" : "", shown);
    }
    usage(stderr);
    return FB_EXIT_USAGE;
}

int
fb_cmd_no_operands(const char *cmd, int argc, char **argv, void (*usage)(FILE *))
{
    char shown[CMD_SHOW_MAX * 4 + 4];

    if (optind >= argc)
        return 0;
    fb_log_show(shown, sizeof(shown), argv[optind], strlen(argv[optind]), CMD_SHOW_MAX);
    fb_cmd_err(cmd, "unexpected argument \"%s\"", shown);
    usage(stderr);
    return FB_EXIT_USAGE;
}

fb_metrics_t *
fb_cmd_zone(const char *cmd, const char *conf_path, const char *pid_file, char *path,
            size_t cap, int *rc)
{
    fb_conf_t *conf = NULL;
    fb_metrics_t *m;

    if (pid_file == NULL) {
        if ((conf = fb_conf_load(conf_path)) == NULL) {
            fb_cmd_err(cmd, "%s: configuration refused (see above)", conf_path);
            *rc = FB_EXIT_CONFIG;
            return NULL;
        }
        pid_file = conf->pid_file;
    }
    *rc = FB_EXIT_FAILURE;
    if (fb_metrics_path(pid_file, path, cap) < 0) {
        fb_cmd_err(cmd, "pid file name too long: %s", pid_file);
        fb_conf_free(conf);
        return NULL;
    }
    if ((m = fb_metrics_open(path)) == NULL)
        fb_cmd_err(cmd, "no metrics zone of a running fbpiped at %s (beside the pid file %s; a "
                   "daemon started with -f and without -p keeps none)", path, pid_file);
    fb_conf_free(conf);
    return m;
}
