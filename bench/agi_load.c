/*
 * agi_load: a FastAGI load generator that plays Asterisk, for bench/bench_fastagi.py.
 *
 * Client mode (default): keeps --concurrency sessions running for --warmup + --seconds.  A session
 * connects, sends the 22-variable agi_* environment block Asterisk 22 sends, answers every command
 * line it reads ("200 result=0" to GET VARIABLE, "200 result=1" to anything else) and ends when the
 * server closes the connection; its latency is connect() -> EOF.  Sessions that end inside the
 * measured window (after the warm-up) are counted; at the end no new session starts and the running
 * ones are allowed to finish (bounded by --drain).  One thread, epoll, non-blocking sockets, so that
 * the generator costs a small fraction of one core; it reports its own CPU use to prove it.
 *
 * Server mode (--serve): a minimal FastAGI server in C (reads the environment, sends --commands
 * commands one at a time, closes), used only to show how far the generator itself can go.
 *
 * Output (client mode): one JSON object on stdout.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define IN_CAP 8192
#define OUT_CAP 4096

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static void die(const char *what) {
    perror(what);
    exit(2);
}

static void pin(int cpu) {
    if (cpu < 0) return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) die("sched_setaffinity");
}

/* ------------------------------------------------------------------------------------ client */

enum { IDLE, CONNECTING, RUNNING };

struct slot {
    int fd;
    int state;
    int cmds;
    double start;
    size_t in_len;
    size_t out_len, out_off;
    char in[IN_CAP];
    char out[OUT_CAP];
};

struct stats {
    long started, completed_total, completed_window, commands_window, bad_sessions;
    long connect_errors, io_errors, abandoned;
    double *lat;
    size_t lat_len, lat_cap;
};

static const char *g_host = "127.0.0.1";
static int g_port = 4573;
static long g_uid = 0;
static struct stats st;
static int g_epfd;
static int g_expect = 5;

static int env_block(char *buf, size_t cap, long n) {
    /* What Asterisk 22 sends on a FastAGI connection (res_agi.c setup_env), 22 variables. */
    return snprintf(buf, cap,
                    "agi_network: yes\n"
                    "agi_network_script: inbound?node=node1\n"
                    "agi_request: agi://127.0.0.1:4573/inbound?node=node1\n"
                    "agi_channel: PJSIP/carrier-%08lx\n"
                    "agi_language: en\n"
                    "agi_type: PJSIP\n"
                    "agi_uniqueid: node1-1764000000.%ld\n"
                    "agi_version: 22.10.1\n"
                    "agi_callerid: 74951234567\n"
                    "agi_calleridname: Test Caller\n"
                    "agi_callingpres: 0\n"
                    "agi_callingani2: 0\n"
                    "agi_callington: 0\n"
                    "agi_callingtns: 0\n"
                    "agi_dnid: 5000\n"
                    "agi_rdnis: unknown\n"
                    "agi_context: hotline-inbound\n"
                    "agi_extension: 5000\n"
                    "agi_priority: 3\n"
                    "agi_enhanced: 0.0\n"
                    "agi_accountcode: \n"
                    "agi_threadid: 140000000000\n"
                    "\n",
                    n + 1, n);
}

static void lat_add(double ms) {
    if (st.lat_len == st.lat_cap) {
        st.lat_cap = st.lat_cap ? st.lat_cap * 2 : 65536;
        st.lat = realloc(st.lat, st.lat_cap * sizeof *st.lat);
        if (!st.lat) die("realloc");
    }
    st.lat[st.lat_len++] = ms;
}

static void slot_close(struct slot *s) {
    if (s->fd >= 0) close(s->fd);
    s->fd = -1;
    s->state = IDLE;
}

static void slot_start(struct slot *s, struct sockaddr_in *addr) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    s->fd = fd;
    s->cmds = 0;
    s->in_len = 0;
    s->out_off = 0;
    s->out_len = (size_t)env_block(s->out, OUT_CAP, g_uid++);
    s->start = now_s();
    st.started++;
    /* Edge-triggered and registered once: no EPOLL_CTL_MOD/DEL per session (close() removes it). */
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = s};
    int rc = connect(fd, (struct sockaddr *)addr, sizeof *addr);
    if (rc == 0 || errno == EINPROGRESS) {
        s->state = CONNECTING;
        if (epoll_ctl(g_epfd, EPOLL_CTL_ADD, fd, &ev) != 0) die("epoll_ctl");
        return;
    }
    st.connect_errors++;
    close(fd);
    s->fd = -1;
    s->state = IDLE;
}

/* Write what is pending; returns 0 when all written, 1 when the socket is full, -1 on error. */
static int slot_flush(struct slot *s) {
    while (s->out_off < s->out_len) {
        ssize_t n = write(s->fd, s->out + s->out_off, s->out_len - s->out_off);
        if (n > 0) {
            s->out_off += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return 1;
        } else {
            return -1;
        }
    }
    s->out_off = s->out_len = 0;
    return 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(double q) {
    if (st.lat_len == 0) return 0.0;
    size_t i = (size_t)(q * (double)(st.lat_len - 1) + 0.5);
    return st.lat[i];
}

/* Reads what is buffered; returns 1 when the session ended (either way).  Edge-triggered: a short
 * read means the socket was drained, unless the peer also closed (then read on to the EOF). */
static int on_readable(struct slot *s, int hup, double win_start, double win_end) {
    for (;;) {
        if (s->in_len == IN_CAP) {
            st.io_errors++;
            return 1;
        }
        ssize_t n = read(s->fd, s->in + s->in_len, IN_CAP - s->in_len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
        if (n < 0) {
            st.io_errors++;
            return 1;
        }
        if (n == 0) {
            double end = now_s();
            st.completed_total++;
            if (s->cmds != g_expect) st.bad_sessions++;
            if (end >= win_start && end < win_end) {
                st.completed_window++;
                st.commands_window += s->cmds;
                lat_add((end - s->start) * 1000.0);
            }
            return 1;
        }
        int drained = !hup && (size_t)n < IN_CAP - s->in_len;
        s->in_len += (size_t)n;
        /* Answer every complete command line. */
        size_t pos = 0;
        for (;;) {
            char *nl = memchr(s->in + pos, '\n', s->in_len - pos);
            if (!nl) break;
            size_t len = (size_t)(nl - (s->in + pos));
            const char *reply = (len >= 12 && memcmp(s->in + pos, "GET VARIABLE", 12) == 0)
                                    ? "200 result=0\n"
                                    : "200 result=1\n";
            size_t rlen = strlen(reply);
            if (s->out_len + rlen > OUT_CAP) {
                st.io_errors++;
                return 1;
            }
            memcpy(s->out + s->out_len, reply, rlen);
            s->out_len += rlen;
            s->cmds++;
            pos += len + 1;
        }
        if (pos) {
            memmove(s->in, s->in + pos, s->in_len - pos);
            s->in_len -= pos;
        }
        if (s->out_len) {
            int rc = slot_flush(s);
            if (rc < 0) {
                st.io_errors++;
                return 1;
            }
            /* rc == 1: the rest goes out on the next EPOLLOUT edge. */
        }
        if (drained) return 0;
    }
}

static int run_client(int concurrency, double seconds, double warmup, double drain) {
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_port)};
    if (inet_pton(AF_INET, g_host, &addr.sin_addr) != 1) die("inet_pton");
    g_epfd = epoll_create1(EPOLL_CLOEXEC);
    if (g_epfd < 0) die("epoll_create1");
    struct slot *slots = calloc((size_t)concurrency, sizeof *slots);
    if (!slots) die("calloc");

    double t0 = now_s();
    double win_start = t0 + warmup, win_end = win_start + seconds, hard_end = win_end + drain;
    double cpu_at_start = -1, cpu_at_end = -1;
    for (int i = 0; i < concurrency; i++) {
        slots[i].fd = -1;
        slot_start(&slots[i], &addr);
    }
    struct epoll_event evs[256];
    int stopping = 0;
    for (;;) {
        double t = now_s();
        if (cpu_at_start < 0 && t >= win_start) cpu_at_start = cpu_s();
        if (!stopping && t >= win_end) {
            stopping = 1;
            cpu_at_end = cpu_s();
        }
        int running = 0;
        for (int i = 0; i < concurrency; i++) {
            if (slots[i].state == IDLE && !stopping) slot_start(&slots[i], &addr);
            running += slots[i].state != IDLE;
        }
        if (stopping && (running == 0 || t >= hard_end)) {
            st.abandoned += running;
            break;
        }
        double until = stopping ? hard_end : (t < win_start ? win_start : win_end);
        int timeout_ms = (int)((until - t) * 1000.0) + 1;
        int n = epoll_wait(g_epfd, evs, 256, timeout_ms);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) die("epoll_wait");
        for (int k = 0; k < n; k++) {
            struct slot *s = evs[k].data.ptr;
            if (s->state == IDLE) continue;
            if (s->state == CONNECTING) {
                int err = 0;
                socklen_t len = sizeof err;
                getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len);
                if (err) {
                    st.connect_errors++;
                    slot_close(s);
                    continue;
                }
                s->state = RUNNING;
            }
            if ((evs[k].events & EPOLLOUT) && s->out_len && slot_flush(s) < 0) {
                st.io_errors++;
                slot_close(s);
                continue;
            }
            uint32_t e = evs[k].events;
            if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
                if (on_readable(s, (e & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0, win_start, win_end))
                    slot_close(s);
            }
        }
    }
    if (cpu_at_start < 0) cpu_at_start = cpu_s();
    if (cpu_at_end < 0) cpu_at_end = cpu_s();
    qsort(st.lat, st.lat_len, sizeof *st.lat, cmp_double);
    printf("{\"window_s\": %.6f, \"concurrency\": %d, \"sessions\": %ld, \"commands\": %ld, "
           "\"sessions_per_s\": %.2f, \"commands_per_s\": %.2f, "
           "\"p50_ms\": %.3f, \"p90_ms\": %.3f, \"p99_ms\": %.3f, \"max_ms\": %.3f, "
           "\"started\": %ld, \"completed_total\": %ld, \"bad_sessions\": %ld, \"expect_commands\": %d, "
           "\"connect_errors\": %ld, \"io_errors\": %ld, \"abandoned\": %ld, "
           "\"generator_cpu_s\": %.4f, \"generator_cpu_share\": %.4f}\n",
           seconds, concurrency, st.completed_window, st.commands_window,
           st.completed_window / seconds, st.commands_window / seconds, pct(0.50), pct(0.90), pct(0.99),
           st.lat_len ? st.lat[st.lat_len - 1] : 0.0, st.started, st.completed_total, st.bad_sessions,
           g_expect, st.connect_errors, st.io_errors, st.abandoned, cpu_at_end - cpu_at_start,
           (cpu_at_end - cpu_at_start) / seconds);
    return 0;
}

/* ------------------------------------------------------------------------------------ server */

struct conn {
    int fd;
    int env_done;
    int sent;
    size_t in_len;
    char in[IN_CAP];
};

static int run_server(int commands) {
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lfd < 0) die("socket");
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_port)};
    inet_pton(AF_INET, g_host, &addr.sin_addr);
    if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) != 0) die("bind");
    if (listen(lfd, 1024) != 0) die("listen");
    socklen_t alen = sizeof addr;
    getsockname(lfd, (struct sockaddr *)&addr, &alen);
    printf("READY %d\n", ntohs(addr.sin_port));
    fflush(stdout);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    struct epoll_event evs[256];
    static const char cmd[] = "SET VARIABLE \"HOTLINE_V\" \"value\"\n";
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) die("epoll_wait");
        for (int k = 0; k < n; k++) {
            if (evs[k].data.ptr == NULL) {
                for (;;) {
                    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (fd < 0) break;
                    struct conn *c = calloc(1, sizeof *c);
                    c->fd = fd;
                    struct epoll_event cev = {.events = EPOLLIN, .data.ptr = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev);
                }
                continue;
            }
            struct conn *c = evs[k].data.ptr;
            int done = 0;
            for (;;) {
                ssize_t r = read(c->fd, c->in + c->in_len, IN_CAP - c->in_len);
                if (r < 0 && errno == EAGAIN) break;
                if (r <= 0) {
                    done = 1;
                    break;
                }
                c->in_len += (size_t)r;
                for (;;) {
                    char *end;
                    size_t used;
                    if (!c->env_done) {
                        end = memmem(c->in, c->in_len, "\n\n", 2);
                        if (!end) break;
                        used = (size_t)(end - c->in) + 2;
                        c->env_done = 1;
                    } else {
                        end = memchr(c->in, '\n', c->in_len);
                        if (!end) break;
                        used = (size_t)(end - c->in) + 1;
                    }
                    memmove(c->in, c->in + used, c->in_len - used);
                    c->in_len -= used;
                    if (c->sent == commands) {
                        done = 1;
                        break;
                    }
                    if (write(c->fd, cmd, sizeof cmd - 1) != (ssize_t)(sizeof cmd - 1)) {
                        done = 1;
                        break;
                    }
                    c->sent++;
                }
                if (done || c->in_len == IN_CAP) {
                    done = 1;
                    break;
                }
            }
            if (done) {
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
                free(c);
            }
        }
    }
    return 0;
}

int main(int argc, char **argv) {
    int concurrency = 20, cpu = -1, serve = 0;
    double seconds = 10.0, warmup = 1.0, drain = 5.0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--serve")) {
            serve = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "missing value for %s\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "--host")) g_host = v;
        else if (!strcmp(a, "--port")) g_port = atoi(v);
        else if (!strcmp(a, "--concurrency")) concurrency = atoi(v);
        else if (!strcmp(a, "--seconds")) seconds = atof(v);
        else if (!strcmp(a, "--warmup")) warmup = atof(v);
        else if (!strcmp(a, "--drain")) drain = atof(v);
        else if (!strcmp(a, "--cpu")) cpu = atoi(v);
        else if (!strcmp(a, "--expect") || !strcmp(a, "--commands")) g_expect = atoi(v);
        else {
            fprintf(stderr, "unknown option %s\n", a);
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    pin(cpu);
    if (serve) return run_server(g_expect);
    if (concurrency < 1 || seconds <= 0) {
        fprintf(stderr, "bad --concurrency/--seconds\n");
        return 2;
    }
    return run_client(concurrency, seconds, warmup, drain);
}
