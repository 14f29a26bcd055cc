// A small pool of worker threads that spin between parallel loops.
//
// Generation runs ~200 matrix-vector products per token, each 20–100 µs long. Handing
// each to libdispatch's `concurrentPerform` cost more than the second thread gained
// (waking a parked thread takes microseconds, and the layers run back to back). Here
// the workers poll a generation counter for a while after each loop, so the next loop
// starts on them within a fraction of a microsecond; after SQ_POOL_SPIN_NS without work
// they sleep on a condition variable and cost nothing.
//
// One loop runs at a time. A caller that finds the pool busy (another thread's loop, or
// a loop started from inside a loop body) runs its loop alone, which is correct, only
// slower.
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <time.h>
#include "CKernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
static inline void cpu_relax(void) { _mm_pause(); }
#elif defined(__aarch64__)
static inline void cpu_relax(void) { __asm__ __volatile__("yield"); }
#else
static inline void cpu_relax(void) {}
#endif

#define SQ_POOL_MAX_WORKERS 63
#define SQ_POOL_SPIN_NS 2000000  // 2 ms: longer than the gap between two layers or tokens
#define SQ_POOL_YIELD_NS 50000   // while spinning, let a thread that shares the core run

// `state` packs the loop's generation (high 32 bits), a closed flag (bit 31) and how
// many workers joined it (low bits). A worker joins by incrementing the count while the
// loop is open; the caller closes the loop once it has no indices left to take, and then
// waits only for the workers that joined. A worker that was asleep or descheduled when the
// loop began therefore never holds it up: it finds the loop closed and skips it.
#define SQ_CLOSED (1ull << 31)

static struct {
    pthread_mutex_t busy;   // held by the caller of the loop in progress
    pthread_mutex_t sleep;  // with `wake`: where idle workers wait
    pthread_cond_t wake;
    int workers;            // threads started so far
    int sleepers;           // workers waiting on `wake` (atomic)
    uint64_t state;         // generation | closed | joined (atomic)
    // The loop in progress: written before `state` announces it, read-only until every
    // worker that joined has counted itself in `done`.
    int runs;               // participants: the caller and at most `active` workers
    int active;             // at most this many workers join
    int done;               // joined workers finished with this loop (atomic)
    void (*fn)(void *, size_t);
    void *ctx;
} pool = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER };

// The indices of a loop are cut into one contiguous run per participant: run r is
// [n·r/runs, n·(r+1)/runs). Each run's state is its next index from the front (low 32
// bits) and its end (high 32 bits), alone on a cache line so that a thread taking from its
// own run does not disturb the others. A participant takes its own run front to back, then
// moves the back half of what another has left to its own run, and so on, so a thread that
// is late or preempted delays nothing (its run is finished by the others) and a thread's
// indices come in a few long ascending stretches (generation's kernels prefetch ahead
// along them).
static struct {
    uint64_t span;  // front | end << 32 (atomic)
    char pad[56];
} runs[SQ_POOL_MAX_WORKERS + 1] __attribute__((aligned(64)));

static int take_front(int r, size_t *i) {
    uint64_t s = __atomic_load_n(&runs[r].span, __ATOMIC_RELAXED);
    for (;;) {
        uint32_t front = (uint32_t)s, end = (uint32_t)(s >> 32);
        if (front >= end) return 0;
        if (__atomic_compare_exchange_n(&runs[r].span, &s, s + 1, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
            *i = front;
            return 1;
        }
    }
}

// Moves the back half of run `victim`'s remaining indices (at least one) to run `self`,
// which is empty; returns 0 if `victim` had none left.
static int steal_half(int self, int victim) {
    uint64_t s = __atomic_load_n(&runs[victim].span, __ATOMIC_RELAXED);
    for (;;) {
        uint32_t front = (uint32_t)s, end = (uint32_t)(s >> 32);
        if (front >= end) return 0;
        uint32_t mid = end - (end - front + 1) / 2;
        if (__atomic_compare_exchange_n(&runs[victim].span, &s, (uint64_t)mid << 32 | front, 1, __ATOMIC_RELAXED,
                                        __ATOMIC_RELAXED)) {
            __atomic_store_n(&runs[self].span, (uint64_t)end << 32 | mid, __ATOMIC_RELAXED);
            return 1;
        }
    }
}

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static inline uint32_t generation_of(uint64_t state) { return (uint32_t)(state >> 32); }

// Participant `self` takes its own run front to back; when it is empty, it moves the back
// half of another's remaining run to its own and goes on, until none are left.
static void take_indices(int self) {
    size_t i;
    for (;;) {
        while (take_front(self, &i)) pool.fn(pool.ctx, i);
        int stole = 0;
        for (int k = 1; k < pool.runs && !stole; k++) stole = steal_half(self, (self + k) % pool.runs);
        if (!stole) return;
    }
}

// Waits until the generation differs from `seen`: spinning (yielding now and then), then
// asleep. Returns the state seen.
static uint64_t wait_for_loop(uint32_t seen) {
    uint64_t start = 0, yielded = 0;
    for (unsigned spins = 0;; spins++) {
        uint64_t s = __atomic_load_n(&pool.state, __ATOMIC_ACQUIRE);
        if (generation_of(s) != seen) return s;
        cpu_relax();
        if ((spins & 255) != 255) continue;
        uint64_t t = now_ns();
        if (start == 0) start = yielded = t;
        if (t - yielded >= SQ_POOL_YIELD_NS) {
            sched_yield();
            yielded = t;
        }
        if (t - start < SQ_POOL_SPIN_NS) continue;
        pthread_mutex_lock(&pool.sleep);
        __atomic_add_fetch(&pool.sleepers, 1, __ATOMIC_SEQ_CST);
        while (generation_of(__atomic_load_n(&pool.state, __ATOMIC_SEQ_CST)) == seen)
            pthread_cond_wait(&pool.wake, &pool.sleep);
        __atomic_sub_fetch(&pool.sleepers, 1, __ATOMIC_SEQ_CST);
        pthread_mutex_unlock(&pool.sleep);
        start = 0;
    }
}

static void *worker_main(void *arg) {
    (void)arg;
    uint32_t seen = 0;
    for (;;) {
        uint64_t s = wait_for_loop(seen);
        seen = generation_of(s);
        // Join if the loop is still open and wants another worker; the compare-exchange
        // fails if it closed (or a newer loop began) in between.
        while (!(s & SQ_CLOSED) && (int)(s & (SQ_CLOSED - 1)) < pool.active) {
            if (__atomic_compare_exchange_n(&pool.state, &s, s + 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_ACQUIRE)) {
                take_indices((int)(s & (SQ_CLOSED - 1)) + 1);
                __atomic_add_fetch(&pool.done, 1, __ATOMIC_RELEASE);
                break;
            }
            if (generation_of(s) != seen) break;
        }
    }
    return NULL;
}

// Starts workers until there are `count` (called with `busy` held).
static void grow(int count) {
    while (pool.workers < count) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int failed = pthread_create(&t, &attr, worker_main, NULL);
        pthread_attr_destroy(&attr);
        if (failed) return;
        pool.workers++;
    }
}

void sq_parallel_for(size_t n, int threads, void (*fn)(void *ctx, size_t i), void *ctx) {
    if (n == 0) return;
    if (threads > SQ_POOL_MAX_WORKERS + 1) threads = SQ_POOL_MAX_WORKERS + 1;
    if ((size_t)threads > n) threads = (int)n;
    if (threads <= 1 || n > UINT32_MAX || pthread_mutex_trylock(&pool.busy) != 0) {
        for (size_t i = 0; i < n; i++) fn(ctx, i);
        return;
    }
    grow(threads - 1);
    pool.runs = threads;
    for (int r = 0; r < threads; r++)
        runs[r].span = (uint64_t)(n * (size_t)(r + 1) / (size_t)threads) << 32 | (uint64_t)(n * (size_t)r / (size_t)threads);
    pool.fn = fn;
    pool.ctx = ctx;
    pool.active = threads - 1;
    pool.done = 0;
    uint64_t next_generation = (uint64_t)(generation_of(pool.state) + 1) << 32;
    __atomic_store_n(&pool.state, next_generation, __ATOMIC_SEQ_CST);  // publishes the fields above
    if (__atomic_load_n(&pool.sleepers, __ATOMIC_SEQ_CST) > 0) {
        pthread_mutex_lock(&pool.sleep);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.sleep);
    }
    take_indices(0);
    int joined = (int)(__atomic_fetch_or(&pool.state, SQ_CLOSED, __ATOMIC_ACQ_REL) & (SQ_CLOSED - 1));
    for (unsigned spins = 1; __atomic_load_n(&pool.done, __ATOMIC_ACQUIRE) < joined; spins++) {
        cpu_relax();
        if ((spins & 4095) == 0) sched_yield();  // a joined worker was descheduled mid-index
    }
    pthread_mutex_unlock(&pool.busy);
}
