/*
 * bench_store.h -- the remote stores as router-bench sees them: how much
 * of a round's output an S3 bucket of s3-local (its filesystem back end)
 * or a set of OpenSearch indices holds, and making and removing them
 * between rounds. Talks to the stores straight (files, libcurl), never
 * through fbpiped or the router's clients, so that it judges them
 * without sharing their faults. Never used by fbpiped itself.
 */
#ifndef FB_BENCH_STORE_H
#define FB_BENCH_STORE_H

#include <stdint.h>
#include <sys/types.h>

/* bench_s3_bytes -- bytes of the objects ending in ".jsonl" under
 * data/bucket/ (s3-local keeps object a/b/c as the file data/bucket/a/b/c);
 * 0 while the bucket has none. */
uint64_t bench_s3_bytes(const char *data, const char *bucket);

/* bench_s3_remove -- the bucket and its objects, gone from data/; 0 or -1. */
int bench_s3_remove(const char *data, const char *bucket);

/* bench_os_prepare -- an index template giving indices named prefix*
 * one shard and no replica (a single node), and room for `indices`
 * shards besides those the node has (cluster.max_shards_per_node);
 * 0, or -1 with why in err. */
int bench_os_prepare(const char *url, const char *prefix, unsigned indices, char *err,
                     size_t errlen);

/* bench_os_count -- _refresh then _count of the indices prefix*: the
 * documents they hold, 0 when none exists yet, -1 on a failed request. */
long long bench_os_count(const char *url, const char *prefix);

/* bench_os_delete -- DELETE the indices prefix*; 0 or -1. */
int bench_os_delete(const char *url, const char *prefix);

/* bench_store_pid -- the pid in state/pid (s3-local and opensearch-local
 * write one), or 0 when state is NULL or it has none. */
pid_t bench_store_pid(const char *state);

#endif /* FB_BENCH_STORE_H */
