/* The machine's timer floor, two ways.
 *
 * 1. `wake_floor SECONDS` — how late a plain C thread wakes for absolute deadlines 100 us
 *    apart (clock_nanosleep, CLOCK_MONOTONIC, 1 ns timer slack), with nothing else to do.
 *    ratebench's send/release lag cannot be better than this on the same machine; compare
 *    the two when a run's lag looks high.
 *
 * 2. `wake_floor SECONDS MODE PORT [RATE]` — how late a request *leaves* when a thread sends
 *    one per due time (RATE a second, default 10000) on one TCP connection to a loopback
 *    target that answers (e.g. `ratebench serve` on another core), measured by the kernel:
 *    lateness = the send's software TX timestamp (SO_TIMESTAMPING, read from the error
 *    queue) − its due time; plus this process's CPU per send and its voluntary context
 *    switches (wake-ups) per send. MODE:
 *      lazy               clock_nanosleep to each due time, read what arrived, send (the floor
 *                         of one wake per request)
 *      uring-epoll        io_uring: TIMEOUT(ABS, ETIME_SUCCESS) linked to SEND, queued 2 ms
 *                         ahead, the kernel's timer sending; the thread sleeps in epoll_wait
 *                         on the ring fd and the socket, edge-triggered, 1 ms timeouts — as a
 *                         tokio worker thread sleeps — and reaps what completed when woken
 *      uring-epoll-coop   the same ring with IORING_SETUP_COOP_TASKRUN
 *      uring-epoll-defer  the same ring with SINGLE_ISSUER | DEFER_TASKRUN (task work runs
 *                         only when the thread enters the ring: io_uring_get_events on wake)
 *      uring-enter        the thread waits in io_uring_enter itself (no epoll), plain ring
 *      uring-enter-defer  the same with SINGLE_ISSUER | DEFER_TASKRUN
 *      uring-loop         the ring as the whole event loop: sends as above, answers read by a
 *                         RECV kept queued on the ring, the thread waiting in io_uring_enter
 *                         and making no other system call but for the TX stamps
 *      uring-loop-defer   the same with SINGLE_ISSUER | DEFER_TASKRUN
 *    The uring modes need liburing (Debian: liburing-dev) and -DURING.
 *
 * Built and run by benches/load.sh:
 *     gcc -O2 -DURING -o /tmp/wake_floor benches/wake_floor.c -luring   (or without both)
 *     taskset -c 0 /tmp/wake_floor 10
 *     taskset -c 0 /tmp/wake_floor 5 uring-epoll 8080
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/errqueue.h>
#include <linux/net_tstamp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#ifdef URING
#include <liburing.h>
#endif

static long long now_ns(clockid_t c) {
    struct timespec t;
    clock_gettime(c, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

static void print_quantiles(const char *what, long long *v, long long n) {
    qsort(v, n, sizeof *v, cmp);
    if (n == 0) {
        printf("%s: nothing measured\n", what);
        return;
    }
    printf("%s p50 %.0f us, p90 %.0f us, p99 %.0f us, p99.9 %.0f us, max %.0f us", what,
           v[n / 2] / 1e3, v[n * 9 / 10] / 1e3, v[n * 99 / 100] / 1e3, v[n * 999 / 1000] / 1e3,
           v[n - 1] / 1e3);
}

/* Part 1: the thread's own wake-up lateness. */
static int timer_floor(long long seconds) {
    const long long gap = 100000; /* 100 us: 10k wake-ups a second, as at -R10k -t1 */
    long long n = seconds * 1000000000LL / gap;
    long long *late = malloc(n * sizeof *late);
    if (!late) return 1;
    long long due = now_ns(CLOCK_MONOTONIC);
    for (long long i = 0; i < n; i++) {
        due += gap;
        struct timespec t = {due / 1000000000LL, due % 1000000000LL};
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL);
        late[i] = now_ns(CLOCK_MONOTONIC) - due;
    }
    char what[96];
    snprintf(what, sizeof what, "wake-up lateness, %lld deadlines 100 us apart:", n);
    print_quantiles(what, late, n);
    printf("\n");
    free(late);
    return 0;
}

/* Part 2: sends, timed by the kernel. */
static const char REQ[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
#define REQ_LEN (sizeof REQ - 1)
static long long *due_rt, n_total, *late, n_late;

/* Reads the TX stamps queued so far; each names its send by the byte offset of its last
 * byte (SOF_TIMESTAMPING_OPT_ID counts bytes on TCP). */
static void read_stamps(int fd) {
    char ctrl[512], data[64];
    for (;;) {
        struct iovec iov = {data, sizeof data};
        struct msghdr m = {0};
        m.msg_iov = &iov;
        m.msg_iovlen = 1;
        m.msg_control = ctrl;
        m.msg_controllen = sizeof ctrl;
        if (recvmsg(fd, &m, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) return;
        struct scm_timestamping *ts = NULL;
        long long key = -1;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_TIMESTAMPING)
                ts = (struct scm_timestamping *)CMSG_DATA(c);
            else if ((c->cmsg_level == SOL_IP && c->cmsg_type == IP_RECVERR) ||
                     (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_RECVERR)) {
                struct sock_extended_err *e = (struct sock_extended_err *)CMSG_DATA(c);
                if (e->ee_origin == SO_EE_ORIGIN_TIMESTAMPING && e->ee_info == SCM_TSTAMP_SND)
                    key = e->ee_data;
            }
        }
        if (ts && key >= 0) {
            long long k = key / REQ_LEN;
            if (k < n_total)
                late[n_late++] = ts->ts[0].tv_sec * 1000000000LL + ts->ts[0].tv_nsec - due_rt[k];
        }
    }
}

static void read_answers(int fd) {
    static char buf[1 << 16];
    while (recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0) {
    }
}

static int lazy(int fd, long long t0, long long gap) {
    for (long long k = 0; k < n_total; k++) {
        long long due = t0 + k * gap;
        struct timespec t = {due / 1000000000LL, due % 1000000000LL};
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL);
        read_answers(fd);
        if (send(fd, REQ, REQ_LEN, 0) < 0) perror("send");
        if ((k & 63) == 0) read_stamps(fd);
    }
    return 0;
}

#ifdef URING
static int uring(int fd, long long t0, long long gap, const char *mode) {
    struct io_uring ring;
    struct io_uring_params p = {0};
    int defer = strstr(mode, "-defer") != NULL, use_epoll = strncmp(mode, "uring-epoll", 11) == 0;
    int ring_reads = strncmp(mode, "uring-loop", 10) == 0;
    static char rbuf[1 << 16];
    int recv_queued = 0;
    if (defer) p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    if (strstr(mode, "-coop")) p.flags = IORING_SETUP_COOP_TASKRUN;
    int e = io_uring_queue_init_params(4096, &ring, &p);
    if (e) {
        fprintf(stderr, "%s: io_uring_queue_init: %s\n", mode, strerror(-e));
        return 1;
    }
    int ep = -1;
    if (use_epoll) {
        ep = epoll_create1(0);
        struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.fd = ring.ring_fd};
        epoll_ctl(ep, EPOLL_CTL_ADD, ring.ring_fd, &ev);
        ev.data.fd = fd;
        ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET; /* as tokio registers a socket */
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
    struct __kernel_timespec *at = malloc(n_total * sizeof *at);
    const long long window = 2000000LL;
    long long queued = 0, sends_done = 0;
    while (sends_done < n_total) {
        long long now = now_ns(CLOCK_MONOTONIC);
        while (queued < n_total && t0 + queued * gap <= now + window &&
               io_uring_sq_space_left(&ring) >= 2) {
            long long d = t0 + queued * gap;
            at[queued].tv_sec = d / 1000000000LL;
            at[queued].tv_nsec = d % 1000000000LL;
            struct io_uring_sqe *s = io_uring_get_sqe(&ring);
            io_uring_prep_timeout(s, &at[queued], 0, IORING_TIMEOUT_ABS | IORING_TIMEOUT_ETIME_SUCCESS);
            s->flags |= IOSQE_IO_LINK | IOSQE_CQE_SKIP_SUCCESS;
            s->user_data = 0;
            s = io_uring_get_sqe(&ring);
            io_uring_prep_send(s, fd, REQ, REQ_LEN, 0);
            s->user_data = 1;
            queued++;
        }
        if (ring_reads && !recv_queued && io_uring_sq_space_left(&ring) >= 1) {
            struct io_uring_sqe *s = io_uring_get_sqe(&ring);
            io_uring_prep_recv(s, fd, rbuf, sizeof rbuf, 0);
            s->user_data = 2;
            recv_queued = 1;
        }
        if (use_epoll) {
            io_uring_submit(&ring);
            struct epoll_event evs[4];
            epoll_wait(ep, evs, 4, 1);
            if (defer) io_uring_get_events(&ring);
        } else {
            struct __kernel_timespec wt = {0, window / 2};
            struct io_uring_cqe *cqe;
            io_uring_submit_and_wait_timeout(&ring, &cqe, 1, &wt, NULL);
        }
        struct io_uring_cqe *cqe;
        unsigned head, n = 0;
        io_uring_for_each_cqe(&ring, head, cqe) {
            if (cqe->user_data == 1) sends_done++;
            if (cqe->user_data == 2) recv_queued = 0;
            if (cqe->res < 0 && cqe->res != -ETIME)
                fprintf(stderr, "%s: completion %llu: %s\n", mode, cqe->user_data, strerror(-cqe->res));
            n++;
        }
        io_uring_cq_advance(&ring, n);
        if (!ring_reads) read_answers(fd);
        read_stamps(fd);
    }
    io_uring_queue_exit(&ring);
    return 0;
}
#endif

int main(int argc, char **argv) {
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    long long seconds = argc > 1 ? atoll(argv[1]) : 10;
    if (argc < 4) return timer_floor(seconds);
    const char *mode = argv[2];
    int port = atoi(argv[3]);
    long long rate = argc > 4 ? atoll(argv[4]) : 10000;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
        perror("connect");
        return 1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int flags = SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE |
                SOF_TIMESTAMPING_OPT_ID | SOF_TIMESTAMPING_OPT_TSONLY;
    if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPING, &flags, sizeof flags)) perror("SO_TIMESTAMPING");
    n_total = rate * seconds;
    long long gap = 1000000000LL / rate;
    due_rt = malloc(n_total * sizeof *due_rt);
    late = malloc(n_total * sizeof *late);
    long long t0 = now_ns(CLOCK_MONOTONIC) + 50000000LL;
    long long offset = now_ns(CLOCK_REALTIME) - now_ns(CLOCK_MONOTONIC);
    for (long long k = 0; k < n_total; k++) due_rt[k] = t0 + k * gap + offset;
    struct rusage r0, r1;
    getrusage(RUSAGE_SELF, &r0);
    int rc;
    if (!strcmp(mode, "lazy")) {
        rc = lazy(fd, t0, gap);
    } else if (!strncmp(mode, "uring", 5)) {
#ifdef URING
        rc = uring(fd, t0, gap, mode);
#else
        fprintf(stderr, "%s: built without io_uring (gcc -DURING ... -luring)\n", mode);
        return 2;
#endif
    } else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    if (rc) return rc;
    usleep(20000);
    read_stamps(fd);
    getrusage(RUSAGE_SELF, &r1);
    double cpu = (r1.ru_utime.tv_sec - r0.ru_utime.tv_sec) + (r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) +
                 ((r1.ru_utime.tv_usec - r0.ru_utime.tv_usec) + (r1.ru_stime.tv_usec - r0.ru_stime.tv_usec)) / 1e6;
    char what[128];
    snprintf(what, sizeof what, "%-18s %lld/s, send lateness by kernel stamp (%lld of %lld):", mode,
             rate, n_late, n_total);
    print_quantiles(what, late, n_late);
    printf("; cpu %.1f us/send, %.2f wake-ups/send\n", cpu * 1e6 / n_total,
           (double)(r1.ru_nvcsw - r0.ru_nvcsw) / n_total);
    return 0;
}
