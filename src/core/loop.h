/* loop.h - the event loop: epoll readiness callbacks, a timer heap, deferred work, wakeups. */
#ifndef LOOPKIT_CORE_LOOP_H
#define LOOPKIT_CORE_LOOP_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#define LOOP_READ  1u
#define LOOP_WRITE 2u
#define LOOP_ERROR 4u /* reported with READ|WRITE on EPOLLERR/EPOLLHUP */
#define LOOP_RDHUP                                                                  \
	16u /* reported with READ when the peer has shut down writing (EPOLLRDHUP): \
	       what is queued is the last, then a read returns 0 */
#define LOOP_EXCLUSIVE                                                      \
	8u /* with loop_io_start only: one of the loops watching this       \
	      descriptor wakes per event (EPOLLEXCLUSIVE; a listener shared \
	      by threads); such an io's mask cannot change, only stop */

#define LOOP_TIMER_OVERDUE ((size_t)-1) /* armed, in the overflow list (heap could not grow) */

struct loop;
struct loop_io;
struct loop_timer;

typedef void (*loop_io_cb)(struct loop *l, struct loop_io *io, unsigned events);
typedef void (*loop_timer_cb)(struct loop *l, struct loop_timer *t);
typedef void (*loop_fn)(struct loop *l, void *data);

/* A watched descriptor. Embed it in the owner's struct; the loop never frees it. */
struct loop_io {
	int fd;        /* -1 when not watched */
	unsigned mask; /* LOOP_READ | LOOP_WRITE currently wanted */
	loop_io_cb cb;
	void *data;
};

/* A one-shot timer on the monotonic clock. Embed it; re-arm from its callback. */
struct loop_timer {
	uint64_t when; /* deadline, loop_now_us() units */
	size_t idx;    /* position in the heap + 1; LOOP_TIMER_OVERDUE; 0 when not armed */
	struct loop_timer *next_overdue;
	loop_timer_cb cb;
	void *data;
};

/* Creates a loop. Returns NULL and fills err on failure. */
struct loop *loop_new(char *err, size_t errlen);
/* Runs what is still deferred, then frees the loop (not the ios or timers embedded
 * elsewhere). */
void loop_free(struct loop *l);

/* Runs until loop_stop(); returns 0, or -1 when epoll_wait fails unexpectedly. */
int loop_run(struct loop *l);
/* Makes loop_run return after the current iteration. Loop thread only. */
void loop_stop(struct loop *l);

/* Starts watching fd with mask. Returns 0 or -1 with errno. */
int loop_io_start(struct loop *l, struct loop_io *io, int fd, unsigned mask, loop_io_cb cb, void *data);
/* Changes the wanted events (no syscall when unchanged). Returns 0 or -1 with errno. */
int loop_io_set(struct loop *l, struct loop_io *io, unsigned mask);
/* Stops watching; pending events for io in the current batch are dropped. Does not
 * close the fd. Safe on an io that is not watched. */
void loop_io_stop(struct loop *l, struct loop_io *io);
/* Says that the process starts children (fork, posix_spawn) while l runs: each child
 * holds copies of every descriptor until its exec, so loop_io_close deregisters before
 * it closes. */
void loop_set_spawns(struct loop *l);
/* Busy polling (0, the default: off). Once a sleep ended within us microseconds, the
 * next waits first poll (a zero timeout) for up to us before they sleep, until a poll
 * finds nothing in that time. Waking a sleeping thread costs the waker a cross-CPU
 * interrupt (on a virtual machine, an exit to the hypervisor) on every event; a loop
 * that is woken that often spends less in polling its idle CPU. Between polls it
 * yields the CPU to any other thread that wants it. Idle, it sleeps. */
void loop_set_busy_poll(struct loop *l, unsigned us);
/* Is io reported ready in the batch being dispatched, its callback still to run? Also
 * 1 when that batch was full (more may be ready than it holds); 0 outside a dispatch.
 * For a watcher that must see its events before the callbacks of descriptors that
 * became ready after it (epoll does not always report them in that order). */
int loop_io_pending(const struct loop *l, const struct loop_io *io);
/* Is l running the event epoll reported for io's descriptor (in io's callback, or in
 * the callback of whoever watched it before a loop_io_move)? Bytes read otherwise (at
 * accept, on a timer) were not reported: what became ready before them, an inotify
 * queue, may not be in this batch yet. */
int loop_io_reported(const struct loop *l, const struct loop_io *io);
/* Is the event being dispatched the only one its batch holds (nobody else was ready
 * when the loop woke)? A writer may then take a larger turn without keeping anyone
 * waiting but what arrives during it. 0 outside a dispatch. */
int loop_batch_alone(const struct loop *l);
/* Stops watching and closes the fd in one step: close(2) drops the epoll entry, so
 * this saves the EPOLL_CTL_DEL (only valid when the fd was never duplicated, in this
 * process or a child: see loop_set_spawns). */
void loop_io_close(struct loop *l, struct loop_io *io);
/* Hands from's descriptor to to (with a new mask, callback and data), with no syscall
 * when the mask is the same; from is left unwatched. Events of this batch still waiting
 * for the descriptor are dropped (level-triggered, they come again). Returns 0 or -1
 * with errno. */
int loop_io_move(struct loop *l, struct loop_io *from, struct loop_io *to, unsigned mask, loop_io_cb cb,
                 void *data);

void loop_timer_init(struct loop_timer *t, loop_timer_cb cb, void *data);
/* Arms (or re-arms) t to fire ms milliseconds from now. */
void loop_timer_start(struct loop *l, struct loop_timer *t, uint64_t ms);
/* The same in microseconds. */
void loop_timer_start_us(struct loop *l, struct loop_timer *t, uint64_t us);
/* Disarms t; safe when not armed and from inside any callback. */
void loop_timer_stop(struct loop *l, struct loop_timer *t);
static inline int loop_timer_armed(const struct loop_timer *t)
{
	return t->idx != 0;
}
/* When an armed t fires, in loop_now() units (ms). */
static inline uint64_t loop_timer_due_ms(const struct loop_timer *t)
{
	return t->when / 1000;
}

/* Refreshes the loop's time now (it is read once per iteration): for a timer armed
 * after long work in one turn, or before the first, that must count from now. */
void loop_touch(struct loop *l);
/* Milliseconds on the monotonic clock, refreshed once per iteration. */
uint64_t loop_now(const struct loop *l);
/* The same instant in microseconds. */
uint64_t loop_now_us(const struct loop *l);
/* Microseconds on the monotonic clock, read now. */
uint64_t loop_clock_us(void);

/* Runs fn(l, data) after the current batch of events, when no callback of this batch
 * can still touch the memory: the place to free connections. Returns 0 or -1 (ENOMEM). */
int loop_defer(struct loop *l, loop_fn fn, void *data);

/* Sets the callback run in the loop thread after loop_wake() from any thread. */
int loop_wake_init(struct loop *l, loop_fn fn, void *data);
/* Thread-safe and async-signal-safe: schedules the wake callback. */
void loop_wake(struct loop *l);
/* Thread-safe: runs fn(l, data) in l's thread at its next turn, in the order posted
 * (if the loop is freed first, loop_free runs it). Not async-signal-safe. Returns 0,
 * or -1 with ENOMEM (then fn will not run). */
int loop_post(struct loop *l, loop_fn fn, void *data);

/* Delivers the signals in set (which the caller has blocked in every thread) to fn,
 * in the loop thread, through a signalfd. Returns 0 or -1 with errno. */
int loop_signal_init(struct loop *l, const sigset_t *set, void (*fn)(struct loop *, int signo, void *),
                     void *data);

#endif
