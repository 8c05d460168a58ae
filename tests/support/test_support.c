/* Implementation of test_support.h. */
#include "test_support.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int ts_model_path(const char *file, char *out, size_t cap)
{
    const char *dir = getenv("EDGEFLEET_MODEL_DIR");
    if (!dir || !*dir)
        dir = "../shared/models";
    snprintf(out, cap, "%s/%s", dir, file);
    return access(out, R_OK) == 0 ? 0 : -1;
}

int ts_bin_path(const char *rel, char *out, size_t cap)
{
    const char *dir = getenv("EDGEFLEET_BIN_DIR");
    if (!dir || !*dir)
        dir = ".";
    snprintf(out, cap, "%s/%s", dir, rel);
    return access(out, X_OK) == 0 ? 0 : -1;
}

int ts_tempdir(char *out, size_t cap)
{
    const char *t = getenv("TMPDIR");
    snprintf(out, cap, "%s/edgefleet-test-XXXXXX", t && *t ? t : "/tmp");
    return mkdtemp(out) ? 0 : -1;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void ts_rmtree(const char *dir)
{
    if (dir && *dir)
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int ts_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

pid_t ts_spawn(char *const argv[], const char *log_path)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    if (log_path) {
        int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
            close(fd);
        }
    }
    execv(argv[0], argv);
    fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

void ts_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int ts_wait_exit(pid_t pid, int timeout_ms)
{
    if (pid <= 0)
        return -1;
    for (int waited = 0; waited <= timeout_ms; waited += 10) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return status;
        if (r < 0)
            return -1;
        ts_sleep_ms(10);
    }
    return -1;
}

int ts_kill_wait(pid_t pid, int sig, int timeout_ms)
{
    if (pid <= 0)
        return -1;
    kill(pid, sig);
    int st = ts_wait_exit(pid, timeout_ms);
    if (st == -1) {
        kill(pid, SIGKILL);
        st = ts_wait_exit(pid, 5000);
    }
    return st;
}

int ts_file_wait_for(const char *path, const char *needle, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 20) {
        FILE *f = fopen(path, "r");
        if (f) {
            char line[4096];
            while (fgets(line, sizeof line, f)) {
                if (strstr(line, needle)) {
                    fclose(f);
                    return 1;
                }
            }
            fclose(f);
        }
        ts_sleep_ms(20);
    }
    return 0;
}
