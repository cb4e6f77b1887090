/* loop.c - epoll event loop with a binary min-heap of timers, deferred calls and wakeups. */
#include "core/loop.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#define LOOP_MAX_EVENTS  256
#define LOOP_TIMER_BATCH 256 /* timers run per turn at most */
#define LOOP_POST_BATCH  256 /* posted calls run per turn at most */

struct loop_deferred {
	loop_fn fn;
	void *data;
};

struct loop {
	int epfd;
	int stop;
	uint64_t now;  /* µs on the monotonic clock, read once per iteration */
	int no_pwait2; /* epoll_pwait2 is missing (kernel < 5.11): ms timeouts */
	struct loop_timer **heap;
	size_t nheap, capheap;
	struct loop_timer *overdue; /* armed timers the heap had no room for: fire next turn */
	struct loop_deferred *defer;
	size_t ndefer, capdefer;
	struct loop_io wake_io; /* an eventfd: loop_wake and loop_post from other threads */
	loop_fn wake_fn;
	void *wake_data;
	atomic_int woken;             /* loop_wake() was called since the last wake_cb */
	pthread_mutex_t post_lock;    /* guards posted */
	struct loop_deferred *posted; /* calls from other threads, run in this one */
	size_t nposted, capposted;
	int cur, nev; /* the batch being dispatched: events[cur + 1 .. nev) wait */
	/* Who watches each descriptor: epoll reports the descriptor number and this table
	 * names its loop_io, so handing a watched descriptor to another loop_io with the
	 * same mask costs no syscall (the sniffer's hand-over to HTTP or FTP). */
	struct loop_io **byfd;
	size_t capfd;
	int spawns;       /* loop_set_spawns: children may hold copies of its descriptors */
	unsigned busy_us; /* loop_set_busy_poll */
	int busy;         /* the last sleep was that short: poll first */
	struct loop_io sig_io;
	void (*sig_fn)(struct loop *, int, void *);
	void *sig_data;
	struct epoll_event events[LOOP_MAX_EVENTS];
};

uint64_t loop_clock_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void wake_cb(struct loop *l, struct loop_io *io, unsigned events);

struct loop *loop_new(char *err, size_t errlen)
{
	struct loop *l = calloc(1, sizeof(*l));
	if (!l) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		snprintf(err, errlen, "epoll_create1: %s", strerror(errno));
		free(l);
		return NULL;
	}
	l->wake_io.fd = -1;
	l->sig_io.fd = -1;
	l->now = loop_clock_us();
	pthread_mutex_init(&l->post_lock, NULL);
	int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (fd < 0 || loop_io_start(l, &l->wake_io, fd, LOOP_READ, wake_cb, NULL) < 0) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		close(l->epfd);
		pthread_mutex_destroy(&l->post_lock);
		free(l);
		return NULL;
	}
	return l;
}

static void run_deferred(struct loop *l);
static int run_posted(struct loop *l, size_t max);
static void kick(struct loop *l);

void loop_free(struct loop *l)
{
	if (!l)
		return;
	while (run_posted(l, LOOP_POST_BATCH))
		;        /* calls posted after the last turn still run, in this thread */
	run_deferred(l); /* frees queued after the last turn, e.g. by a final cleanup */
	if (l->wake_io.fd >= 0)
		close(l->wake_io.fd);
	if (l->sig_io.fd >= 0)
		close(l->sig_io.fd);
	close(l->epfd);
	free(l->heap);
	free(l->defer);
	free(l->posted);
	free(l->byfd);
	pthread_mutex_destroy(&l->post_lock);
	free(l);
}

void loop_stop(struct loop *l)
{
	l->stop = 1;
}

void loop_touch(struct loop *l)
{
	l->now = loop_clock_us();
}

uint64_t loop_now(const struct loop *l)
{
	return l->now / 1000;
}

uint64_t loop_now_us(const struct loop *l)
{
	return l->now;
}

static uint32_t epoll_mask(unsigned mask)
{
	/* EPOLLEXCLUSIVE takes no EPOLLRDHUP (EINVAL): a listener needs only EPOLLIN. */
	if (mask & LOOP_EXCLUSIVE)
		return EPOLLEXCLUSIVE | ((mask & LOOP_READ) ? EPOLLIN : 0) |
		       ((mask & LOOP_WRITE) ? EPOLLOUT : 0);
	return ((mask & LOOP_READ) ? EPOLLIN | EPOLLRDHUP : 0) | ((mask & LOOP_WRITE) ? EPOLLOUT : 0);
}

/* An event's descriptor; a forgotten event's is NO_FD. */
#define NO_FD UINT64_MAX

/* Makes room for fd in the table. Returns 0 or -1 (EBADF, ENOMEM). */
static int byfd_room(struct loop *l, int fd)
{
	if (fd < 0) {
		errno = EBADF;
		return -1;
	}
	if ((size_t)fd < l->capfd)
		return 0;
	size_t cap = l->capfd ? l->capfd : 64;
	while (cap <= (size_t)fd)
		cap *= 2;
	struct loop_io **t = realloc(l->byfd, cap * sizeof(*t));
	if (!t) {
		errno = ENOMEM;
		return -1;
	}
	memset(t + l->capfd, 0, (cap - l->capfd) * sizeof(*t));
	l->byfd = t;
	l->capfd = cap;
	return 0;
}

int loop_io_start(struct loop *l, struct loop_io *io, int fd, unsigned mask, loop_io_cb cb, void *data)
{
	struct epoll_event ev = {.events = epoll_mask(mask), .data.u64 = (uint64_t)fd};
	if (byfd_room(l, fd) < 0) {
		io->fd = -1;
		return -1;
	}
	io->fd = fd;
	io->mask = mask;
	io->cb = cb;
	io->data = data;
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		io->fd = -1;
		return -1;
	}
	l->byfd[fd] = io;
	return 0;
}

int loop_io_set(struct loop *l, struct loop_io *io, unsigned mask)
{
	if (io->fd < 0 || io->mask == mask)
		return 0;
	struct epoll_event ev = {.events = epoll_mask(mask), .data.u64 = (uint64_t)io->fd};
	if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, io->fd, &ev) < 0)
		return -1;
	io->mask = mask;
	return 0;
}

/* Drops the events still waiting in this batch for fd: after a stop or a close, the
 * number may be watched again (a new connection, FTP's next data connection) and must
 * not be handed the old descriptor's readiness. */
static void forget_pending(struct loop *l, int fd)
{
	for (int i = l->cur + 1; i < l->nev; i++)
		if (l->events[i].data.u64 == (uint64_t)fd)
			l->events[i].data.u64 = NO_FD;
}

/* The descriptor no longer watched: out of the table, its waiting events dropped. */
static void unwatched(struct loop *l, struct loop_io *io)
{
	l->byfd[io->fd] = NULL;
	forget_pending(l, io->fd);
	io->fd = -1;
	io->mask = 0;
}

void loop_set_spawns(struct loop *l)
{
	l->spawns = 1;
}

void loop_set_busy_poll(struct loop *l, unsigned us)
{
	l->busy_us = us;
	l->busy = 0;
}

/* One wait of epoll: wait_us < 0 forever, 0 a poll. Returns the count, or -1 with errno
 * (ENOSYS from epoll_pwait2 is handled here). */
static int wait_events(struct loop *l, int64_t wait_us)
{
	if (!l->no_pwait2) {
		struct timespec ts = {(time_t)(wait_us / 1000000), (long)(wait_us % 1000000) * 1000};
		int n = epoll_pwait2(l->epfd, l->events, LOOP_MAX_EVENTS, wait_us < 0 ? NULL : &ts, NULL);
		if (n >= 0 || errno != ENOSYS)
			return n;
		l->no_pwait2 = 1;
	}
	return epoll_wait(l->epfd, l->events, LOOP_MAX_EVENTS,
	                  wait_us < 0 ? -1 : (int)((wait_us + 999) / 1000));
}

/* The wait of one turn, with busy polling (loop_set_busy_poll) when it is on. */
static int wait_turn(struct loop *l, int64_t wait_us)
{
	if (!l->busy_us || wait_us == 0)
		return wait_events(l, wait_us);
	uint64_t start = loop_clock_us(), spent = 0;
	if (l->busy) {
		uint64_t spin =
		        wait_us > 0 && (uint64_t)wait_us < l->busy_us ? (uint64_t)wait_us : l->busy_us;
		do {
			int n = wait_events(l, 0);
			if (n != 0)
				return n;
			sched_yield(); /* polls only with a CPU nobody else wants */
			spent = loop_clock_us() - start;
		} while (spent < spin);
		l->busy = 0; /* nothing came for that long: the next wait sleeps */
		if (wait_us > 0 && spent >= (uint64_t)wait_us)
			return 0; /* a timer is due */
	}
	uint64_t slept = loop_clock_us();
	int n = wait_events(l, wait_us < 0 ? -1 : wait_us - (int64_t)spent);
	l->busy = n > 0 && loop_clock_us() - slept < l->busy_us;
	return n;
}

int loop_io_pending(const struct loop *l, const struct loop_io *io)
{
	if (io->fd < 0)
		return 0;
	if (l->nev == LOOP_MAX_EVENTS)
		return 1;
	for (int i = l->cur + 1; i < l->nev; i++)
		if (l->events[i].data.u64 == (uint64_t)io->fd)
			return 1;
	return 0;
}

int loop_batch_alone(const struct loop *l)
{
	return l->nev == 1 && l->cur == 0;
}

int loop_io_reported(const struct loop *l, const struct loop_io *io)
{
	return io->fd >= 0 && l->cur < l->nev && l->events[l->cur].data.u64 == (uint64_t)io->fd;
}

void loop_io_stop(struct loop *l, struct loop_io *io)
{
	if (io->fd < 0)
		return;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, io->fd, NULL);
	unwatched(l, io);
}

void loop_io_close(struct loop *l, struct loop_io *io)
{
	if (io->fd < 0)
		return;
	/* close() drops the registration only with the last reference to the file, and a
	 * child between fork and exec (posix_spawn: the parent runs on before the child's
	 * close-on-exec) may hold one; its events would name freed io. A loop of a
	 * process that starts children deregisters first; the others save the syscall
	 * (one per connection of a conn-per-request load). */
	if (l->spawns)
		epoll_ctl(l->epfd, EPOLL_CTL_DEL, io->fd, NULL);
	close(io->fd);
	unwatched(l, io);
}

int loop_io_move(struct loop *l, struct loop_io *from, struct loop_io *to, unsigned mask, loop_io_cb cb,
                 void *data)
{
	struct epoll_event ev = {.events = epoll_mask(mask), .data.u64 = (uint64_t)from->fd};
	if (from->fd < 0) {
		errno = EBADF;
		return -1;
	}
	if (mask != from->mask && epoll_ctl(l->epfd, EPOLL_CTL_MOD, from->fd, &ev) < 0)
		return -1;
	int fd = from->fd;
	/* Level-triggered: readiness dropped here is reported again next turn. */
	unwatched(l, from);
	to->fd = fd;
	to->mask = mask;
	to->cb = cb;
	to->data = data;
	l->byfd[fd] = to;
	return 0;
}

/* Timer heap: heap[i]->idx == i + 1. */
static void heap_swap(struct loop *l, size_t a, size_t b)
{
	struct loop_timer *t = l->heap[a];
	l->heap[a] = l->heap[b];
	l->heap[b] = t;
	l->heap[a]->idx = a + 1;
	l->heap[b]->idx = b + 1;
}

static void heap_up(struct loop *l, size_t i)
{
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (l->heap[p]->when <= l->heap[i]->when)
			break;
		heap_swap(l, p, i);
		i = p;
	}
}

static void heap_down(struct loop *l, size_t i)
{
	for (;;) {
		size_t c = 2 * i + 1, m = i;
		if (c < l->nheap && l->heap[c]->when < l->heap[m]->when)
			m = c;
		if (c + 1 < l->nheap && l->heap[c + 1]->when < l->heap[m]->when)
			m = c + 1;
		if (m == i)
			break;
		heap_swap(l, i, m);
		i = m;
	}
}

void loop_timer_init(struct loop_timer *t, loop_timer_cb cb, void *data)
{
	t->when = 0;
	t->idx = 0;
	t->cb = cb;
	t->data = data;
}

void loop_timer_stop(struct loop *l, struct loop_timer *t)
{
	if (!t->idx)
		return;
	if (t->idx == LOOP_TIMER_OVERDUE) {
		for (struct loop_timer **p = &l->overdue; *p; p = &(*p)->next_overdue) {
			if (*p == t) {
				*p = t->next_overdue;
				break;
			}
		}
		t->idx = 0;
		return;
	}
	size_t i = t->idx - 1;
	t->idx = 0;
	l->nheap--;
	if (i == l->nheap)
		return;
	l->heap[i] = l->heap[l->nheap];
	l->heap[i]->idx = i + 1;
	heap_down(l, i);
	heap_up(l, i);
}

void loop_timer_start(struct loop *l, struct loop_timer *t, uint64_t ms)
{
	loop_timer_start_us(l, t, ms * 1000);
}

void loop_timer_start_us(struct loop *l, struct loop_timer *t, uint64_t us)
{
	loop_timer_stop(l, t);
	t->when = l->now + us;
	if (l->nheap == l->capheap) {
		size_t cap = l->capheap ? l->capheap * 2 : 64;
		struct loop_timer **h = realloc(l->heap, cap * sizeof(*h));
		if (!h) {
			/* Without memory the deadline cannot be kept exactly; fire it on the
			 * next turn instead of never, so no state waits forever. */
			t->idx = LOOP_TIMER_OVERDUE;
			t->next_overdue = l->overdue;
			l->overdue = t;
			return;
		}
		l->heap = h;
		l->capheap = cap;
	}
	l->heap[l->nheap] = t;
	t->idx = ++l->nheap;
	heap_up(l, l->nheap - 1);
}

int loop_defer(struct loop *l, loop_fn fn, void *data)
{
	if (l->ndefer == l->capdefer) {
		size_t cap = l->capdefer ? l->capdefer * 2 : 64;
		struct loop_deferred *d = realloc(l->defer, cap * sizeof(*d));
		if (!d)
			return -1;
		l->defer = d;
		l->capdefer = cap;
	}
	l->defer[l->ndefer].fn = fn;
	l->defer[l->ndefer].data = data;
	l->ndefer++;
	return 0;
}

static void run_deferred(struct loop *l)
{
	/* A deferred call may defer more; run until empty. */
	for (size_t i = 0; i < l->ndefer; i++)
		l->defer[i].fn(l, l->defer[i].data);
	l->ndefer = 0;
}

static void run_timers(struct loop *l)
{
	/* At most the timers armed now: one re-armed with 0 ms from its own callback
	 * waits for the next turn instead of starving every descriptor. And at most
	 * LOOP_TIMER_BATCH: when thousands fall due together (5,000 sniff windows), the
	 * descriptors get their turn in between. */
	size_t budget = l->nheap < LOOP_TIMER_BATCH ? l->nheap : LOOP_TIMER_BATCH;
	while (budget-- && l->nheap && l->heap[0]->when <= l->now) {
		struct loop_timer *t = l->heap[0];
		loop_timer_stop(l, t);
		t->cb(l, t);
	}
	while (l->overdue) {
		struct loop_timer *t = l->overdue;
		l->overdue = t->next_overdue;
		t->idx = 0;
		t->cb(l, t);
	}
}

/* Runs up to max calls posted from other threads, oldest first; returns 1 when more
 * wait. Bounded like the timers: when a helper thread answers thousands at once (5,000
 * peer lookups), the descriptors get their turn in between. */
static int run_posted(struct loop *l, size_t max)
{
	struct loop_deferred batch[LOOP_POST_BATCH];
	if (max > LOOP_POST_BATCH)
		max = LOOP_POST_BATCH;
	pthread_mutex_lock(&l->post_lock);
	size_t n = l->nposted < max ? l->nposted : max;
	if (n)
		memcpy(batch, l->posted, n * sizeof(*batch));
	l->nposted -= n;
	if (l->nposted)
		memmove(l->posted, l->posted + n, l->nposted * sizeof(*batch));
	int more = l->nposted > 0;
	if (!more) {
		free(l->posted);
		l->posted = NULL;
		l->capposted = 0;
	}
	pthread_mutex_unlock(&l->post_lock);
	for (size_t i = 0; i < n; i++)
		batch[i].fn(l, batch[i].data);
	return more;
}

static void wake_cb(struct loop *l, struct loop_io *io, unsigned events)
{
	uint64_t v;
	while (read(io->fd, &v, sizeof(v)) < 0 && errno == EINTR)
		;
	if (run_posted(l, LOOP_POST_BATCH))
		kick(l); /* the rest next turn, after the descriptors */
	if (atomic_exchange(&l->woken, 0) && l->wake_fn)
		l->wake_fn(l, l->wake_data);
}

int loop_wake_init(struct loop *l, loop_fn fn, void *data)
{
	l->wake_fn = fn;
	l->wake_data = data;
	return 0;
}

static void kick(struct loop *l)
{
	uint64_t one = 1;
	ssize_t r = write(l->wake_io.fd, &one, sizeof(one));
	(void)r; /* EAGAIN means a wakeup is already pending */
}

void loop_wake(struct loop *l)
{
	atomic_store(&l->woken, 1);
	kick(l);
}

int loop_post(struct loop *l, loop_fn fn, void *data)
{
	pthread_mutex_lock(&l->post_lock);
	if (l->nposted == l->capposted) {
		size_t cap = l->capposted ? l->capposted * 2 : 16;
		struct loop_deferred *d = realloc(l->posted, cap * sizeof(*d));
		if (!d) {
			pthread_mutex_unlock(&l->post_lock);
			errno = ENOMEM;
			return -1;
		}
		l->posted = d;
		l->capposted = cap;
	}
	l->posted[l->nposted].fn = fn;
	l->posted[l->nposted].data = data;
	l->nposted++;
	pthread_mutex_unlock(&l->post_lock);
	kick(l);
	return 0;
}

static void signal_cb(struct loop *l, struct loop_io *io, unsigned events)
{
	struct signalfd_siginfo si;
	while (read(io->fd, &si, sizeof(si)) == (ssize_t)sizeof(si))
		l->sig_fn(l, (int)si.ssi_signo, l->sig_data);
}

int loop_signal_init(struct loop *l, const sigset_t *set, void (*fn)(struct loop *, int, void *), void *data)
{
	int fd = signalfd(-1, set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return -1;
	l->sig_fn = fn;
	l->sig_data = data;
	if (loop_io_start(l, &l->sig_io, fd, LOOP_READ, signal_cb, NULL) < 0) {
		close(fd);
		return -1;
	}
	return 0;
}

int loop_run(struct loop *l)
{
	l->stop = 0;
	l->now = loop_clock_us(); /* (timers armed before this counted from loop_new or loop_touch) */
	while (!l->stop) {
		/* The wait in µs: timers are kept to the microsecond (epoll_pwait2), so a
		 * 1 ms deadline is 1 ms, not anything from 0 to 2. */
		int64_t wait_us = -1;
		if (l->ndefer || l->overdue)
			wait_us = 0;
		else if (l->nheap) {
			uint64_t now = loop_clock_us();
			uint64_t when = l->heap[0]->when;
			wait_us = when <= now ? 0 : (int64_t)(when - now > 60000000 ? 60000000 : when - now);
		}
		int n = wait_turn(l, wait_us);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		l->now = loop_clock_us();
		l->nev = n;
		for (l->cur = 0; l->cur < n; l->cur++) {
			uint64_t fd = l->events[l->cur].data.u64;
			struct loop_io *io = fd < l->capfd ? l->byfd[fd] : NULL;
			uint32_t e = l->events[l->cur].events;
			unsigned ev = 0;
			if (!io || io->fd != (int)fd)
				continue; /* stopped by an earlier callback in this batch */
			if (e & (EPOLLIN | EPOLLRDHUP))
				ev |= LOOP_READ;
			if (e & EPOLLRDHUP)
				ev |= LOOP_RDHUP;
			if (e & EPOLLOUT)
				ev |= LOOP_WRITE;
			if (e & (EPOLLERR | EPOLLHUP))
				ev |= LOOP_READ | LOOP_WRITE | LOOP_ERROR;
			io->cb(l, io, ev);
		}
		l->nev = l->cur = 0;
		run_timers(l);
		run_deferred(l);
	}
	run_deferred(l);
	return 0;
}
