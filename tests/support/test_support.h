/* Helpers shared by the tests: where the model and binaries are, temp dirs, child processes.
 * Tests that start processes kill them in teardown, also when an assertion failed. */
#ifndef EF_TEST_SUPPORT_H
#define EF_TEST_SUPPORT_H

#include <stddef.h>
#include <sys/types.h>

/* Path of a model file in $EDGEFLEET_MODEL_DIR (default ../shared/models), written into out.
 * Returns 0, or -1 when the file is not there. */
int ts_model_path(const char *file, char *out, size_t cap);

/* Path of a built binary under $EDGEFLEET_BIN_DIR (e.g. "agent/edgefleet-agent"). */
int ts_bin_path(const char *rel, char *out, size_t cap);

/* mkdtemp under $TMPDIR or /tmp; out receives the path. Returns 0 or -1. */
int ts_tempdir(char *out, size_t cap);
/* rm -rf the directory made by ts_tempdir (best effort). */
void ts_rmtree(const char *dir);

/* A free TCP port on 127.0.0.1 (bound then released; fine for tests on one box). */
int ts_free_port(void);

/* Start argv[0] with argv, stdout/stderr appended to log_path (NULL = inherit). Returns pid or -1.
 */
pid_t ts_spawn(char *const argv[], const char *log_path);
/* Send sig and wait up to timeout_ms; SIGKILL after that. Returns the exit status from waitpid
 * (or -1). Safe on pid <= 0. */
int ts_kill_wait(pid_t pid, int sig, int timeout_ms);
/* Wait up to timeout_ms for pid to exit by itself. Returns status, or -1 on timeout. */
int ts_wait_exit(pid_t pid, int timeout_ms);

/* Returns 1 if file at path contains needle (polls up to timeout_ms), else 0. */
int ts_file_wait_for(const char *path, const char *needle, int timeout_ms);

void ts_sleep_ms(int ms);

#endif
