/*
 * main.c -- fbpiped's entry point: command line, configuration test.
 *
 * Parses the command line, loads and verifies the configuration, and
 * either reports the verdict (-t) or becomes the master; `fbpiped token`
 * is handed to master_token.c, `fbpiped replay` to router_replay.c,
 * `fbpiped status` to master_status.c and `fbpiped ledger` to
 * master_ledger.c before any of that. It must never
 * initialise gRPC or librdkafka: the processes that use them are forked.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#include "common/conf.h"
#include "common/log.h"
#include "master/master.h"
#include "producer/producer.h"
#include "router/router.h"

static void
usage(FILE *fp)
{
    fprintf(fp,
            "usage: fbpiped [-f] [-t] [-v] [-c FILE] [-p PIDFILE] [--print-events]\n"
            "               [--decrypt-events]\n"
            "       fbpiped token --access-key KEY [--expiry SECONDS] [--kid ID] [-c FILE]\n"
            "       fbpiped token --fingerprint TOKEN|-\n"
            "       fbpiped replay [--dry-run] [-c FILE] DEAD-LETTER-FILE...\n"
            "       fbpiped ledger [--json] [-c FILE] [-p PIDFILE]\n"
            "       fbpiped status [-c FILE] [-p PIDFILE]\n"
            "  -c FILE            configuration file (default %s/fbpipe.conf)\n"
            "  -f                 stay in the foreground, log to stderr\n"
            "  -t                 test the configuration and everything it names, then exit\n"
            "  -v                 more verbose logging (debug)\n"
            "  -p PIDFILE         pid file (overrides main.pid_file)\n"
            "  --print-events     print events in every role this host runs\n"
            "  --decrypt-events   decrypt events before printing and writing them\n"
            "  -V, --version      print the version and exit\n",
            FB_SYSCONFDIR);
}

int
main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"print-events", no_argument, NULL, 'P'},
        {"decrypt-events", no_argument, NULL, 'D'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *conf_path = FB_SYSCONFDIR "/fbpipe.conf";
    const char *pid_file = NULL;
    int test_only = 0, verbose = 0, foreground = 0, print_events = 0, decrypt_events = 0;
    fb_conf_t *conf;
    int c;

    fb_log_init("fbpiped", 0);
    fb_log_set_role("main");
    /* a subcommand, not a daemon option: it parses its own options */
    if (argc > 1 && strcmp(argv[1], "token") == 0)
        return fb_token_main(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "replay") == 0)
        return fb_replay_main(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "ledger") == 0)
        return fb_ledger_main(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "status") == 0)
        return fb_status_main(argc - 1, argv + 1);
    while ((c = getopt_long(argc, argv, "c:fhp:tvV", longopts, NULL)) != -1) {
        switch (c) {
        case 'c': conf_path = optarg; break;
        case 'f': foreground = 1; break;
        case 'p': pid_file = optarg; break;
        case 't': test_only = 1; break;
        case 'v': verbose = 1; break;
        case 'P': print_events = 1; break;
        case 'D': decrypt_events = 1; break;
        case 'V':
            printf("fbpiped %s\n", PACKAGE_VERSION);
            return FB_EXIT_OK;
        case 'h':
            usage(stdout);
            return FB_EXIT_OK;
        default:
            usage(stderr);
            return FB_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "fbpiped: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        return FB_EXIT_USAGE;
    }
    if (verbose)
        fb_log_set_level(FB_LOG_DEBUG);

    conf = fb_conf_load(conf_path);
    if (conf == NULL || fb_conf_verify(conf) < 0) {
        fb_log_errorx("%s: configuration test failed", conf_path);
        fb_conf_free(conf);
        return FB_EXIT_CONFIG;
    }
    if (!verbose)
        fb_log_set_level(conf->log_level);
    if (decrypt_events)
        conf->router_decrypt = true;
    if (print_events) {
        conf->ingester_print_events = true;
        conf->router_print_events = true;
    }
    if (test_only) {
        /* a client in this short-lived process only, never in the master */
        if (conf->ingester_enabled && fb_kafka_topic_probe(conf, 3000) < 0) {
            fb_log_errorx("%s: configuration test failed", conf_path);
            fb_conf_free(conf);
            return FB_EXIT_CONFIG;
        }
        printf("%s: configuration OK\n", conf_path);
        fb_conf_free(conf);
        return FB_EXIT_OK;
    }
    {
        fb_master_opts_t opts = {.conf_path = conf_path, .pid_file = pid_file,
                                 .foreground = foreground};
        return fb_master_run(conf, &opts);
    }
}
