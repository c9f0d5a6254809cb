/*
 * lcrun: start N ranks of a Laconic program on this host.
 *
 *   lcrun -n N [options] [--] cmd [args...]
 *
 * lcrun opens the rendezvous socket itself (127.0.0.1, ephemeral port unless
 * --port/--host say otherwise) and hands the listening descriptor to rank 0
 * through LC_COORD_FD, so there is no race for a port and no retry loop in
 * the ranks. Every rank gets LC_RANK, LC_WORLD_SIZE, LC_LOCAL_RANK, LC_COORD,
 * and a job key and id (LC_JOB_KEY, LC_JOB_ID: random per launch unless the
 * caller's environment already sets them, which is how several lcruns on
 * several hosts join one job; see --rank-offset).
 *
 * Supervision: lcrun sleeps in poll() on a signalfd (SIGCHLD, SIGINT,
 * SIGTERM, SIGHUP) and on the ranks' output pipes when --tag-output is on.
 * The first rank that exits non-zero or dies of a signal makes lcrun stop
 * the others (SIGTERM, then SIGKILL after a grace period) and exit with that
 * rank's code (128 + signal for a signal); with --keep-going a rank that
 * dies of a signal does not stop the others (they go on without it through
 * the coordinator below) and lcrun exits with the first non-zero code of a
 * rank that exited by itself. Ctrl-C is forwarded to every
 * rank; a second one kills them. --timeout stops the job and exits 124, as
 * timeout(1) does. Each rank runs in its own process group (so a rank that
 * is a shell script is stopped with its children) and dies with lcrun
 * (PR_SET_PDEATHSIG) if lcrun itself is killed.
 *
 * Membership: when lcrun hosts the rendezvous it also runs the job's
 * membership coordinator (lc_coord_create, a thread of lcrun) on a socket
 * it opens before starting the ranks, and tells them LC_COORDINATOR, unless
 * the environment already names one (a separate lccoord).
 */
#include "laconic.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LCRUN_MAX_RANKS 1024
#define LCRUN_MAX_ENV 256
#define LCRUN_GRACE_MS 2000

typedef struct {
    pid_t pid;
    int status; /* exit code, 128 + signal, or -1 while running */
    int out_fd; /* read end of stdout pipe, -1 when not tagging or at EOF */
    int err_fd;
    char *out_buf; /* partial line not yet printed */
    size_t out_len;
    char *err_buf;
    size_t err_len;
} lcrun_rank_t;

typedef struct {
    int nranks;
    int world_size; /* total ranks of the job (> nranks with --rank-offset) */
    int rank_offset;
    double timeout_s;
    int tag_output;
    int verbose;
    int keep_going; /* a rank killed by a signal does not stop the others */
    const char *host;
    int port;
    const char *coord; /* join an existing rendezvous instead of hosting it */
    char *env[LCRUN_MAX_ENV];
    int nenv;
    char **argv;
} lcrun_opts_t;

static void lcrun_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void lcrun_log(const char *fmt, ...)
{
    va_list ap;
    fputs("lcrun: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static double lcrun_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void lcrun_usage(FILE *f)
{
    fputs("usage: lcrun -n N [options] [--] cmd [args...]\n"
          "  -n, --np N            number of ranks to start on this host\n"
          "  -t, --timeout SEC     stop the job after SEC seconds and exit 124\n"
          "      --tag-output      prefix every output line with [rank]\n"
          "  -x, --env K=V         set K=V in every rank (repeatable)\n"
          "      --host ADDR       address the rendezvous listens on (default 127.0.0.1)\n"
          "      --port P          port of the rendezvous (default: any free port)\n"
          "      --coord HOST:PORT join a rendezvous hosted elsewhere (multi-host; needs\n"
          "                        --world-size, --rank-offset and a shared LC_JOB_KEY)\n"
          "      --world-size W    ranks in the whole job (default N)\n"
          "      --rank-offset R   rank of the first process started here (default 0)\n"
          "  -k, --keep-going      a rank killed by a signal does not stop the others\n"
          "                        (they may go on without it: lc_comm_shrink)\n"
          "  -v, --verbose         say what is started and how each rank ended\n"
          "  -h, --help            this text\n"
          "Exit status: 0 when every rank exits 0; else the first failing rank's code\n"
          "(128+signal if it was killed; with --keep-going ranks killed by a signal are\n"
          "not counted); 124 on --timeout; 130 on Ctrl-C.\n",
          f);
}

static int lcrun_parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) return -1;
    *out = (int)v;
    return 0;
}

static int lcrun_parse(int argc, char **argv, lcrun_opts_t *o)
{
    enum { OPT_TAG = 256, OPT_HOST, OPT_PORT, OPT_COORD, OPT_WORLD, OPT_OFFSET };
    static const struct option longopts[] = {
        { "np", required_argument, NULL, 'n' },
        { "timeout", required_argument, NULL, 't' },
        { "tag-output", no_argument, NULL, OPT_TAG },
        { "env", required_argument, NULL, 'x' },
        { "host", required_argument, NULL, OPT_HOST },
        { "port", required_argument, NULL, OPT_PORT },
        { "coord", required_argument, NULL, OPT_COORD },
        { "world-size", required_argument, NULL, OPT_WORLD },
        { "rank-offset", required_argument, NULL, OPT_OFFSET },
        { "verbose", no_argument, NULL, 'v' },
        { "keep-going", no_argument, NULL, 'k' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c;
    char *end;

    memset(o, 0, sizeof(*o));
    o->nranks = -1;
    o->host = "127.0.0.1";
    /* '+': stop at the first non-option, so the command's own flags are its own. */
    while ((c = getopt_long(argc, argv, "+n:t:x:vkh", longopts, NULL)) != -1) {
        switch (c) {
        case 'n':
            if (lcrun_parse_int(optarg, 1, LCRUN_MAX_RANKS, &o->nranks) != 0) {
                lcrun_log("-n wants a rank count in [1, %d], got '%s'", LCRUN_MAX_RANKS, optarg);
                return -1;
            }
            break;
        case 't':
            errno = 0;
            o->timeout_s = strtod(optarg, &end);
            if (errno != 0 || end == optarg || *end != '\0' || !(o->timeout_s > 0) ||
                o->timeout_s > 1e7) {
                lcrun_log("--timeout wants a number of seconds in (0, 1e7], got '%s'", optarg);
                return -1;
            }
            break;
        case OPT_TAG: o->tag_output = 1; break;
        case 'x':
            if (strchr(optarg, '=') == NULL || optarg[0] == '=') {
                lcrun_log("--env wants K=V, got '%s'", optarg);
                return -1;
            }
            if (o->nenv == LCRUN_MAX_ENV) {
                lcrun_log("too many --env options (max %d)", LCRUN_MAX_ENV);
                return -1;
            }
            o->env[o->nenv++] = optarg;
            break;
        case OPT_HOST: o->host = optarg; break;
        case OPT_PORT:
            if (lcrun_parse_int(optarg, 0, 65535, &o->port) != 0) {
                lcrun_log("--port wants a port number, got '%s'", optarg);
                return -1;
            }
            break;
        case OPT_COORD: o->coord = optarg; break;
        case OPT_WORLD:
            if (lcrun_parse_int(optarg, 1, 1 << 20, &o->world_size) != 0) {
                lcrun_log("--world-size wants a positive count, got '%s'", optarg);
                return -1;
            }
            break;
        case OPT_OFFSET:
            if (lcrun_parse_int(optarg, 0, 1 << 20, &o->rank_offset) != 0) {
                lcrun_log("--rank-offset wants a rank, got '%s'", optarg);
                return -1;
            }
            break;
        case 'v': o->verbose = 1; break;
        case 'k': o->keep_going = 1; break;
        case 'h': lcrun_usage(stdout); exit(0);
        default: return -1;
        }
    }
    if (o->nranks < 0) {
        lcrun_log("-n N is required");
        return -1;
    }
    if (optind >= argc) {
        lcrun_log("no command to run");
        return -1;
    }
    if (o->world_size == 0) o->world_size = o->rank_offset + o->nranks;
    if (o->rank_offset + o->nranks > o->world_size) {
        lcrun_log("ranks %d..%d do not fit in --world-size %d", o->rank_offset,
                  o->rank_offset + o->nranks - 1, o->world_size);
        return -1;
    }
    if (o->rank_offset > 0 && o->coord == NULL) {
        lcrun_log("--rank-offset > 0 needs --coord HOST:PORT of the host running rank 0");
        return -1;
    }
    if (o->coord != NULL && getenv("LC_JOB_KEY") == NULL) {
        lcrun_log("--coord needs the job's LC_JOB_KEY in the environment (the same on every "
                  "host)");
        return -1;
    }
    o->argv = argv + optind;
    return 0;
}

/* Listening socket for the rendezvous; *coord receives "host:port". */
static int lcrun_listen(const char *host, int port, char *coord, size_t coord_len)
{
    struct addrinfo hints, *res = NULL;
    char portstr[16], hbuf[NI_MAXHOST];
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    int fd, one = 1, rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    snprintf(portstr, sizeof(portstr), "%d", port);
    rc = getaddrinfo(host, portstr, &hints, &res);
    if (rc != 0) {
        lcrun_log("cannot resolve --host %s: %s", host, gai_strerror(rc));
        return -1;
    }
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 1024) != 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
        lcrun_log("cannot listen on %s:%d: %s", host, port, strerror(errno));
        if (fd >= 0) close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    getnameinfo((struct sockaddr *)&ss, sl, hbuf, sizeof(hbuf), portstr, sizeof(portstr),
                NI_NUMERICHOST | NI_NUMERICSERV);
    rc = snprintf(coord, coord_len, ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", hbuf, portstr);
    if (rc < 0 || (size_t)rc >= coord_len) {
        lcrun_log("rendezvous address too long");
        close(fd);
        return -1;
    }
    return fd;
}

static void lcrun_hex(char *out, size_t nbytes)
{
    unsigned char b[64];
    size_t got = 0;
    while (got < nbytes) {
        ssize_t n = getrandom(b + got, nbytes - got, 0);
        if (n < 0 && errno != EINTR) {
            /* getrandom cannot fail on Linux >= 3.17 short of EINTR; be safe anyway. */
            for (size_t i = got; i < nbytes; i++) b[i] = (unsigned char)(rand() ^ getpid());
            break;
        }
        if (n > 0) got += (size_t)n;
    }
    for (size_t i = 0; i < nbytes; i++) sprintf(out + 2 * i, "%02x", b[i]);
}

/* Child side of fork(): set up the environment and exec. Never returns. */
static void lcrun_exec_rank(const lcrun_opts_t *o, int local, int lfd, const char *coord,
                            sigset_t *oldmask, int out_w, int err_w)
{
    char buf[32];
    int rank = o->rank_offset + local;

    prctl(PR_SET_PDEATHSIG, SIGKILL);
    setpgid(0, 0);
    /* lcrun forwards SIGINT and SIGTERM itself: a rank must be able to get
     * them even when lcrun was started with them ignored (a background job). */
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    sigprocmask(SIG_SETMASK, oldmask, NULL);
    if (out_w >= 0) dup2(out_w, STDOUT_FILENO);
    if (err_w >= 0) dup2(err_w, STDERR_FILENO);
    snprintf(buf, sizeof(buf), "%d", rank);
    setenv("LC_RANK", buf, 1);
    snprintf(buf, sizeof(buf), "%d", o->world_size);
    setenv("LC_WORLD_SIZE", buf, 1);
    snprintf(buf, sizeof(buf), "%d", local);
    setenv("LC_LOCAL_RANK", buf, 1);
    setenv("LC_COORD", coord, 1);
    unsetenv("LC_COORD_FD");
    if (rank == 0 && lfd >= 0) {
        fcntl(lfd, F_SETFD, 0); /* keep it across exec for rank 0 only */
        snprintf(buf, sizeof(buf), "%d", lfd);
        setenv("LC_COORD_FD", buf, 1);
    }
    for (int i = 0; i < o->nenv; i++) putenv(o->env[i]);
    execvp(o->argv[0], o->argv);
    fprintf(stderr, "lcrun: rank %d: cannot run '%s': %s\n", rank, o->argv[0], strerror(errno));
    _exit(127);
}

/* Print complete lines of buf with a [rank] prefix; keep the tail. */
static void lcrun_flush_lines(FILE *f, int rank, char *buf, size_t *len, int final)
{
    size_t start = 0;
    for (size_t i = 0; i < *len; i++) {
        if (buf[i] == '\n') {
            fprintf(f, "[%d] %.*s\n", rank, (int)(i - start), buf + start);
            start = i + 1;
        }
    }
    if (final && start < *len) {
        fprintf(f, "[%d] %.*s\n", rank, (int)(*len - start), buf + start);
        start = *len;
    }
    memmove(buf, buf + start, *len - start);
    *len -= start;
    fflush(f);
}

/* Read what a rank wrote; returns 0 at EOF (and closes the fd). */
static int lcrun_drain(int *fd, char **buf, size_t *len, FILE *f, int rank)
{
    enum { CAP = 65536 };
    ssize_t n;
    if (*buf == NULL && (*buf = malloc(CAP)) == NULL) return 1;
    n = read(*fd, *buf + *len, CAP - *len);
    if (n < 0) return errno == EINTR || errno == EAGAIN ? 1 : (close(*fd), *fd = -1, 0);
    if (n == 0) {
        lcrun_flush_lines(f, rank, *buf, len, 1);
        close(*fd);
        *fd = -1;
        return 0;
    }
    *len += (size_t)n;
    /* A line longer than the buffer is printed in pieces. */
    lcrun_flush_lines(f, rank, *buf, len, *len == CAP);
    return 1;
}

static void lcrun_signal_all(lcrun_rank_t *r, int n, int sig)
{
    for (int i = 0; i < n; i++) {
        if (r[i].status == -1 && r[i].pid > 0) kill(-r[i].pid, sig);
    }
}

int main(int argc, char **argv)
{
    lcrun_opts_t o;
    lcrun_rank_t *ranks;
    sigset_t mask, oldmask;
    char coord[NI_MAXHOST + 16], key[65], jobid[17];
    lc_coord_t *coordinator = NULL;
    int lfd = -1, cfd = -1, sfd, running = 0, exit_code = 0, failed_rank = -1, interrupts = 0;
    double deadline, kill_at = 0;

    if (lcrun_parse(argc, argv, &o) != 0) {
        lcrun_usage(stderr);
        return 2;
    }
    ranks = calloc((size_t)o.nranks, sizeof(*ranks));
    if (ranks == NULL) {
        lcrun_log("out of memory");
        return 1;
    }
    if (o.coord != NULL) {
        snprintf(coord, sizeof(coord), "%s", o.coord);
    } else {
        lfd = lcrun_listen(o.host, o.port, coord, sizeof(coord));
        if (lfd < 0) return 1;
    }
    if (getenv("LC_JOB_KEY") == NULL) {
        lcrun_hex(key, 32);
        setenv("LC_JOB_KEY", key, 1);
    }
    if (getenv("LC_JOB_ID") == NULL) {
        lcrun_hex(jobid, 8);
        setenv("LC_JOB_ID", jobid, 1);
    }
    /* The coordinator's socket now, its thread once the ranks are forked
     * (a child of a threaded process should not run much before exec). */
    if (o.coord == NULL && getenv("LC_COORDINATOR") == NULL) {
        char caddr[NI_MAXHOST + 16];
        cfd = lcrun_listen(o.host, 0, caddr, sizeof(caddr));
        if (cfd < 0) return 1;
        setenv("LC_COORDINATOR", caddr, 1);
    }

    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGHUP);
    sigprocmask(SIG_BLOCK, &mask, &oldmask);
    sfd = signalfd(-1, &mask, SFD_CLOEXEC);
    if (sfd < 0) {
        lcrun_log("signalfd: %s", strerror(errno));
        return 1;
    }
    if (o.verbose)
        lcrun_log("starting ranks %d..%d of %d, rendezvous %s: %s ...", o.rank_offset,
                  o.rank_offset + o.nranks - 1, o.world_size, coord, o.argv[0]);
    fflush(stdout);
    fflush(stderr);
    for (int i = 0; i < o.nranks; i++) {
        int out_p[2] = { -1, -1 }, err_p[2] = { -1, -1 };
        ranks[i].status = -1;
        ranks[i].out_fd = ranks[i].err_fd = -1;
        if (o.tag_output && (pipe2(out_p, O_CLOEXEC) != 0 || pipe2(err_p, O_CLOEXEC) != 0)) {
            lcrun_log("pipe: %s", strerror(errno));
            lcrun_signal_all(ranks, i, SIGKILL);
            return 1;
        }
        ranks[i].pid = fork();
        if (ranks[i].pid == 0) lcrun_exec_rank(&o, i, lfd, coord, &oldmask, out_p[1], err_p[1]);
        if (ranks[i].pid < 0) {
            lcrun_log("fork: %s", strerror(errno));
            lcrun_signal_all(ranks, i, SIGKILL);
            return 1;
        }
        setpgid(ranks[i].pid, ranks[i].pid); /* also here: no race with kill(-pid) */
        if (o.tag_output) {
            close(out_p[1]);
            close(err_p[1]);
            ranks[i].out_fd = out_p[0];
            ranks[i].err_fd = err_p[0];
        }
        running++;
    }
    if (lfd >= 0) close(lfd);
    if (cfd >= 0) {
        const char *pto = getenv("LC_PEER_TIMEOUT_MS");
        lc_coord_params_t cp = {
            .field_mask = LC_COORD_PARAM_FIELD_LISTEN_FD | LC_COORD_PARAM_FIELD_JOB_KEY |
                          LC_COORD_PARAM_FIELD_JOB_ID,
            .listen_fd = cfd,
            .job_key = getenv("LC_JOB_KEY"),
            .job_id = getenv("LC_JOB_ID"),
        };
        if (pto != NULL && atoi(pto) > 0) {
            cp.field_mask |= LC_COORD_PARAM_FIELD_PEER_TIMEOUT_MS;
            cp.peer_timeout_ms = (uint32_t)atoi(pto);
        }
        if (lc_coord_create(&cp, &coordinator) != LC_OK)
            lcrun_log("the membership coordinator did not start: the ranks cannot change views");
    }

    deadline = o.timeout_s > 0 ? lcrun_now() + o.timeout_s : 0;
    for (;;) {
        struct pollfd pfd[1 + 2 * LCRUN_MAX_RANKS];
        int np = 0, wait_ms = -1, open_pipes = 0;
        double now = lcrun_now();

        pfd[np++] = (struct pollfd){ .fd = sfd, .events = POLLIN };
        for (int i = 0; i < o.nranks; i++) {
            if (ranks[i].out_fd >= 0)
                pfd[np++] = (struct pollfd){ .fd = ranks[i].out_fd, .events = POLLIN };
            if (ranks[i].err_fd >= 0)
                pfd[np++] = (struct pollfd){ .fd = ranks[i].err_fd, .events = POLLIN };
        }
        open_pipes = np - 1;
        if (running == 0 && open_pipes == 0) break;
        if (running == 0) {
            /* Every rank is reaped; only output a straggler may still hold
             * open is left to copy. Give it a second at most. */
            wait_ms = 1000;
        } else if (deadline > 0 && kill_at == 0) {
            if (now >= deadline) {
                lcrun_log("timeout after %g s: stopping %d rank(s)", o.timeout_s, running);
                exit_code = 124;
                lcrun_signal_all(ranks, o.nranks, SIGTERM);
                kill_at = now + LCRUN_GRACE_MS / 1000.0;
                continue;
            }
            wait_ms = (int)((deadline - now) * 1000) + 1;
        }
        if (kill_at > 0 && running > 0) {
            if (now >= kill_at) {
                lcrun_signal_all(ranks, o.nranks, SIGKILL);
                kill_at = now + 3600; /* SIGKILL cannot be ignored; just wait for the reaping */
            }
            int ms = (int)((kill_at - now) * 1000) + 1;
            if (wait_ms < 0 || ms < wait_ms) wait_ms = ms;
        }
        int rc = poll(pfd, (nfds_t)np, wait_ms);
        if (rc < 0 && errno != EINTR) {
            lcrun_log("poll: %s", strerror(errno));
            break;
        }
        if (rc == 0 && running == 0) break; /* ranks gone; a grandchild keeps a pipe: stop */
        for (int i = 0, k = 1; i < o.nranks; i++) {
            if (ranks[i].out_fd >= 0) {
                if (pfd[k].revents)
                    lcrun_drain(&ranks[i].out_fd, &ranks[i].out_buf, &ranks[i].out_len, stdout,
                                o.rank_offset + i);
                k++;
            }
            if (ranks[i].err_fd >= 0) {
                if (pfd[k].revents)
                    lcrun_drain(&ranks[i].err_fd, &ranks[i].err_buf, &ranks[i].err_len, stderr,
                                o.rank_offset + i);
                k++;
            }
        }
        if (!(pfd[0].revents & POLLIN)) continue;
        struct signalfd_siginfo si;
        if (read(sfd, &si, sizeof(si)) != (ssize_t)sizeof(si)) continue;
        if (si.ssi_signo == SIGINT || si.ssi_signo == SIGTERM || si.ssi_signo == SIGHUP) {
            interrupts++;
            if (exit_code == 0) exit_code = 128 + (int)si.ssi_signo;
            if (interrupts == 1) {
                lcrun_log("got %s: forwarding it to %d rank(s)", strsignal((int)si.ssi_signo),
                          running);
                lcrun_signal_all(ranks, o.nranks, (int)si.ssi_signo);
                kill_at = lcrun_now() + LCRUN_GRACE_MS / 1000.0;
            } else {
                lcrun_signal_all(ranks, o.nranks, SIGKILL);
            }
            continue;
        }
        /* SIGCHLD: reap everything that ended (signals coalesce). */
        for (;;) {
            int st;
            pid_t p = waitpid(-1, &st, WNOHANG);
            if (p <= 0) break;
            for (int i = 0; i < o.nranks; i++) {
                if (ranks[i].pid != p) continue;
                ranks[i].status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
                running--;
                kill(-p, SIGKILL); /* whatever the rank left behind in its group */
                if (o.verbose || (ranks[i].status != 0 && failed_rank < 0 && exit_code == 0)) {
                    if (WIFEXITED(st))
                        lcrun_log("rank %d (pid %d) exited with %d", o.rank_offset + i, (int)p,
                                  WEXITSTATUS(st));
                    else
                        lcrun_log("rank %d (pid %d) killed by %s", o.rank_offset + i, (int)p,
                                  strsignal(WTERMSIG(st)));
                }
                /* --keep-going: the others go on without a rank that was killed. */
                if (o.keep_going && !WIFEXITED(st)) continue;
                if (ranks[i].status != 0 && failed_rank < 0 && exit_code == 0) {
                    failed_rank = i;
                    exit_code = ranks[i].status;
                    if (running > 0) {
                        lcrun_log("stopping the other %d rank(s)", running);
                        lcrun_signal_all(ranks, o.nranks, SIGTERM);
                        kill_at = lcrun_now() + LCRUN_GRACE_MS / 1000.0;
                    }
                }
            }
        }
    }
    for (int i = 0; i < o.nranks; i++) {
        if (ranks[i].out_fd >= 0) close(ranks[i].out_fd);
        if (ranks[i].err_fd >= 0) close(ranks[i].err_fd);
        free(ranks[i].out_buf);
        free(ranks[i].err_buf);
    }
    free(ranks);
    close(sfd);
    lc_coord_destroy(coordinator);
    return exit_code;
}
