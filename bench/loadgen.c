/*
 * statsd load generator for plumb's benchmarks.
 *
 * Builds a pool of multi-line datagrams (~1.4 KB, lines for N distinct series, mixed types,
 * DogStatsD tags), then sends them over UDP to 127.0.0.1 at a paced rate of *lines* per second
 * (or flat out), for a bounded time. Pacing keeps an absolute schedule on CLOCK_MONOTONIC:
 * datagram k is due when its first line is due; the sender sleeps (clock_nanosleep, 1 µs timer
 * slack) until then, or spins when the wait is shorter than the sleep's own jitter, and catches
 * up with sendmmsg batches after a late wake-up so the average rate holds.
 *
 * Prints one JSON object: what was sent and the generator's own CPU (getrusage), so a caller can
 * compute loss and see how much of the machine the generator itself took.
 *
 *   loadgen --port P [--host 127.0.0.1] [--rate LINES_PER_S | 0 = flat out] [--duration S]
 *           [--series N] [--size BYTES] [--pool DATAGRAMS] [--seed S] [--dump FILE]
 *   loadgen --unix PATH ...   the same datagrams to a Unix datagram socket (DogStatsD's unix://);
 *           its sends block while the receiver's queue is full, as a blocking client's would
 *
 * Series i has a fixed type from i mod 20: 12 counters, 6 timers, 1 gauge, 1 set (60/30/5/5),
 * and lines pick series uniformly, so the line mix follows the series mix.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define BATCH 32
#define MAX_DATAGRAM 65000
#define SPIN_NS 30000 /* waits shorter than this are spun, longer ones slept */

struct datagram {
    char *data;
    uint32_t len;
    uint32_t lines;
};

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t next_random(void) {
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rng_state = x;
    return x;
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static void sleep_until(int64_t t) {
    struct timespec ts = {.tv_sec = t / 1000000000ll, .tv_nsec = t % 1000000000ll};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

/* One statsd line for series i into out; returns its length (no newline). */
static int format_line(char *out, size_t cap, uint32_t i) {
    uint32_t kind = i % 20;
    uint32_t host = i % 16;
    uint64_t r = next_random();
    if (kind < 12) return snprintf(out, cap, "api.req.t%u:%u|c|#h:%u", i, (unsigned)(1 + r % 9), host);
    if (kind < 18) return snprintf(out, cap, "api.req.t%u:%u|ms|#h:%u", i, (unsigned)(r % 1000), host);
    if (kind == 18) return snprintf(out, cap, "api.req.t%u:%u|g|#h:%u", i, (unsigned)(r % 10000), host);
    return snprintf(out, cap, "api.req.t%u:u%u|s|#h:%u", i, (unsigned)(r % 1000), host);
}

static struct datagram *build_pool(uint32_t count, uint32_t series, uint32_t size) {
    struct datagram *pool = calloc(count, sizeof *pool);
    if (!pool) return NULL;
    char line[256];
    for (uint32_t d = 0; d < count; d++) {
        char *buf = malloc(size);
        if (!buf) return NULL;
        uint32_t len = 0, lines = 0;
        for (;;) {
            uint32_t i = (uint32_t)(next_random() % series);
            int n = format_line(line, sizeof line, i);
            uint32_t need = (uint32_t)n + (lines > 0 ? 1 : 0);
            if (len + need > size) {
                if (lines > 0) break;
                n = (int)size; /* a single line longer than the datagram: truncate (never with sane sizes) */
                need = size;
            }
            if (lines > 0) buf[len++] = '\n';
            memcpy(buf + len, line, (size_t)n);
            len += (uint32_t)n;
            lines++;
        }
        pool[d].data = buf;
        pool[d].len = len;
        pool[d].lines = lines;
    }
    return pool;
}

static int dump_pool(const char *path, const struct datagram *pool, uint32_t count) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    for (uint32_t d = 0; d < count; d++) {
        uint8_t hdr[4] = {(uint8_t)pool[d].len, (uint8_t)(pool[d].len >> 8), (uint8_t)(pool[d].len >> 16), (uint8_t)(pool[d].len >> 24)};
        if (fwrite(hdr, 1, 4, f) != 4 || fwrite(pool[d].data, 1, pool[d].len, f) != pool[d].len) {
            fclose(f);
            return -1;
        }
    }
    return fclose(f);
}

static double tv_seconds(struct timeval tv) { return (double)tv.tv_sec + (double)tv.tv_usec / 1e6; }

static void usage(void) {
    fprintf(stderr, "usage: loadgen (--port P [--host 127.0.0.1] | --unix PATH) [--rate LINES_PER_S] [--duration S] [--series N] [--size BYTES] [--pool N] [--seed S] [--dump FILE]\n");
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1";
    const char *dump = NULL;
    const char *unix_path = NULL;
    long port = 0;
    double rate = 0, duration = 10;
    long series = 1000, size = 1400, pool_count = 4096;
    unsigned long long seed = 1;
    for (int a = 1; a < argc; a++) {
        const char *k = argv[a];
        const char *v = a + 1 < argc ? argv[a + 1] : NULL;
        if (!v) {
            usage();
            return 2;
        }
        if (!strcmp(k, "--host")) host = v;
        else if (!strcmp(k, "--port")) port = strtol(v, NULL, 10);
        else if (!strcmp(k, "--rate")) rate = strtod(v, NULL);
        else if (!strcmp(k, "--duration")) duration = strtod(v, NULL);
        else if (!strcmp(k, "--series")) series = strtol(v, NULL, 10);
        else if (!strcmp(k, "--size")) size = strtol(v, NULL, 10);
        else if (!strcmp(k, "--pool")) pool_count = strtol(v, NULL, 10);
        else if (!strcmp(k, "--seed")) seed = strtoull(v, NULL, 10);
        else if (!strcmp(k, "--dump")) dump = v;
        else if (!strcmp(k, "--unix")) unix_path = v;
        else {
            usage();
            return 2;
        }
        a++;
    }
    if (series < 1 || series > 10000000 || size < 64 || size > MAX_DATAGRAM || pool_count < 1 || pool_count > 1000000 ||
        rate < 0 || duration <= 0 || duration > 600 || (!dump && !unix_path && (port < 1 || port > 65535)) ||
        (unix_path && strlen(unix_path) >= sizeof(((struct sockaddr_un *)0)->sun_path))) {
        usage();
        return 2;
    }
    rng_state ^= seed * 0x2545f4914f6cdd1dull;
    if (rng_state == 0) rng_state = 1;

    struct datagram *pool = build_pool((uint32_t)pool_count, (uint32_t)series, (uint32_t)size);
    if (!pool) {
        fprintf(stderr, "loadgen: out of memory building the pool\n");
        return 1;
    }
    uint64_t pool_lines = 0, pool_bytes = 0;
    for (long d = 0; d < pool_count; d++) {
        pool_lines += pool[d].lines;
        pool_bytes += pool[d].len;
    }
    if (dump) {
        if (dump_pool(dump, pool, (uint32_t)pool_count) != 0) {
            perror("loadgen: dump");
            return 1;
        }
        printf("{\"datagrams\":%ld,\"lines\":%llu,\"bytes\":%llu}\n", pool_count, (unsigned long long)pool_lines, (unsigned long long)pool_bytes);
        return 0;
    }

    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    int fd = socket(unix_path ? AF_UNIX : AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) {
        perror("loadgen: socket");
        return 1;
    }
    int sndbuf = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    if (unix_path) {
        struct sockaddr_un dst = {.sun_family = AF_UNIX};
        strcpy(dst.sun_path, unix_path);
        if (connect(fd, (struct sockaddr *)&dst, sizeof dst) != 0) {
            perror("loadgen: connect");
            return 1;
        }
    } else {
        struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        if (inet_pton(AF_INET, host, &dst.sin_addr) != 1 || connect(fd, (struct sockaddr *)&dst, sizeof dst) != 0) {
            perror("loadgen: connect");
            return 1;
        }
    }

    struct mmsghdr msgs[BATCH];
    struct iovec iovs[BATCH];
    uint32_t batch_lines[BATCH];
    memset(msgs, 0, sizeof msgs);

    uint64_t sent_lines = 0, sent_datagrams = 0, sent_bytes = 0, send_errors = 0, batches = 0;
    int64_t max_late_ns = 0;
    uint32_t next = 0;
    const int64_t start = now_ns();
    const int64_t end = start + (int64_t)(duration * 1e9);
    const double ns_per_line = rate > 0 ? 1e9 / rate : 0;
    int64_t t = start;

    while (t < end) {
        /* Collect the datagrams due by now (all of them, up to a batch, when flat out). */
        int n = 0;
        uint64_t planned = sent_lines;
        while (n < BATCH) {
            if (rate > 0 && (double)planned * ns_per_line > (double)(t - start)) break;
            struct datagram *d = &pool[next];
            iovs[n].iov_base = d->data;
            iovs[n].iov_len = d->len;
            msgs[n].msg_hdr.msg_iov = &iovs[n];
            msgs[n].msg_hdr.msg_iovlen = 1;
            batch_lines[n] = d->lines;
            planned += d->lines;
            next = next + 1 == (uint32_t)pool_count ? 0 : next + 1;
            n++;
        }
        if (n > 0) {
            int done = sendmmsg(fd, msgs, (unsigned)n, 0);
            batches++;
            if (done < 0) {
                send_errors += (uint64_t)n;
                done = 0;
            } else if (done < n) {
                send_errors += (uint64_t)(n - done);
            }
            for (int k = 0; k < done; k++) {
                sent_lines += batch_lines[k];
                sent_bytes += iovs[k].iov_len;
            }
            sent_datagrams += (uint64_t)done;
            if (done < n) {
                /* rewind the pool cursor over the unsent ones so the schedule stays exact */
                next = (uint32_t)((next + (uint32_t)pool_count - (uint32_t)(n - done)) % (uint32_t)pool_count);
            }
        }
        if (rate > 0) {
            int64_t due = start + (int64_t)((double)sent_lines * ns_per_line);
            t = now_ns();
            if (t - due > max_late_ns && n > 0) max_late_ns = t - due;
            if (due > t) {
                if (due > end) break;
                if (due - t > SPIN_NS) sleep_until(due - SPIN_NS / 2);
                while ((t = now_ns()) < due) {
                }
            }
        } else {
            t = now_ns();
        }
    }
    const int64_t stop = now_ns();

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double elapsed = (double)(stop - start) / 1e9;
    printf("{\"lines\":%llu,\"datagrams\":%llu,\"bytes\":%llu,\"sendErrors\":%llu,\"batches\":%llu,\"elapsed\":%.6f,"
           "\"userSeconds\":%.6f,\"systemSeconds\":%.6f,\"maxLateUs\":%.1f,\"poolLinesPerDatagram\":%.3f}\n",
           (unsigned long long)sent_lines, (unsigned long long)sent_datagrams, (unsigned long long)sent_bytes,
           (unsigned long long)send_errors, (unsigned long long)batches, elapsed, tv_seconds(ru.ru_utime),
           tv_seconds(ru.ru_stime), (double)max_late_ns / 1e3, (double)pool_lines / (double)pool_count);
    close(fd);
    return 0;
}
