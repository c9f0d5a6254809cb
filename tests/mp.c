/*
 * Implementation of the multi-process harness (see mp.h). Rank 0 gets the
 * already-listening rendezvous socket through LC_COORD_FD, as under lcrun,
 * so there is no race for a free port.
 */
#include "mp.h"
#include "laconic.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

double lc_mp_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int lc_mp_fail(int rank, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    int n = snprintf(buf, sizeof(buf), "[test rank %d] ", rank);
    va_start(ap, fmt);
    vsnprintf(buf + n, sizeof(buf) - (size_t)n - 2, fmt, ap);
    va_end(ap);
    strcat(buf, "\n");
    fputs(buf, stderr);
    return 1;
}

uint64_t lc_mp_hash(const void *buf, size_t len)
{
    const unsigned char *p = buf;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

void *lc_mp_shared(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void lc_mp_shared_free(void *p, size_t bytes)
{
    if (p != NULL) munmap(p, bytes);
}

static int lc_mp_count_dir(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int n = 0;
    if (d == NULL) return -1;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.') n++;
    }
    closedir(d);
    return n;
}

int lc_mp_count_fds(void)
{
    return lc_mp_count_dir("/proc/self/fd") - 1; /* minus the DIR's own fd */
}

int lc_mp_count_threads(void)
{
    return lc_mp_count_dir("/proc/self/task");
}

static int lc_mp_listen(int *port_p)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd < 0) return -1;
    /* A coordinator started again at this address must be able to bind it
     * while the old one's connections linger (TIME_WAIT). */
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 128) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        close(fd);
        return -1;
    }
    *port_p = ntohs(a.sin_port);
    return fd;
}

int lc_mp_with_coordinator;

/* The coordinator's process: serve until killed. */
static void lc_mp_coordinator(int cfd, const char *key)
{
    lc_coord_params_t cp = {
        .field_mask = LC_COORD_PARAM_FIELD_LISTEN_FD | LC_COORD_PARAM_FIELD_JOB_KEY |
                      LC_COORD_PARAM_FIELD_JOB_ID,
        .listen_fd = cfd,
        .job_key = key,
        .job_id = key + 48,
    };
    lc_coord_t *c;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (lc_coord_create(&cp, &c) != LC_OK) _exit(1);
    for (;;) pause();
}

int lc_mp_run(int size, lc_mp_fn_t fn, void *arg, int timeout_s, const char *const *extra_env,
              lc_mp_result_t *result)
{
    pid_t cpid = -1;
    int cfd = -1, cport = 0;
    char caddr[64] = "", cpid_s[32] = "";
    pid_t pids[64];
    int status[64];
    int done = 0, failed = 0, port = 0, lfd;
    double deadline = lc_mp_now() + timeout_s;
    char coord[64], key[65];
    unsigned seed = (unsigned)getpid() ^ (unsigned)time(NULL);

    if (size < 1 || size > 64) return -1;
    lfd = lc_mp_listen(&port);
    if (lfd < 0) {
        perror("lc_mp_run: listen");
        return -1;
    }
    snprintf(coord, sizeof(coord), "127.0.0.1:%d", port);
    for (int i = 0; i < 64; i++) key[i] = "0123456789abcdef"[rand_r(&seed) % 16];
    key[64] = '\0';
    fflush(stdout);
    fflush(stderr);
    if (lc_mp_with_coordinator) {
        cfd = lc_mp_listen(&cport);
        if (cfd < 0) {
            close(lfd);
            return -1;
        }
        snprintf(caddr, sizeof(caddr), "127.0.0.1:%d", cport);
        cpid = fork();
        if (cpid == 0) {
            close(lfd);
            lc_mp_coordinator(cfd, key);
        }
        close(cfd);
        snprintf(cpid_s, sizeof(cpid_s), "%d", (int)cpid);
    }
    for (int r = 0; r < size; r++) {
        pids[r] = fork();
        if (pids[r] == 0) {
            char buf[32];
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            snprintf(buf, sizeof(buf), "%d", r);
            setenv("LC_RANK", buf, 1);
            snprintf(buf, sizeof(buf), "%d", size);
            setenv("LC_WORLD_SIZE", buf, 1);
            setenv("LC_COORD", coord, 1);
            setenv("LC_JOB_KEY", key, 0);
            setenv("LC_JOB_ID", key + 48, 0);
            if (cpid > 0) {
                setenv("LC_COORDINATOR", caddr, 1);
                setenv("LC_MP_COORD_PID", cpid_s, 1);
            }
            if (r == 0) {
                snprintf(buf, sizeof(buf), "%d", lfd);
                setenv("LC_COORD_FD", buf, 1);
            } else {
                close(lfd);
                unsetenv("LC_COORD_FD");
            }
            for (int i = 0; extra_env != NULL && extra_env[i] != NULL; i++)
                putenv((char *)extra_env[i]);
            _exit(fn(r, size, arg) == 0 ? 0 : 1);
        }
        status[r] = -1;
        if (pids[r] < 0) {
            perror("fork");
            for (int k = 0; k < r; k++) kill(pids[k], SIGKILL);
            for (int k = 0; k < r; k++) waitpid(pids[k], NULL, 0);
            close(lfd);
            return -1;
        }
    }
    close(lfd);
    if (result != NULL) memset(result, 0, sizeof(*result));
    while (done < size) {
        int st;
        pid_t p = waitpid(-1, &st, WNOHANG);
        if (p > 0) {
            for (int r = 0; r < size; r++) {
                if (pids[r] == p) {
                    status[r] = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
                    done++;
                }
            }
            continue;
        }
        if (lc_mp_now() > deadline) {
            fprintf(stderr, "lc_mp_run: timeout after %d s; killing ranks\n", timeout_s);
            if (result != NULL) result->timed_out = 1;
            for (int r = 0; r < size; r++) {
                if (status[r] == -1) kill(pids[r], SIGKILL);
            }
            for (int r = 0; r < size; r++) {
                if (status[r] == -1) {
                    waitpid(pids[r], NULL, 0);
                    status[r] = 128 + SIGKILL;
                    done++;
                }
            }
            break;
        }
        /* Sleep, don't spin: poll the children every 5 ms. */
        struct timespec ts = { 0, 5 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    if (cpid > 0) {
        kill(cpid, SIGKILL);
        waitpid(cpid, NULL, 0);
    }
    for (int r = 0; r < size; r++) {
        if (result != NULL) result->exit_code[r] = status[r];
        if (status[r] != 0) {
            failed = 1;
            if (result == NULL)
                fprintf(stderr, "lc_mp_run: rank %d exited with %d\n", r, status[r]);
        }
    }
    return failed ? 1 : 0;
}

int lc_mp_run_filtered(const char *group, const struct CMUnitTest *tests, size_t n,
                       const char *pattern, int (*setup)(void **), int (*teardown)(void **))
{
    if (pattern && strcmp(pattern, "--list") == 0) {
        /* One name a line: tests/CMakeLists.txt makes each a ctest entry. */
        for (size_t i = 0; i < n; i++) printf("%s\n", tests[i].name);
        return fflush(stdout) != 0;
    }
    struct CMUnitTest *sel = calloc(n ? n : 1, sizeof(*sel));
    size_t k = 0;
    if (!sel) return 1;
    for (size_t i = 0; i < n; i++)
        if (!pattern || fnmatch(pattern, tests[i].name, 0) == 0) sel[k++] = tests[i];
    if (k == 0) {
        fprintf(stderr, "%s: no test matches '%s'\n", group, pattern);
        free(sel);
        return 1;
    }
    int rc = _cmocka_run_group_tests(group, sel, k, setup, teardown);
    free(sel);
    return rc;
}
