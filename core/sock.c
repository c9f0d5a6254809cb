/*
 * Socket helpers for set-up paths (rendezvous, connection handshakes). Every
 * wait is a poll() with a deadline, so a silent or slow peer costs at most
 * the configured timeout and never a hang.
 */
#include "core/sock.h"
#include "core/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

lc_status_t lc__sock_parse_addr(const char *hostport, struct sockaddr_in *addr)
{
    char host[256];
    const char *colon = hostport ? strrchr(hostport, ':') : NULL;
    char *end;
    long port;
    struct addrinfo hints, *res = NULL;

    if (colon == NULL || (size_t)(colon - hostport) >= sizeof(host) || colon == hostport) {
        lc_error("'%s' is not host:port", hostport ? hostport : "(null)");
        return LC_ERR_INVALID_ARG;
    }
    memcpy(host, hostport, (size_t)(colon - hostport));
    host[colon - hostport] = '\0';
    errno = 0;
    port = strtol(colon + 1, &end, 10);
    if (errno != 0 || *end != '\0' || port < 0 || port > 65535) {
        lc_error("'%s': bad port", hostport);
        return LC_ERR_INVALID_ARG;
    }
    memset(addr, 0, sizeof(*addr));
    addr->sin_family = AF_INET;
    addr->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &addr->sin_addr) == 1) return LC_OK;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, NULL, &hints, &res) != 0 || res == NULL) {
        lc_error("'%s': cannot resolve host '%s'", hostport, host);
        return LC_ERR_INVALID_ARG;
    }
    addr->sin_addr = ((struct sockaddr_in *)res->ai_addr)->sin_addr;
    freeaddrinfo(res);
    return LC_OK;
}

void lc__sock_set_nodelay(int fd)
{
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

lc_status_t lc__sock_set_nonblock(int fd, int on)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK)) != 0) {
        lc_error("fcntl(O_NONBLOCK): %s", strerror(errno));
        return LC_ERR_SYSTEM;
    }
    return LC_OK;
}

lc_status_t lc__sock_listen(struct sockaddr_in *addr, int backlog, int *fd_p)
{
    socklen_t len = sizeof(*addr);
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        lc_error("socket: %s", strerror(errno));
        return LC_ERR_SYSTEM;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)addr, sizeof(*addr)) != 0 || listen(fd, backlog) != 0 ||
        getsockname(fd, (struct sockaddr *)addr, &len) != 0) {
        char a[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &addr->sin_addr, a, sizeof(a));
        lc_error("listen on %s:%u: %s", a, ntohs(addr->sin_port), strerror(errno));
        close(fd);
        return LC_ERR_SYSTEM;
    }
    *fd_p = fd;
    return LC_OK;
}

static int lc__ms_left(uint64_t deadline_ns)
{
    uint64_t now = lc__now_ns();
    if (now >= deadline_ns) return 0;
    uint64_t ms = LC_DIV_UP(deadline_ns - now, 1000000ull);
    return ms > 1000000 ? 1000000 : (int)ms;
}

lc_status_t lc__sock_connect(const struct sockaddr_in *addr, uint64_t deadline_ns, int *fd_p)
{
    int delay_ms = 5;

    for (;;) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        int err = 0;
        if (fd < 0) {
            lc_error("socket: %s", strerror(errno));
            return LC_ERR_SYSTEM;
        }
        if (connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) != 0) {
            err = errno;
            if (err == EINPROGRESS) {
                struct pollfd p = { .fd = fd, .events = POLLOUT };
                socklen_t elen = sizeof(err);
                int r = poll(&p, 1, lc__ms_left(deadline_ns));
                err = ETIMEDOUT;
                if (r == 1) getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen);
            }
        }
        if (err == 0) {
            lc__sock_set_nonblock(fd, 0);
            *fd_p = fd;
            return LC_OK;
        }
        close(fd);
        if (lc__ms_left(deadline_ns) == 0) {
            char a[INET_ADDRSTRLEN];
            inet_ntop(AF_INET, &addr->sin_addr, a, sizeof(a));
            lc_error("connect to %s:%u: %s (gave up at the deadline)", a, ntohs(addr->sin_port),
                     strerror(err));
            return LC_ERR_TIMEOUT;
        }
        /* Not listening yet (it may start after us): back off and retry. */
        poll(NULL, 0, LC_MIN(delay_ms, lc__ms_left(deadline_ns)));
        delay_ms = LC_MIN(delay_ms * 2, 200);
    }
}

static lc_status_t lc__sock_io_full(int fd, void *buf, size_t len, uint64_t deadline_ns, int wr)
{
    uint8_t *p = buf;

    while (len > 0) {
        struct pollfd pfd = { .fd = fd, .events = wr ? POLLOUT : POLLIN };
        int r = poll(&pfd, 1, lc__ms_left(deadline_ns));
        if (r < 0 && errno == EINTR) continue;
        if (r == 0) return LC_ERR_TIMEOUT;
        if (r < 0) return LC_ERR_SYSTEM;
        ssize_t n =
            wr ? send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT) : recv(fd, p, len, MSG_DONTWAIT);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
        } else if (n == 0) {
            return LC_ERR_PEER_LOST;
        } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            return (errno == ECONNRESET || errno == EPIPE) ? LC_ERR_PEER_LOST : LC_ERR_SYSTEM;
        }
    }
    return LC_OK;
}

lc_status_t lc__sock_read_full(int fd, void *buf, size_t len, uint64_t deadline_ns)
{
    return lc__sock_io_full(fd, buf, len, deadline_ns, 0);
}

lc_status_t lc__sock_write_full(int fd, const void *buf, size_t len, uint64_t deadline_ns)
{
    return lc__sock_io_full(fd, (void *)buf, len, deadline_ns, 1);
}
