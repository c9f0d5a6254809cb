/*
 * Socket helpers shared by the TCP rendezvous, the TCP transport and the
 * membership coordinator and its clients (ft/):
 * address parsing, bounded blocking I/O with poll (used only during set-up,
 * never on the data path), and socket options.
 */
#ifndef LC_CORE_SOCK_H
#define LC_CORE_SOCK_H

#include "core/bytes.h"
#include "laconic.h"

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

/* Parse "host:port" (host: IPv4 literal or a name resolved to IPv4). */
lc_status_t lc__sock_parse_addr(const char *hostport, struct sockaddr_in *addr);

/* A listening TCP socket on addr (port 0: ephemeral); writes the bound address. */
lc_status_t lc__sock_listen(struct sockaddr_in *addr, int backlog, int *fd_p);

/* Connect with retries until deadline_ns (CLOCK_MONOTONIC); LC_ERR_TIMEOUT when
 * the peer never accepted. The socket is left blocking. */
lc_status_t lc__sock_connect(const struct sockaddr_in *addr, uint64_t deadline_ns, int *fd_p);

/* Read / write exactly len bytes before deadline_ns, waiting in poll.
 * LC_ERR_TIMEOUT, LC_ERR_PEER_LOST (EOF or reset) or LC_ERR_SYSTEM. */
lc_status_t lc__sock_read_full(int fd, void *buf, size_t len, uint64_t deadline_ns);
lc_status_t lc__sock_write_full(int fd, const void *buf, size_t len, uint64_t deadline_ns);

lc_status_t lc__sock_set_nonblock(int fd, int on);

/* TCP_NODELAY: small messages leave at once (no Nagle wait on a delayed ACK). */
void lc__sock_set_nodelay(int fd);

#endif
