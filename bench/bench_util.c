/* Implementation of bench_util.h on fork/exec/wait4 and /proc. */
#include "bench_util.h"

#include "clock.h"
#include "edgefleet.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

void bench_progress(const char *fmt, ...)
{
    static uint64_t t0; /* the run's start; set once, read-only afterwards */
    if (!t0)
        t0 = clock_mono_ns();
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "[bench +%6.1fs] %s\n", (double)(clock_mono_ns() - t0) / 1e9, line);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(double *v, size_t n)
{
    if (n == 0)
        return 0.0;
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

static void child_exec(char *const argv[], int out_fd, const char *stderr_path)
{
    dup2(out_fd, STDOUT_FILENO);
    int err = open(stderr_path ? stderr_path : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (err >= 0)
        dup2(err, STDERR_FILENO);
    execv(argv[0], argv);
    _exit(127);
}

/* Read fd to EOF into a growing buffer, calling idle whenever nothing came for 100 ms. */
static int read_all(int fd, char **out, bench_idle_fn idle, void *idle_user)
{
    size_t len = 0, cap = 1 << 16;
    char *buf = malloc(cap);
    if (!buf)
        return EF_ENOMEM;
    for (;;) {
        if (cap - len < 4096) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                return EF_ENOMEM;
            }
            buf = nb, cap *= 2;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (poll(&pfd, 1, 100) == 0) {
            if (idle)
                idle(idle_user);
            continue;
        }
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    *out = buf;
    return 0;
}

int bench_run_capture(char *const argv[], const char *stderr_path, char **out, long *maxrss_kb,
                      bench_idle_fn idle, void *idle_user)
{
    *out = NULL;
    *maxrss_kb = -1;
    int pipefd[2];
    if (pipe(pipefd) != 0)
        return EF_EIO;
    pid_t pid = fork();
    if (pid < 0) {
        close(pipefd[0]), close(pipefd[1]);
        return EF_EIO;
    }
    if (pid == 0) {
        close(pipefd[0]);
        child_exec(argv, pipefd[1], stderr_path);
    }
    close(pipefd[1]);
    int rc = read_all(pipefd[0], out, idle, idle_user);
    close(pipefd[0]);
    int status = 0;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) != pid)
        return EF_EIO;
    *maxrss_kb = ru.ru_maxrss; /* kB on Linux: this child only, not its siblings */
    if (rc != 0)
        return rc;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : EF_EIO;
}

long bench_proc_hwm_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

pid_t bench_spawn(char *const argv[], const char *log_path)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
    }
    execv(argv[0], argv);
    _exit(127);
}

int bench_stop(pid_t pid, int timeout_ms)
{
    int status;
    kill(pid, SIGTERM);
    for (int waited = 0; waited < timeout_ms; waited += 10) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            return status;
        usleep(10 * 1000);
    }
    kill(pid, SIGKILL);
    return waitpid(pid, &status, 0) == pid ? status : -1;
}

int bench_alive(pid_t pid)
{
    int status;
    return waitpid(pid, &status, WNOHANG) == 0;
}

double bench_proc_cpu_s(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* fields after the ")" that closes the command name: state is 3rd, utime 14th, stime 15th */
    const char *p = strrchr(buf, ')');
    unsigned long ut, st;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

int bench_key_with_allow(const char *dir, const char *name, const char *allow_dir, keys_pair *kp,
                         ef_errmsg *em)
{
    int rc = keys_generate(dir, name, kp, em);
    if (rc != 0 || !allow_dir)
        return rc;
    char pub[4400];
    if ((size_t)snprintf(pub, sizeof pub, "%s/%s.pub", allow_dir, name) >= sizeof pub)
        return errmsg_set(em, EF_EINVAL, "%s: path too long", allow_dir);
    FILE *f = fopen(pub, "w");
    if (!f)
        return errmsg_set(em, EF_EIO, "%s: cannot write", pub);
    fprintf(f, "%s\n", kp->public_z85);
    return fclose(f) == 0 ? 0 : errmsg_set(em, EF_EIO, "%s: cannot write", pub);
}

int bench_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

int bench_fleet_dirs(const char *dir, char *allow, size_t cap)
{
    snprintf(allow, cap, "%s/allow", dir);
    if (mkdir(dir, 0700) != 0 || mkdir(allow, 0700) != 0)
        return EF_EIO;
    static const char *const subs[] = {"agents", "clients", "operators"};
    for (int i = 0; i < 3; i++) {
        char sub[4400];
        snprintf(sub, sizeof sub, "%s/%s", allow, subs[i]);
        if (mkdir(sub, 0700) != 0)
            return EF_EIO;
    }
    return 0;
}
