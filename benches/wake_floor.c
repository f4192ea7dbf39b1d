/* The machine's timer floor: how late a plain C thread wakes for absolute deadlines 100 us
 * apart (clock_nanosleep, CLOCK_MONOTONIC, 1 ns timer slack), with nothing else to do.
 * ratebench's send/release lag cannot be better than this on the same machine; compare the
 * two when a run's lag looks high. Built and run by benches/load.sh:
 *     gcc -O2 -o /tmp/wake_floor benches/wake_floor.c && taskset -c 0 /tmp/wake_floor 10
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <time.h>

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    const long long gap = 100000; /* 100 us: 10k wake-ups a second, as at -R10k -t1 */
    long long seconds = argc > 1 ? atoll(argv[1]) : 10;
    long long n = seconds * 1000000000LL / gap;
    long long *late = malloc(n * sizeof *late);
    if (!late) return 1;
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    long long due = now_ns();
    for (long long i = 0; i < n; i++) {
        due += gap;
        struct timespec t = {due / 1000000000LL, due % 1000000000LL};
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL);
        late[i] = now_ns() - due;
    }
    qsort(late, n, sizeof *late, cmp);
    printf("wake-up lateness, %lld deadlines 100 us apart: p50 %.0f us, p99 %.0f us, "
           "p99.9 %.0f us, max %.0f us\n",
           n, late[n / 2] / 1e3, late[n * 99 / 100] / 1e3, late[n * 999 / 1000] / 1e3,
           late[n - 1] / 1e3);
    free(late);
    return 0;
}
