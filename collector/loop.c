/* loop.c - the thread that runs libmicrohttpd's event loop.
 *
 * libmicrohttpd runs in "external epoll" mode: this thread waits (poll)
 * on its epoll descriptor, which is ready when one of its sockets is, and
 * on a wake-up of ours, which the writer sends with each committed batch;
 * then it resumes the batches' connections and calls MHD_run(), which does
 * not block and answers them. The wait is libmicrohttpd's own timeout (for
 * its idle connections), at most a second.
 *
 * The writer hands its batches over rather than resume them itself:
 * MHD_resume_connection takes a lock that MHD_run holds while it looks
 * through every suspended connection, and the writer, resuming a batch
 * one connection at a time, blocked on it ~200 times a second at 500
 * connections, each time waiting for a core again.
 *
 * Why not libmicrohttpd's own thread: with it (0.9.75), about one 10 s run
 * in ten at 500 connections in make bench stalled for seconds. The ballots
 * were committed and their connections resumed, the writer idle, and the
 * thread asleep in epoll_wait with a 15 s timeout while ~250 resumed
 * connections waited for their answers (seen with gdb); throughput fell
 * to 23-40k/s. Where its loop loses the wake-up was not pinned down. In
 * this mode none of some 45 runs stalled, and the throughput rose ~7%.
 *
 * The loop thread is the only one that calls into the daemon while it
 * runs, so it also quiesces it (stops accepting) when shutdown begins. */
#include "col.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/log.h"

enum { WAIT_MAX_MS = 1000 };

enum order { RUN, QUIESCE, STOP };

static struct MHD_Daemon *mhd;
static unsigned connection_limit;
static int epoll_fd, wake_fd = -1;
static atomic_int order;
static pthread_t thread;
static pthread_mutex_t committed_lock = PTHREAD_MUTEX_INITIALIZER;
static col_jobs committed;           /* batches to resume */

/* Resume the connections of the batches handed over since the last run. */
static void resume_committed(void)
{
	pthread_mutex_lock(&committed_lock);
	col_job *j = col_jobs_take(&committed).head;
	pthread_mutex_unlock(&committed_lock);
	/* Resuming hands a job back to its connection's handler, which answers
	 * and frees it: next is read first. */
	for (col_job *next; j; j = next) {
		next = j->next;
		MHD_resume_connection(j->conn);
	}
}

static unsigned connections(void)
{
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(mhd, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
	return info ? info->num_connections : 0;
}

/* How long to wait after a run. At the connection limit libmicrohttpd
 * takes the listen socket out of its epoll set and puts it back only at the
 * start of a run: a run that freed a place is followed by another at once,
 * or the next client would wait for an unrelated event (up to a second). */
static int wait_ms(bool freed_a_place)
{
	MHD_UNSIGNED_LONG_LONG ms;
	if (freed_a_place)
		return 0;
	if (MHD_get_timeout(mhd, &ms) != MHD_YES || ms > WAIT_MAX_MS)
		return WAIT_MAX_MS;
	return (int)ms;
}

static void *loop_main(void *arg)
{
	(void)arg;
	struct pollfd fds[2] = { { .fd = epoll_fd, .events = POLLIN }, { .fd = wake_fd, .events = POLLIN } };
	bool quiesced = false;
	unsigned now_open = connections();   /* changes only inside MHD_run() */
	for (;;) {
		/* Read before the run: a batch handed over before the stop is
		 * answered. */
		enum order o = atomic_load(&order);
		bool at_limit = now_open >= connection_limit;
		resume_committed();
		MHD_run(mhd);
		now_open = connections();
		bool freed_a_place = at_limit && now_open < connection_limit;
		if (o == STOP)
			break;
		if (o == QUIESCE && !quiesced) {
			/* Closed at once: a client connecting during the drain is
			 * refused rather than left waiting in the backlog. */
			MHD_socket listener = MHD_quiesce_daemon(mhd);
			if (listener != MHD_INVALID_SOCKET)
				close(listener);
			quiesced = true;
		}
		uint64_t wakes;
		if (poll(fds, 2, wait_ms(freed_a_place)) > 0 && fds[1].revents && read(wake_fd, &wakes, sizeof wakes) < 0)
			log_error("cannot read the HTTP thread's wake-up: %s", strerror(errno));
	}
	return NULL;
}

int col_loop_start(struct MHD_Daemon *d, unsigned limit)
{
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_EPOLL_FD);
	if (!info)
		return -1;
	mhd = d;
	connection_limit = limit;
	epoll_fd = info->epoll_fd;
	wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (wake_fd < 0)
		return -1;
	if (pthread_create(&thread, NULL, loop_main, NULL) != 0) {
		close(wake_fd);
		return -1;
	}
	pthread_setname_np(thread, "http");
	return 0;
}

static void wake(void)
{
	uint64_t one = 1;
	if (write(wake_fd, &one, sizeof one) < 0) {
		/* EAGAIN: the counter is full, so a wake-up is waiting anyway */
	}
}

void col_loop_answer(col_jobs batch)
{
	pthread_mutex_lock(&committed_lock);
	col_jobs_append(&committed, batch);
	pthread_mutex_unlock(&committed_lock);
	wake();
}

static void tell(enum order o)
{
	atomic_store(&order, o);
	wake();
}

void col_loop_quiesce(void)
{
	tell(QUIESCE);
}

void col_loop_stop(void)
{
	tell(STOP);
	pthread_join(thread, NULL);
	/* wake_fd stays open: the writer, still winding down, may write to it,
	 * and a closed descriptor's number could be another file's by then. */
}
