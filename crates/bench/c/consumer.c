// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/*
 * A minimal C consumer on libbpf: the reference `xdpwall bench transport`
 * measures xdpwall's Rust consumer against, on the same program and maps.
 *
 * usage: consumer MAP_ID ring|perf epoll|busy|drain PER_WAKEUP PAGES
 *        consumer fill PROG_ID FRAME_FILE
 * fill: the producer for drains, in a process of its own (so that neither
 * consumer shares its process with it): for each line N on stdin, runs the
 * program N times on the frame with BPF_PROG_TEST_RUN and prints "filled N
 * retval V" (V: the program's verdict).
 * The others print "ready" once set up.
 * drain: for each line N read from stdin (the
 * bench has just filled the buffer while nobody read), consumes until N
 * records in all have been delivered and prints "drained D ns T" (T: the
 * time that took, CLOCK_MONOTONIC); ends at EOF. Otherwise: consumes
 * until stdin closes (the producers are done) and the buffer is drained;
 * then prints one line:
 *   delivered N lost_cb L p50_ns A p99_ns B max_ns C order V maxback_ns W
 *   percpu P late L2 maxlate_ns M last_ns T cpu_ns U nvcsw X nivcsw Y
 * late counts records older than the newest delivered before them.
 * last_ns is the CLOCK_MONOTONIC time of the last record's callback (so the
 * harness times delivery the same way for both consumers, without this
 * process's start-up or its report); cpu_ns, nvcsw and nivcsw are its CPU
 * time and context switches from "ready" to the end of the drain.
 * Record layout: the fixed header of bpf/abi.h (struct xw_event), of which
 * this reads ts_ns (offset 0) and cpu (offset 16) — per record the same work
 * as the bench's Rust callback: read the stamp and CPU, take the time, keep
 * the latency, count order violations overall and per CPU.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/perf_event.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "abi.h"

#define MAX_CPUS 64

static uint64_t *lat;
static size_t nlat, caplat;
static uint64_t delivered, lost_cb, order, percpu, malformed;

/* PAUSEs an empty busy poll waits: first, and at most (xdpwall-events'
 * BUSY_BACKOFF; a test in crates/bench checks the two agree). */
#define BUSY_BACKOFF_MIN 8
#define BUSY_BACKOFF_MAX 64

static inline void spin_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	/* What Rust's std::hint::spin_loop() emits there. */
	__asm__ __volatile__("isb sy" ::: "memory");
#endif
}
static uint64_t last_ts, maxback, last_cpu_ts[MAX_CPUS], last_now, newest, late, maxlate;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void record(const void *data, size_t size)
{
	struct xw_event ev;
	uint64_t ts, now;
	uint32_t cpu;

	/* The header as xdpwall's consumer decodes it: all of it, and the
	 * packet bytes it claims must be there (perf pads records to 8). */
	if (size < sizeof(ev)) {
		malformed++;
		return;
	}
	memcpy(&ev, data, sizeof(ev));
	if (ev.cap_len > size - sizeof(ev)) {
		malformed++;
		return;
	}
	/* The time after the header, as xdpwall's consumer hands a decoded
	 * record to its callback (taking it first lets the clock read overlap
	 * the header's cache miss: ~20 ns a 1540-byte ring record). */
	now = now_ns();
	ts = ev.ts_ns;
	cpu = ev.cpu;
	delivered++;
	last_now = now;
	if (nlat < caplat)
		lat[nlat++] = now > ts ? now - ts : 0;
	if (ts < last_ts) {
		order++;
		if (last_ts - ts > maxback)
			maxback = last_ts - ts;
	}
	last_ts = ts;
	if (ts < newest) {
		late++;
		if (newest - ts > maxlate)
			maxlate = newest - ts;
	} else {
		newest = ts;
	}
	if (cpu < MAX_CPUS) {
		if (ts < last_cpu_ts[cpu])
			percpu++;
		last_cpu_ts[cpu] = ts;
	}
}

static int on_ring(void *ctx, void *data, size_t size)
{
	(void)ctx;
	record(data, size);
	return 0;
}

struct sample {
	struct perf_event_header header;
	uint32_t size;
	char data[];
};

struct lost {
	struct perf_event_header header;
	uint64_t id;
	uint64_t lost;
};

static enum bpf_perf_event_ret on_perf(void *ctx, int cpu, struct perf_event_header *e)
{
	(void)ctx;
	(void)cpu;
	if (e->type == PERF_RECORD_SAMPLE) {
		struct sample *s = (struct sample *)e;

		record(s->data, s->size);
	} else if (e->type == PERF_RECORD_LOST) {
		lost_cb += ((struct lost *)e)->lost;
	}
	return LIBBPF_PERF_EVENT_CONT;
}

static int cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t tv_ns(struct timeval tv)
{
	return (uint64_t)tv.tv_sec * 1000000000ull + (uint64_t)tv.tv_usec * 1000ull;
}

static int stdin_closed(void)
{
	struct pollfd p = { .fd = 0, .events = POLLIN };
	char buf[64];

	if (poll(&p, 1, 0) <= 0)
		return 0;
	return read(0, buf, sizeof(buf)) <= 0;
}

/* drain mode: the consumer alone sets the pace, so its own cost shows. */
static int drain(struct ring_buffer *rb, struct perf_buffer *pb)
{
	char line[64];

	while (fgets(line, sizeof(line), stdin)) {
		uint64_t target = strtoull(line, NULL, 10), t0 = now_ns(), t1;

		while (delivered < target) {
			int err = pb ? perf_buffer__consume(pb) : ring_buffer__consume(rb);

			if (err < 0) {
				printf("error %s\n", strerror(-err));
				return 1;
			}
			/* Records lost while filling would never come: give up. */
			if (now_ns() - t0 > 5000000000ull) {
				printf("stuck at %llu of %llu\n", (unsigned long long)delivered,
				       (unsigned long long)target);
				return 1;
			}
		}
		t1 = now_ns();
		printf("drained %llu ns %llu\n", (unsigned long long)delivered,
		       (unsigned long long)(t1 - t0));
		fflush(stdout);
	}
	return 0;
}

static int fill(const char *prog_id, const char *frame_file)
{
	static char frame[4096];
	char line[64];
	size_t len;
	FILE *f;
	int fd;

	fd = bpf_prog_get_fd_by_id((uint32_t)atoi(prog_id));
	if (fd < 0) {
		fprintf(stderr, "prog id %s: %s\n", prog_id, strerror(errno));
		return 1;
	}
	f = fopen(frame_file, "rb");
	if (!f) {
		fprintf(stderr, "%s: %s\n", frame_file, strerror(errno));
		return 1;
	}
	len = fread(frame, 1, sizeof(frame), f);
	if (len == 0 || !feof(f)) {
		fprintf(stderr, "%s: empty or longer than %zu bytes\n", frame_file, sizeof(frame));
		fclose(f);
		return 1;
	}
	fclose(f);
	printf("ready\n");
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin)) {
		LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = (uint32_t)len,
			    .repeat = (int)strtol(line, NULL, 10));

		if (bpf_prog_test_run_opts(fd, &opts)) {
			printf("error %s\n", strerror(errno));
			return 1;
		}
		/* The verdict, so the bench sees a frame its rule does not drop. */
		printf("filled %d retval %u\n", opts.repeat, opts.retval);
		fflush(stdout);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct ring_buffer *rb = NULL;
	struct perf_buffer *pb = NULL;
	struct rusage ru0, ru1;
	int fd, busy, perf, per_wakeup, pages, done = 0;
	unsigned backoff = BUSY_BACKOFF_MIN;
	unsigned long iter = 0;

	if (argc == 4 && strcmp(argv[1], "fill") == 0)
		return fill(argv[2], argv[3]);
	if (argc != 6) {
		fprintf(stderr, "usage: %s MAP_ID ring|perf epoll|busy|drain PER_WAKEUP PAGES\n"
				"       %s fill PROG_ID FRAME_FILE\n", argv[0], argv[0]);
		return 2;
	}
	fd = bpf_map_get_fd_by_id((uint32_t)atoi(argv[1]));
	if (fd < 0) {
		fprintf(stderr, "map id %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	perf = strcmp(argv[2], "perf") == 0;
	busy = strcmp(argv[3], "busy") == 0;
	per_wakeup = atoi(argv[4]);
	pages = atoi(argv[5]);
	caplat = 4u << 20;
	lat = malloc(caplat * sizeof(*lat));
	if (!lat)
		return 1;
	/* Touch it now, as the Rust side does: no page faults in the callback. */
	memset(lat, 0xff, caplat * sizeof(*lat));
	if (perf) {
		struct perf_event_attr attr = {
			.type = PERF_TYPE_SOFTWARE,
			.config = PERF_COUNT_SW_BPF_OUTPUT,
			.sample_type = PERF_SAMPLE_RAW,
			.sample_period = 1,
			.wakeup_events = per_wakeup > 0 ? per_wakeup : 1,
		};

		pb = perf_buffer__new_raw(fd, pages, &attr, on_perf, NULL, NULL);
		if (!pb) {
			fprintf(stderr, "perf_buffer__new_raw: %s\n", strerror(errno));
			return 1;
		}
	} else {
		rb = ring_buffer__new(fd, on_ring, NULL, NULL);
		if (!rb) {
			fprintf(stderr, "ring_buffer__new: %s\n", strerror(errno));
			return 1;
		}
	}
	getrusage(RUSAGE_SELF, &ru0);
	printf("ready\n");
	fflush(stdout);
	if (strcmp(argv[3], "drain") == 0) {
		int ret = drain(rb, pb);

		ring_buffer__free(rb);
		perf_buffer__free(pb);
		return ret;
	}
	while (!done) {
		if (busy) {
			uint64_t before = delivered;

			if (perf)
				perf_buffer__consume(pb);
			else
				ring_buffer__consume(rb);
			/* xdpwall's busy poll (xdpwall-events, Consumer::poll): a poll
			 * that found nothing pauses, doubling while it keeps finding
			 * nothing (BUSY_BACKOFF). xdpwall's own ring reader also
			 * pauses when it stopped at a record still being written;
			 * libbpf's ring_buffer does not tell, so this one cannot. */
			if (delivered == before) {
				for (unsigned i = 0; i < backoff; i++)
					spin_pause();
				backoff = backoff * 2 > BUSY_BACKOFF_MAX ? BUSY_BACKOFF_MAX : backoff * 2;
			} else {
				backoff = BUSY_BACKOFF_MIN;
			}
			if (++iter % 1024 == 0)
				done = stdin_closed();
		} else {
			if (perf) {
				perf_buffer__poll(pb, 10);
				perf_buffer__consume(pb);
			} else {
				ring_buffer__poll(rb, 10);
				ring_buffer__consume(rb);
			}
			done = stdin_closed();
		}
	}
	/* Producers are done: everything is committed; drain. */
	if (perf)
		perf_buffer__consume(pb);
	else
		ring_buffer__consume(rb);
	getrusage(RUSAGE_SELF, &ru1);
	qsort(lat, nlat, sizeof(*lat), cmp);
	printf("delivered %llu lost_cb %llu p50_ns %llu p99_ns %llu max_ns %llu order %llu maxback_ns %llu percpu %llu "
	       "late %llu maxlate_ns %llu last_ns %llu cpu_ns %llu nvcsw %ld nivcsw %ld\n",
	       (unsigned long long)delivered, (unsigned long long)lost_cb,
	       (unsigned long long)(nlat ? lat[nlat / 2] : 0),
	       (unsigned long long)(nlat ? lat[nlat * 99 / 100] : 0),
	       (unsigned long long)(nlat ? lat[nlat - 1] : 0), (unsigned long long)order,
	       (unsigned long long)maxback, (unsigned long long)percpu, (unsigned long long)late,
	       (unsigned long long)maxlate,
	       (unsigned long long)last_now,
	       (unsigned long long)(tv_ns(ru1.ru_utime) + tv_ns(ru1.ru_stime) - tv_ns(ru0.ru_utime) -
				    tv_ns(ru0.ru_stime)),
	       ru1.ru_nvcsw - ru0.ru_nvcsw, ru1.ru_nivcsw - ru0.ru_nivcsw);
	ring_buffer__free(rb);
	perf_buffer__free(pb);
	return 0;
}
