/* clock.h - the two clocks the daemons' threads wait by. */
#ifndef PINGYI_CLOCK_H
#define PINGYI_CLOCK_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* Milliseconds on the monotonic clock: for measuring how long. */
int64_t clock_ms(void);
/* Set up a condition variable whose timed waits go by the monotonic clock,
 * so that setting the system's clock back cannot stretch them. */
void clock_cond_init(pthread_cond_t *c);
/* The moment ms milliseconds from now, for pthread_cond_timedwait() on a
 * condition variable set up by clock_cond_init. */
struct timespec clock_deadline(int64_t ms);

#endif
