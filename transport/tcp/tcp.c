/*
 * TCP transport: the data path.
 *
 * Every connection is non-blocking and driven by the progress thread. A
 * send is queued on its connection and written with writev (header and
 * payload in one call) as far as the socket takes it; EPOLLOUT is armed only
 * while a queue is stuck. A receive is queued on the connection its message
 * will arrive on (1 + index mod the collective's lanes: LC_TCP_CONNS, or
 * the tag's lanes when fewer; lc__tcp_lane), and the payload is read
 * straight into the caller's buffer: no staging copy.
 *
 * A frame whose receive is not posted yet is *parked*: the header is kept,
 * EPOLLIN is switched off, and the payload waits in the socket until the
 * receive arrives. This is TCP back-pressure instead of an unexpected-message
 * buffer, so memory stays bounded whatever the peers do. Connection 0 carries
 * the control messages of ft/ (heartbeats, abort and goodbye notices) and is
 * never parked: they always get through. What they mean is not TCP's
 * business; what is: a connection that fails or closes, a frame that does
 * not validate, and when a peer's bytes last arrived.
 *
 * Re-entrancy: completion callbacks run the schedule, which may post, cancel
 * or abort from inside them. The read and write loops re-read all state after
 * every callback, and an op is released before its callback runs.
 */
#include "core/crc32c.h"
#include "core/util.h"
#include "transport/tcp/tcp_priv.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

static void lc__tcp_peer_fail(lc_tcp_peer_t *peer, lc_status_t status, const char *why);
static void lc__tcp_conn_write(lc_tcp_conn_t *c);
static void lc__tcp_conn_read(lc_tcp_conn_t *c);
static void lc__tcp_peer_check_closed(lc_tcp_peer_t *peer);

/* ------------------------------------------------------------ ops */

static lc_tcp_op_t *lc__tcp_op_get(lc_tl_tcp_t *tl)
{
    lc_tcp_op_t *op = tl->free_ops;
    if (op != NULL) {
        tl->free_ops = op->next;
    } else {
        op = malloc(sizeof(*op));
        if (op == NULL) return NULL;
    }
    memset(op, 0, offsetof(lc_tcp_op_t, hdr));
    op->hdr_done = 0;
    op->zero_fill = 0;
    return op;
}

static void lc__tcp_op_put(lc_tl_tcp_t *tl, lc_tcp_op_t *op)
{
    op->next = tl->free_ops;
    tl->free_ops = op;
}

/* Release op, then run its callback (the callback may re-enter). */
static void lc__tcp_op_finish(lc_tl_tcp_t *tl, lc_tcp_op_t *op, lc_status_t st, size_t len)
{
    lc_tl_complete_cb_t cb = op->cb;
    void *arg = op->arg;
    lc__tcp_op_put(tl, op);
    if (cb != NULL) cb(arg, st, len);
}

static void lc__tcp_set_events(lc_tcp_conn_t *c, uint32_t ev)
{
    if (c->fd < 0 || c->events == ev) return;
    c->events = ev;
    lc__progress_fd_mod(c->peer->tl->progress, c->h, ev);
}

/* The stream has ended (or, for a peer that said goodbye, its control
 * connection failed): nothing more will be read or written on it. Close it,
 * so epoll stops reporting HUP for it, which would otherwise look like a
 * failure of a peer whose parked frames are still wanted. */
static void lc__tcp_conn_ended(lc_tcp_conn_t *c)
{
    c->eof = 1;
    if (c->fd < 0) return;
    lc__progress_fd_del(c->peer->tl->progress, c->h);
    c->h = NULL;
    close(c->fd);
    c->fd = -1;
}

/* A connection failed (error, reset or hang-up). On the control connection
 * of a peer that already said goodbye, between frames, that is only the
 * end of its stream (it closed with our heartbeat unread); anywhere else the
 * peer is lost. */
static void lc__tcp_conn_failed(lc_tcp_conn_t *c, const char *why)
{
    if (c->index == 0 && c->peer->said_bye && c->rx_state == LC_TCP_RX_HDR && c->rhdr_got == 0) {
        lc__tcp_conn_ended(c);
        lc__tcp_peer_check_closed(c->peer);
    } else {
        lc__tcp_peer_fail(c->peer, LC_ERR_PEER_LOST, why);
    }
}

static uint32_t lc__tcp_want_events(const lc_tcp_conn_t *c)
{
    uint32_t ev = 0;
    if (c->eof) return 0;
    int parked = c->index > 0 && c->rx_state == LC_TCP_RX_DECIDE && c->rq_head == NULL;
    /* A parked connection must not report readable (or half-closed, which
     * is level-triggered too) or the loop would wake for nothing; the
     * control connection, always read, notices a peer that went away. */
    if (!parked) ev |= EPOLLIN | EPOLLRDHUP;
    if (c->sq_head != NULL) ev |= EPOLLOUT;
    return ev;
}

/* ------------------------------------------------------------ sending */

static void lc__tcp_enqueue_send(lc_tcp_conn_t *c, lc_tcp_op_t *op)
{
    op->next = NULL;
    if (c->sq_tail != NULL)
        c->sq_tail->next = op;
    else
        c->sq_head = op;
    c->sq_tail = op;
}

static const uint8_t lc__tcp_zeros[16384];

static void lc__tcp_conn_write(lc_tcp_conn_t *c)
{
    lc_tl_tcp_t *tl = c->peer->tl;

    if (c->busy_tx || c->fd < 0) return;
    c->busy_tx = 1;
    while (c->sq_head != NULL && c->fd >= 0) {
        lc_tcp_op_t *op = c->sq_head;
        struct iovec iov[2];
        int n = 0;
        if (op->hdr_done < LC_TCP_HDR_LEN) {
            iov[n].iov_base = op->hdr + op->hdr_done;
            iov[n++].iov_len = LC_TCP_HDR_LEN - op->hdr_done;
        }
        if (op->done < op->len) {
            size_t rest = op->len - op->done;
            if (op->zero_fill) {
                iov[n].iov_base = (void *)lc__tcp_zeros;
                iov[n++].iov_len = LC_MIN(rest, sizeof(lc__tcp_zeros));
            } else {
                iov[n].iov_base = op->buf + op->done;
                iov[n++].iov_len = rest;
            }
        }
        ssize_t w = 0;
        if (n > 0) {
            struct msghdr m = { .msg_iov = iov, .msg_iovlen = (size_t)n };
            w = sendmsg(c->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) break;
                c->busy_tx = 0;
                lc__tcp_peer_fail(c->peer, LC_ERR_PEER_LOST, strerror(errno));
                return;
            }
        }
        size_t wr = (size_t)w;
        size_t h = LC_MIN(wr, LC_TCP_HDR_LEN - op->hdr_done);
        op->hdr_done += h;
        op->done += wr - h;
        tl->stats.wire_bytes_sent += wr;
        if (op->hdr_done < LC_TCP_HDR_LEN || op->done < op->len) continue;
        c->sq_head = op->next;
        if (c->sq_head == NULL) c->sq_tail = NULL;
        if (op->zero_fill) {
            lc__tcp_op_put(tl, op); /* cancelled: no callback */
        } else {
            if (c->index > 0) tl->stats.bytes_sent += op->len; /* payload, not control */
            lc__tcp_op_finish(tl, op, LC_OK, op->len);
        }
    }
    c->busy_tx = 0;
    lc__tcp_set_events(c, lc__tcp_want_events(c));
}

static lc_status_t lc__tcp_send_frame(lc_tcp_conn_t *c, const lc_tcp_frame_t *f, const void *buf,
                                      size_t len, lc_tl_complete_cb_t cb, void *arg,
                                      const lc_tl_tag_t *tag)
{
    lc_tl_tcp_t *tl = c->peer->tl;
    lc_tcp_op_t *op = lc__tcp_op_get(tl);

    if (op == NULL) return LC_ERR_NO_MEMORY;
    if (tag != NULL) op->tag = *tag;
    op->buf = (uint8_t *)buf;
    op->len = len;
    op->cb = cb;
    op->arg = arg;
    lc__tcp_frame_encode(f, op->hdr);
    lc__tcp_enqueue_send(c, op);
    lc__tcp_conn_write(c);
    return LC_OK;
}

/* The data connection of a message: striped by its index over the
 * collective's lanes (connection 0 carries control frames only). */
static int lc__tcp_lane(const lc_tl_tcp_t *tl, const lc_tl_tag_t *tag)
{
    uint32_t lanes = (uint32_t)tl->ndata;
    if (tag->lanes > 0 && tag->lanes < lanes) lanes = tag->lanes;
    return 1 + (int)(tag->index % lanes);
}

static lc_status_t lc__tcp_send(lc_tl_t *tl_, int peer, const lc_tl_tag_t *tag, const void *buf,
                                size_t length, lc_tl_complete_cb_t cb, void *arg)
{
    lc_tl_tcp_t *tl = (lc_tl_tcp_t *)tl_;
    lc_tcp_frame_t f = { 0 };
    lc_tcp_peer_t *p;

    if (peer < 0 || peer >= tl->size || peer == tl->rank || length > LC_TCP_MAX_PAYLOAD)
        return LC_ERR_INVALID_ARG;
    p = &tl->peers[peer];
    if (!p->alive || p->said_bye) return LC_ERR_PEER_LOST;
    f.type = LC_TCP_DATA;
    f.codec = tag->codec;
    f.epoch = tl->epoch;
    f.sig = tag->sig;
    f.seq = tag->seq;
    f.index = tag->index;
    f.length = (uint32_t)length;
    if (tl->checksum) {
        f.flags = LC_TCP_FLAG_CRC;
        f.crc = lc__crc32c(0, buf, length);
    }
    return lc__tcp_send_frame(&p->conns[lc__tcp_lane(tl, tag)], &f, buf, length, cb, arg, tag);
}

/* ------------------------------------------------------------ receiving */

static lc_status_t lc__tcp_recv(lc_tl_t *tl_, int peer, const lc_tl_tag_t *tag, void *buf,
                                size_t length, lc_tl_complete_cb_t cb, void *arg)
{
    lc_tl_tcp_t *tl = (lc_tl_tcp_t *)tl_;
    lc_tcp_conn_t *c;
    lc_tcp_op_t *op;

    if (peer < 0 || peer >= tl->size || peer == tl->rank) return LC_ERR_INVALID_ARG;
    if (!tl->peers[peer].alive) return LC_ERR_PEER_LOST;
    c = &tl->peers[peer].conns[lc__tcp_lane(tl, tag)];
    if (c->eof) return LC_ERR_PEER_LOST; /* it left and everything it sent here is read */
    op = lc__tcp_op_get(tl);
    if (op == NULL) return LC_ERR_NO_MEMORY;
    op->tag = *tag;
    op->buf = buf;
    op->len = length;
    op->cb = cb;
    op->arg = arg;
    op->next = NULL;
    if (c->rq_tail != NULL)
        c->rq_tail->next = op;
    else
        c->rq_head = op;
    c->rq_tail = op;
    /* A parked frame may be waiting for exactly this receive. */
    if (c->rx_state == LC_TCP_RX_DECIDE) lc__tcp_conn_read(c);
    return LC_OK;
}

static lc_tcp_op_t *lc__tcp_rq_pop(lc_tcp_conn_t *c)
{
    lc_tcp_op_t *op = c->rq_head;
    c->rq_head = op->next;
    if (c->rq_head == NULL) c->rq_tail = NULL;
    return op;
}

/*
 * A peer that closes its connections (it finished, or it died and the kernel
 * closed them) is lost only once everything it sent before closing has been
 * read: its connections are independent streams, and the end of the control
 * stream can arrive before the last data on another. So the peer is failed
 * when every connection has reached its end, or is parked on a frame nobody
 * has asked for.
 */
static void lc__tcp_peer_check_closed(lc_tcp_peer_t *peer)
{
    lc_tl_tcp_t *tl = peer->tl;

    if (!peer->alive) return;
    if (peer->said_bye) {
        /* It leaves on purpose, after collectives whose frames may still be
         * wanted (its goodbye named the last; ft/ knows which): a frame
         * parked for one of those is still wanted by a receive we have yet
         * to post. Only a receive waiting on a stream that has ended can never
         * complete. */
        int open = 0;
        for (int i = 1; i <= tl->ndata; i++) {
            lc_tcp_conn_t *c = &peer->conns[i];
            if (c->eof && c->rq_head != NULL) {
                lc__tcp_peer_fail(peer, LC_ERR_PEER_LOST, "left before sending what we wait for");
                return;
            }
            open += !c->eof;
        }
        if (open == 0 && peer->conns[0].eof)
            lc__tcp_peer_fail(peer, LC_ERR_PEER_LOST, "left; all it sent is read");
        return;
    }
    if (!peer->conns[0].eof) return;
    for (int i = 1; i <= tl->ndata; i++) {
        lc_tcp_conn_t *c = &peer->conns[i];
        int parked = c->rx_state == LC_TCP_RX_DECIDE && c->rq_head == NULL;
        if (!c->eof && !parked) return;
    }
    lc__tcp_peer_fail(peer, LC_ERR_PEER_LOST, "closed its connections");
}

/* A data frame's header is in c->fh: pick where its payload goes. Returns 0
 * to stop reading (parked). */
static int lc__tcp_decide(lc_tcp_conn_t *c)
{
    lc_tl_tcp_t *tl = c->peer->tl;
    const lc_tcp_frame_t *f = &c->fh;

    for (;;) {
        lc_tcp_op_t *head = c->rq_head;
        if (f->seq <= tl->cancel_wm || f->epoch != tl->epoch) {
            c->rx_state = LC_TCP_RX_DISCARD;
            return 1;
        }
        if (head == NULL) return 0; /* park */
        if (f->seq == head->tag.seq && f->index == head->tag.index) {
            if (f->sig != head->tag.sig || f->length > head->len) {
                lc_warn("rank %d sent message %u of collective %llu with %s", c->peer->rank,
                        f->index, (unsigned long long)f->seq,
                        f->sig != head->tag.sig ? "other arguments than ours"
                                                : "more bytes than expected");
                c->rx_state = LC_TCP_RX_DISCARD;
                lc__tcp_op_finish(tl, lc__tcp_rq_pop(c), LC_ERR_MISMATCH, 0);
                return 1;
            }
            c->rop = lc__tcp_rq_pop(c);
            c->rx_state = LC_TCP_RX_INTO_OP;
            return 1;
        }
        if (f->seq < head->tag.seq) {
            /* Left over from a collective we already finished: the peer sent
             * more than we expected, which only mismatched arguments cause. */
            lc_warn("rank %d sent an extra message for collective %llu; dropped", c->peer->rank,
                    (unsigned long long)f->seq);
            c->rx_state = LC_TCP_RX_DISCARD;
            return 1;
        }
        /* The peer skipped the message we wait for: our schedules differ.
         * Fail the receive; the frame stays for whoever it belongs to. */
        lc_warn("rank %d sent message %u of collective %llu where we expected message %u of "
                "collective %llu",
                c->peer->rank, f->index, (unsigned long long)f->seq, head->tag.index,
                (unsigned long long)head->tag.seq);
        lc__tcp_op_finish(tl, lc__tcp_rq_pop(c), LC_ERR_MISMATCH, 0);
        if (c->fd < 0) return 0;
    }
}

/* A whole control message is in c->ctrl: up to the control plane. */
static void lc__tcp_control_frame(lc_tcp_conn_t *c)
{
    lc_tl_tcp_t *tl = c->peer->tl;

    if (tl->event_cb != NULL) {
        lc_tl_event_t ev = {
            .type = LC_TL_EVENT_CTRL, .peer = c->peer->rank, .msg = c->ctrl, .len = c->fh.length
        };
        tl->event_cb(tl->event_arg, &ev);
    }
}

static void lc__tcp_conn_read(lc_tcp_conn_t *c)
{
    lc_tcp_peer_t *peer = c->peer;
    lc_tl_tcp_t *tl = peer->tl;

    if (c->busy_rx || c->fd < 0) return;
    c->busy_rx = 1;
    while (c->fd >= 0) {
        ssize_t n;
        if (c->rx_state == LC_TCP_RX_HDR) {
            n = recv(c->fd, c->rhdr + c->rhdr_got, LC_TCP_HDR_LEN - c->rhdr_got, MSG_DONTWAIT);
            if (n <= 0) goto io_end;
            peer->last_rx_ns = lc__now_ns();
            c->rhdr_got += (size_t)n;
            if (c->rhdr_got < LC_TCP_HDR_LEN) continue;
            c->rhdr_got = 0;
            lc__tcp_frame_decode(c->rhdr, &c->fh);
            const char *bad = lc__tcp_frame_check(&c->fh);
            if (bad == NULL && (c->index == 0) != (c->fh.type != LC_TCP_DATA))
                bad = c->index == 0 ? "data frame on the control connection"
                                    : "control frame on a data connection";
            if (bad != NULL) {
                c->busy_rx = 0;
                lc__tcp_peer_fail(peer, LC_ERR_CORRUPT, bad);
                return;
            }
            c->payload_done = 0;
            c->crc = 0;
            c->rx_state = c->index == 0 ? LC_TCP_RX_CTRL : LC_TCP_RX_DECIDE;
        }
        if (c->rx_state == LC_TCP_RX_DECIDE) {
            if (!lc__tcp_decide(c)) { /* parked */
                if (peer->conns[0].eof && !peer->said_bye) {
                    c->busy_rx = 0;
                    lc__tcp_peer_check_closed(peer);
                    return;
                }
                break;
            }
        }
        /* Payload: into the receive's buffer, or into the sink. A cancel()
         * from a callback may switch INTO_OP to DISCARD between reads. */
        size_t rest = c->fh.length - c->payload_done;
        if (rest > 0) {
            uint8_t *dst;
            size_t want;
            if (c->rx_state == LC_TCP_RX_INTO_OP) {
                dst = c->rop->buf + c->payload_done;
                want = rest;
            } else if (c->rx_state == LC_TCP_RX_CTRL) {
                dst = c->ctrl + c->payload_done; /* length <= LC_TCP_CTRL_MAX: checked */
                want = rest;
            } else {
                dst = tl->discard;
                want = LC_MIN(rest, LC_TCP_DISCARD_BYTES);
            }
            n = recv(c->fd, dst, want, MSG_DONTWAIT);
            if (n <= 0) goto io_end;
            peer->last_rx_ns = lc__now_ns();
            if (c->fh.flags & LC_TCP_FLAG_CRC) c->crc = lc__crc32c(c->crc, dst, (size_t)n);
            c->payload_done += (size_t)n;
            if (c->payload_done < c->fh.length) continue;
        }
        /* Whole frame in. */
        int ctrl = c->rx_state == LC_TCP_RX_CTRL;
        c->rx_state = LC_TCP_RX_HDR;
        if ((c->fh.flags & LC_TCP_FLAG_CRC) && c->crc != c->fh.crc) {
            lc_tcp_op_t *op = c->rop;
            c->rop = NULL;
            if (op != NULL) c->rx_state = LC_TCP_RX_HDR;
            c->busy_rx = 0;
            if (op != NULL) lc__tcp_op_finish(tl, op, LC_ERR_CORRUPT, 0);
            lc__tcp_peer_fail(peer, LC_ERR_CORRUPT, "payload CRC32C mismatch");
            return;
        }
        if (ctrl) {
            lc__tcp_control_frame(c); /* may fail the peer: the loop checks c->fd */
            continue;
        }
        if (c->rop != NULL) {
            lc_tcp_op_t *op = c->rop;
            c->rop = NULL;
            tl->stats.bytes_received += c->fh.length;
            lc__tcp_op_finish(tl, op, LC_OK, c->fh.length);
        }
        /* Back to epoll rather than probing for the next frame: with level
         * triggering it reports more data at once, and a latency-bound
         * exchange saves a recv() that would only say EAGAIN. */
        break;
    io_end:
        if (n == 0) {
            c->busy_rx = 0;
            if (c->rx_state != LC_TCP_RX_HDR || c->rhdr_got != 0) {
                lc__tcp_peer_fail(peer, LC_ERR_PEER_LOST, "connection closed mid-frame");
                return;
            }
            lc__tcp_conn_ended(c);
            lc__tcp_peer_check_closed(peer);
            return;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        if (errno == EINTR) continue;
        c->busy_rx = 0;
        lc__tcp_conn_failed(c, strerror(errno));
        return;
    }
    c->busy_rx = 0;
    lc__tcp_set_events(c, lc__tcp_want_events(c));
}

void lc__tcp_conn_event(void *arg, uint32_t events)
{
    lc_tcp_conn_t *c = arg;

    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) lc__tcp_conn_read(c);
    if (c->fd >= 0 && (events & EPOLLOUT)) lc__tcp_conn_write(c);
    if (c->fd >= 0 && (events & (EPOLLHUP | EPOLLERR)) && !(events & EPOLLIN))
        lc__tcp_conn_failed(c, "connection error");
}

/* ------------------------------------------------------------ peers */

static void lc__tcp_fail_list(lc_tl_tcp_t *tl, lc_tcp_op_t *op, lc_status_t st)
{
    while (op != NULL) {
        lc_tcp_op_t *next = op->next;
        if (op->zero_fill)
            lc__tcp_op_put(tl, op);
        else
            lc__tcp_op_finish(tl, op, st, 0);
        op = next;
    }
}

static void lc__tcp_peer_fail(lc_tcp_peer_t *peer, lc_status_t status, const char *why)
{
    lc_tl_tcp_t *tl = peer->tl;
    lc_tcp_op_t *pending = NULL;

    if (!peer->alive) return;
    peer->alive = 0;
    if (status == LC_ERR_CORRUPT)
        lc_error("rank %d sent a corrupt frame (%s); closing its connections", peer->rank, why);
    else if (peer->said_bye)
        lc_debug("rank %d left: %s", peer->rank, why);
    else
        lc_info("rank %d lost: %s", peer->rank, why);
    /* Detach everything first, then run callbacks on a consistent state. */
    for (int i = 0; i <= tl->ndata; i++) {
        lc_tcp_conn_t *c = &peer->conns[i];
        lc_tcp_op_t *lists[3] = { c->rop, c->rq_head, c->sq_head };
        if (c->rop != NULL) c->rop->next = NULL;
        for (int k = 0; k < 3; k++) {
            lc_tcp_op_t *op = lists[k];
            while (op != NULL) {
                lc_tcp_op_t *next = op->next;
                op->next = pending;
                pending = op;
                op = next;
            }
        }
        c->rop = NULL;
        c->rq_head = c->rq_tail = NULL;
        c->sq_head = c->sq_tail = NULL;
        if (c->fd >= 0) {
            lc__progress_fd_del(tl->progress, c->h);
            close(c->fd);
            c->fd = -1;
        }
    }
    lc__tcp_fail_list(tl, pending, status == LC_ERR_CORRUPT ? LC_ERR_CORRUPT : LC_ERR_PEER_LOST);
    if (tl->event_cb != NULL) {
        lc_tl_event_t ev = { .type = LC_TL_EVENT_PEER_LOST,
                             .peer = peer->rank,
                             .status = status == LC_ERR_CORRUPT ? LC_ERR_CORRUPT : LC_ERR_PEER_LOST,
                             .leaving = peer->said_bye };
        tl->event_cb(tl->event_arg, &ev);
    }
}

/* ------------------------------------------------------------ ops table */

static void lc__tcp_cancel_list(lc_tl_tcp_t *tl, lc_tcp_op_t **head, lc_tcp_op_t **tail,
                                uint64_t seq, int sends)
{
    lc_tcp_op_t *op = *head, *prev = NULL;

    *tail = NULL;
    while (op != NULL) {
        lc_tcp_op_t *next = op->next;
        int started = sends && (op->hdr_done > 0);
        if (op->tag.seq <= seq && op->cb != NULL && !started) {
            if (prev != NULL)
                prev->next = next;
            else
                *head = next;
            lc__tcp_op_put(tl, op);
        } else {
            if (op->tag.seq <= seq && started) {
                /* Already partly on the wire: finish the frame with zeros
                 * (the receiver drops it by its sequence number), no callback. */
                op->zero_fill = 1;
                op->cb = NULL;
            }
            prev = op;
            *tail = op;
        }
        op = next;
    }
}

static void lc__tcp_cancel(lc_tl_t *tl_, uint64_t seq)
{
    lc_tl_tcp_t *tl = (lc_tl_tcp_t *)tl_;

    if (seq > tl->cancel_wm) tl->cancel_wm = seq;
    for (int r = 0; r < tl->size; r++) {
        lc_tcp_peer_t *p = &tl->peers[r];
        if (r == tl->rank || !p->alive) continue;
        for (int i = 1; i <= tl->ndata; i++) {
            lc_tcp_conn_t *c = &p->conns[i];
            lc__tcp_cancel_list(tl, &c->sq_head, &c->sq_tail, seq, 1);
            lc__tcp_cancel_list(tl, &c->rq_head, &c->rq_tail, seq, 0);
            if (c->rop != NULL && c->rop->tag.seq <= seq) {
                lc__tcp_op_put(tl, c->rop);
                c->rop = NULL;
                c->rx_state = LC_TCP_RX_DISCARD;
            }
            /* A parked frame of a cancelled collective can now be drained. */
            if (c->rx_state == LC_TCP_RX_DECIDE && c->fh.seq <= seq)
                lc__tcp_conn_read(c);
            else
                lc__tcp_set_events(c, lc__tcp_want_events(c));
        }
    }
}

static lc_status_t lc__tcp_ctrl_send(lc_tl_t *tl_, int peer, const void *msg, size_t len,
                                     unsigned flags)
{
    lc_tl_tcp_t *tl = (lc_tl_tcp_t *)tl_;
    lc_tcp_frame_t f = { .type = LC_TCP_CTRL, .epoch = tl->epoch, .length = (uint32_t)len };
    lc_tcp_conn_t *c;
    lc_tcp_op_t *op;

    if (peer < 0 || peer >= tl->size || peer == tl->rank || len == 0 || len > LC_TCP_CTRL_MAX)
        return LC_ERR_INVALID_ARG;
    if (!tl->peers[peer].alive) return LC_ERR_PEER_LOST;
    c = &tl->peers[peer].conns[0];
    if (c->fd < 0) return LC_ERR_PEER_LOST;
    if ((flags & LC_TL_CTRL_IF_IDLE) && c->sq_head != NULL) return LC_INPROGRESS;
    op = lc__tcp_op_get(tl);
    if (op == NULL) return LC_ERR_NO_MEMORY;
    memcpy(op->ctrl, msg, len);
    op->buf = op->ctrl;
    op->len = len;
    if (tl->checksum) {
        f.flags = LC_TCP_FLAG_CRC;
        f.crc = lc__crc32c(0, op->ctrl, len);
    }
    lc__tcp_frame_encode(&f, op->hdr);
    lc__tcp_enqueue_send(c, op);
    lc__tcp_conn_write(c);
    return LC_OK;
}

static void lc__tcp_peer_leaving(lc_tl_t *tl_, int peer)
{
    lc_tl_tcp_t *tl = (lc_tl_tcp_t *)tl_;
    if (peer < 0 || peer >= tl->size || peer == tl->rank) return;
    tl->peers[peer].said_bye = 1;
    lc__tcp_peer_check_closed(&tl->peers[peer]); /* its streams may have ended already */
}

static void lc__tcp_disconnect(lc_tl_t *tl_, int peer, lc_status_t status, const char *why)
{
    lc_tl_tcp_t *tl = (lc_tl_tcp_t *)tl_;
    if (peer >= 0 && peer < tl->size && peer != tl->rank)
        lc__tcp_peer_fail(&tl->peers[peer], status, why);
}

static uint64_t lc__tcp_last_heard(const lc_tl_t *tl_, int peer)
{
    const lc_tl_tcp_t *tl = (const lc_tl_tcp_t *)tl_;
    if (peer < 0 || peer >= tl->size || peer == tl->rank) return 0;
    return tl->peers[peer].last_rx_ns;
}

static void lc__tcp_query(const lc_tl_t *tl_, lc_tl_props_t *props)
{
    const lc_tl_tcp_t *tl = (const lc_tl_tcp_t *)tl_;
    props->max_payload = LC_TCP_MAX_PAYLOAD;
    props->ctrl_max = LC_TCP_CTRL_MAX;
    props->lanes = tl->ndata;
}

static void lc__tcp_peer_info(const lc_tl_t *tl_, int peer, lc_tl_peer_info_t *info)
{
    const lc_tl_tcp_t *tl = (const lc_tl_tcp_t *)tl_;

    memset(info, 0, sizeof(*info));
    if (peer < 0 || peer >= tl->size || peer == tl->rank || tl->peers[peer].conns == NULL) return;
    for (int i = 0; i <= tl->ndata; i++) {
        int fd = tl->peers[peer].conns[i].fd;
        if (fd < 0) continue;
        if (i == 0) info->local = lc__tcp_same_host(fd);
        uint32_t rtt = lc__tcp_min_rtt(fd);
        if (rtt > 0 && (info->rtt_us == 0 || rtt < info->rtt_us)) info->rtt_us = rtt;
    }
}

static void lc__tcp_stats(const lc_tl_t *tl_, lc_tl_stats_t *stats)
{
    *stats = ((const lc_tl_tcp_t *)tl_)->stats;
}

/*
 * The retransmission floor. A message's last segments, dropped where several
 * senders converge on one receiver's queue (all-to-all, two-phase
 * all-reduce), have no later segment to bring duplicate ACKs: only the
 * retransmission timer resends them, after the round trip plus at least the
 * system's floor (net.ipv4.tcp_rto_min_us, 200 ms by default), however short
 * the round trip. On links where three senders converge on every host (the
 * dc links slowed to 250 Mbit/s, a compressed two-phase all-reduce), a 10 ms
 * floor made calls much faster than the system's 200 ms (measured:
 * docs/performance.md, "Compressed collectives"). The timeout is the
 * smoothed round trip plus the larger of 4 deviations and the floor, so a
 * long link's timeout stays above its round trip; since Linux 6.11 delayed
 * ACKs are capped below the floor, so a lone last segment is not resent
 * while its ACK is merely delayed. The kernel keeps the floor in clock ticks
 * and refuses less than 2 of them: a refused value is doubled (up to 200 ms,
 * the most it takes) until one is taken. A route's locked rto_min overrides
 * the socket's.
 */
static void lc__tcp_set_rto_min(uint32_t us, int fd)
{
    static atomic_int taken;                  /* the value the kernel took, once known */
    static atomic_int said_raised, said_fail; /* each said once per process */
    int v = atomic_load(&taken);

    if (us == 0) return;
    if (v == 0) v = (int)us;
    while (setsockopt(fd, IPPROTO_TCP, TCP_RTO_MIN_US, &v, sizeof(v)) != 0) {
        int err = errno;
        if (err == EINVAL && v < 200000) {
            v = v > 100000 ? 200000 : 2 * v;
            continue;
        }
        if (atomic_exchange(&said_fail, 1)) return;
        if (err == ENOPROTOOPT)
            lc_info("tcp: this kernel has no TCP_RTO_MIN_US (Linux < 6.15): retransmission "
                    "timeouts keep the system's floor (LC_TCP_RTO_MIN_US ignored)");
        else
            lc_warn("LC_TCP_RTO_MIN_US=%u on a connection: %s", us, strerror(err));
        return;
    }
    atomic_store(&taken, v);
    if ((uint32_t)v != us && !atomic_exchange(&said_raised, 1))
        lc_info("tcp: LC_TCP_RTO_MIN_US=%u is under 2 of this kernel's clock ticks: %d used", us,
                v);
}

/* Socket options of every connection (control and data): no Nagle,
 * keepalive within the peer timeout, the buffer sizes and congestion control
 * asked for, the retransmission floor. */
static void lc__tcp_set_opts(const lc_config_t *cfg, int fd)
{
    int one = 1, v;

    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    /* Keepalive probes an idle connection every quarter of the peer timeout
     * (whole seconds: at least 1, at most the kernel's 32767) and drops it
     * after 4 probes unanswered in a row. No TCP_USER_TIMEOUT: a receiver
     * that posts its receive late (a straggler still computing) stops reading
     * a parked connection, its window closes, and since Linux 5.11 the user
     * timeout ends a connection whose window stays shut that long, peer alive
     * or not (test_straggler: a receive 7 s late at the 2 s default). With the
     * user timeout at the peer timeout, one lost keepalive probe also ended a
     * live connection at the next probe. A dead or silent peer is declared
     * lost at the peer timeout by the control plane's heartbeat check (ft/),
     * which disconnects it. Not covered by it: one data connection
     * black-holed while the control connection still carries heartbeats
     * (its send surfaces at LC_TIMEOUT_MS), and a peer that said goodbye
     * (keepalive only: 5 probe intervals). */
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    v = (int)LC_MIN(32767u, LC_MAX(1u, cfg->peer_timeout_ms / 4000));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &v, sizeof(v));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &v, sizeof(v));
    v = 4;
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &v, sizeof(v));
    if (cfg->tcp_bufsize > 0) {
        v = cfg->tcp_bufsize;
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
    }
    /* Every rank checked the name before any connection was made (lc__tcp_wireup). */
    if (cfg->tcp_congestion != NULL && lc__tcp_set_congestion(fd, cfg->tcp_congestion) != 0)
        lc_warn("LC_TCP_CONGESTION=%s on a connection: %s", cfg->tcp_congestion, strerror(errno));
    lc__tcp_set_rto_min(cfg->tcp_rto_min_us, fd);
}

static void lc__tcp_destroy(lc_tl_t *tl_)
{
    lc_tl_tcp_t *tl = (lc_tl_tcp_t *)tl_;

    if (tl == NULL) return;
    for (int r = 0; r < tl->size && tl->peers != NULL; r++) {
        lc_tcp_peer_t *p = &tl->peers[r];
        if (p->conns == NULL) continue;
        for (int i = 0; i <= tl->ndata; i++) {
            lc_tcp_conn_t *c = &p->conns[i];
            lc_tcp_op_t *lists[3] = { c->rop, c->rq_head, c->sq_head };
            if (c->rop != NULL) c->rop->next = NULL;
            for (int k = 0; k < 3; k++) {
                while (lists[k] != NULL) {
                    lc_tcp_op_t *next = lists[k]->next;
                    free(lists[k]);
                    lists[k] = next;
                }
            }
            if (c->fd >= 0) {
                lc__progress_fd_del(tl->progress, c->h);
                /* Say we are done writing, so the peer reads what we sent
                 * and then a clean end of stream, not a reset. */
                shutdown(c->fd, SHUT_WR);
                close(c->fd);
            }
        }
        free(p->conns);
    }
    while (tl->free_ops != NULL) {
        lc_tcp_op_t *next = tl->free_ops->next;
        free(tl->free_ops);
        tl->free_ops = next;
    }
    free(tl->peers);
    free(tl->discard);
    free(tl);
}

static lc_status_t lc__tcp_create(const lc_tl_params_t *p, lc_tl_t **tl_p)
{
    lc_tl_tcp_t *tl = calloc(1, sizeof(*tl));
    int ndata = p->config->tcp_conns, per = 1 + ndata;
    int *fds = NULL;
    lc_status_t st;
    uint64_t now;

    if (tl == NULL) return LC_ERR_NO_MEMORY;
    tl->rank = p->rank;
    tl->size = p->size;
    tl->epoch = p->epoch;
    tl->ndata = ndata;
    tl->checksum = p->config->checksum;
    tl->progress = p->progress;
    tl->event_cb = p->event_cb;
    tl->event_arg = p->event_arg;
    tl->peers = calloc((size_t)p->size, sizeof(*tl->peers));
    tl->discard = malloc(LC_TCP_DISCARD_BYTES);
    fds = malloc((size_t)p->size * (size_t)per * sizeof(int));
    if (tl->peers == NULL || tl->discard == NULL || fds == NULL) {
        st = LC_ERR_NO_MEMORY;
        goto err;
    }
    LC_CHECK_GOTO(lc__tcp_wireup(p, ndata, fds), st, err);
    /* The probe runs on connections set up as the data path will use them. */
    for (int i = 0; i < p->size * per; i++) {
        if (fds[i] >= 0) lc__tcp_set_opts(p->config, fds[i]);
    }
    /* Before any payload: a bulk transfer's bytes would queue in front of
     * the round trips (ft/'s link probe comes after set-up). */
    LC_CHECK_GOTO(lc__tcp_agree_link(p, fds, per, &tl->stats.link_rtt_us, &tl->stats.link_one_host),
                  st, err_fds);
    /* Silence is counted from here: every rank has finished wiring up (the
     * exchange above waited for all of them), however long that took. */
    now = lc__now_ns();
    for (int r = 0; r < p->size; r++) {
        lc_tcp_peer_t *peer = &tl->peers[r];
        peer->tl = tl;
        peer->rank = r;
        if (r == p->rank) continue;
        peer->conns = calloc((size_t)per, sizeof(*peer->conns));
        if (peer->conns == NULL) {
            st = LC_ERR_NO_MEMORY;
            goto err_fds;
        }
        /* Not yet handed over: destroy() on an error below must not close fd 0. */
        for (int i = 0; i < per; i++) peer->conns[i].fd = -1;
        peer->alive = 1;
        peer->last_rx_ns = now;
        for (int i = 0; i < per; i++) {
            lc_tcp_conn_t *c = &peer->conns[i];
            c->fd = fds[r * per + i];
            fds[r * per + i] = -1;
            c->index = i;
            c->peer = peer;
            c->rx_state = LC_TCP_RX_HDR;
            c->events = EPOLLIN | EPOLLRDHUP;
            lc__sock_set_nonblock(c->fd, 1);
            st = lc__progress_fd_add(p->progress, c->fd, c->events, lc__tcp_conn_event, c, &c->h);
            if (st != LC_OK) {
                close(c->fd);
                c->fd = -1;
                goto err_fds;
            }
        }
    }
    free(fds);
    lc_info("tcp: connected to %d peers, %d data connection(s) each", p->size - 1, ndata);
    *tl_p = (lc_tl_t *)tl;
    return LC_OK;

err_fds:
    for (int i = 0; i < p->size * per; i++) {
        if (fds[i] >= 0) close(fds[i]);
    }
err:
    free(fds);
    lc__tcp_destroy((lc_tl_t *)tl);
    return st;
}

const lc_tl_ops_t lc__tl_tcp_ops = {
    .abi = LC_TL_ABI,
    .name = "tcp",
    .create = lc__tcp_create,
    .destroy = lc__tcp_destroy,
    .send = lc__tcp_send,
    .recv = lc__tcp_recv,
    .cancel = lc__tcp_cancel,
    .ctrl_send = lc__tcp_ctrl_send,
    .peer_leaving = lc__tcp_peer_leaving,
    .disconnect = lc__tcp_disconnect,
    .last_heard = lc__tcp_last_heard,
    .query = lc__tcp_query,
    .peer_info = lc__tcp_peer_info,
    .stats = lc__tcp_stats,
};
