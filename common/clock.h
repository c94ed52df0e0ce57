/* clock.h - the two clocks the daemons' threads wait by. */
#ifndef PINGYI_CLOCK_H
#define PINGYI_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Milliseconds on the monotonic clock: for measuring how long. */
int64_t clock_ms(void);
/* The moment ms milliseconds from now, as pthread_cond_timedwait() takes it
 * (the real-time clock, the condition variables' default). */
struct timespec clock_deadline(int64_t ms);

#endif
