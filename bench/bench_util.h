/* Helpers the benchmarks share: key pairs with allowlist entries, progress lines, medians, running
 * a baseline tool as a child with its stdout captured and its peak RSS taken from wait4's rusage,
 * and a process's peak RSS (VmHWM) from /proc. Single-threaded; nothing here is a test. */
#ifndef EF_BENCH_UTIL_H
#define EF_BENCH_UTIL_H

#include "errors.h"
#include "keys.h"

#include <stddef.h>
#include <sys/types.h>

/* Key pair NAME in dir (dir/NAME.key and .pub, as keys_generate writes them) and, when
 * allow_dir is not NULL, its public key also as allow_dir/NAME.pub (allow_dir must exist).
 * Returns 0 or EF_E*, with em filled. */
int bench_key_with_allow(const char *dir, const char *name, const char *allow_dir, keys_pair *kp,
                         ef_errmsg *em);

/* printf a progress line to stderr, prefixed with the seconds since the first call. */
/* A free loopback port: bind port 0, read it back, close. The coordinator binds it a moment
 * later; another process taking it in between would only make the run fail, loudly. -1 on
 * error. */
int bench_free_port(void);
/* mkdir `dir` (0700) with allow/{agents,clients,operators} under it, the coordinator's
 * --allow-dir; its path into allow[cap]. 0 or EF_EIO. */
int bench_fleet_dirs(const char *dir, char *allow, size_t cap);
void bench_progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Median of v[0..n) (v is reordered); 0 when n == 0. */
double bench_median(double *v, size_t n);

/* Called about every 100 ms while a child runs (e.g. to keep a link's heartbeats going). */
typedef void (*bench_idle_fn)(void *user);

/* Run argv (argv[0] a path) to completion with stdout captured into *out (malloc'd, NUL-ended,
 * caller frees) and stderr appended to stderr_path (NULL = discarded), calling idle (may be
 * NULL) while it runs. Sets *maxrss_kb to the child's peak resident set. Returns 0 when it
 * exited with status 0; EF_EIO when it could not start or failed (then *out is still set when
 * anything was read). */
int bench_run_capture(char *const argv[], const char *stderr_path, char **out, long *maxrss_kb,
                      bench_idle_fn idle, void *idle_user);

/* Start argv in the background with stdout and stderr appended to log_path. Returns its pid, or
 * -1. */
pid_t bench_spawn(char *const argv[], const char *log_path);
/* SIGTERM pid and reap it, SIGKILL after timeout_ms. Returns its wait status, or -1. */
int bench_stop(pid_t pid, int timeout_ms);
/* 1 while pid is alive (not yet exited), reaping it if it has exited. */
int bench_alive(pid_t pid);

/* VmHWM (peak resident set, kB) of a live process from /proc/PID/status, or -1. */
long bench_proc_hwm_kb(pid_t pid);

/* user + system CPU seconds a live process has used so far, or -1. */
double bench_proc_cpu_s(pid_t pid);

#endif
