/*
 * The Chase-Lev deque: owner order, steal order, growth, and every job taken
 * exactly once while thieves race the owner.
 */
#include "pool/sched/deque.h"

#include "criterion_lsan.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>

static int items[100000];

Test(deque, owner_push_pop_is_lifo) {
    pool_deque_t d;
    cr_assert_eq(pool_deque_init(&d, 4), 0);
    cr_assert_null(pool_deque_pop(&d));
    for (int i = 0; i < 10; i++)
        cr_assert_eq(pool_deque_push(&d, &items[i]), 0);
    for (int i = 9; i >= 0; i--)
        cr_assert_eq(pool_deque_pop(&d), &items[i]);
    cr_assert_null(pool_deque_pop(&d));
    cr_assert_null(pool_deque_steal(&d));
    pool_deque_destroy(&d);
}

Test(deque, steal_is_fifo) {
    pool_deque_t d;
    cr_assert_eq(pool_deque_init(&d, 16), 0);
    for (int i = 0; i < 5; i++)
        pool_deque_push(&d, &items[i]);
    cr_assert_eq(pool_deque_steal(&d), &items[0]);
    cr_assert_eq(pool_deque_steal(&d), &items[1]);
    cr_assert_eq(pool_deque_pop(&d), &items[4]);
    cr_assert_eq(pool_deque_steal(&d), &items[2]);
    cr_assert_eq(pool_deque_pop(&d), &items[3]);
    cr_assert_null(pool_deque_pop(&d));
    cr_assert_null(pool_deque_steal(&d));
    pool_deque_destroy(&d);
}

Test(deque, grows_and_keeps_order) {
    pool_deque_t d;
    cr_assert_eq(pool_deque_init(&d, 1), 0);
    /* Wrap the indices first so that growth copies a wrapped range. */
    for (int i = 0; i < 12; i++)
        pool_deque_push(&d, &items[i]);
    for (int i = 0; i < 12; i++)
        cr_assert_eq(pool_deque_steal(&d), &items[i]);
    for (int i = 0; i < 50000; i++)
        cr_assert_eq(pool_deque_push(&d, &items[i]), 0);
    for (int i = 0; i < 100; i++)
        cr_assert_eq(pool_deque_steal(&d), &items[i]);
    for (int i = 49999; i >= 100; i--)
        cr_assert_eq(pool_deque_pop(&d), &items[i]);
    cr_assert_null(pool_deque_pop(&d));
    pool_deque_destroy(&d);
}

#define NITEMS 100000
#define NTHIEVES 3

static struct {
    pool_deque_t d;
    atomic_int taken[NITEMS];
    atomic_bool done;
    atomic_int total;
} race;

static void take(void *x) {
    int i = (int)((int *)x - items);
    atomic_fetch_add(&race.taken[i], 1);
    atomic_fetch_add(&race.total, 1);
}

static void *thief(void *arg) {
    (void)arg;
    for (;;) {
        bool finished = atomic_load(&race.done);
        void *x = pool_deque_steal(&race.d);
        if (x == POOL_DEQUE_ABORT)
            continue;
        if (x)
            take(x);
        else if (finished)
            return NULL;
    }
}

/* The owner pushes bursts and pops some of each while thieves steal: every
 * item must be taken exactly once. A tiny initial buffer makes the deque
 * grow while thieves read it. */
Test(deque, no_lost_or_duplicated_job_under_contention, .timeout = 120) {
    cr_assert_eq(pool_deque_init(&race.d, 2), 0);
    pthread_t th[NTHIEVES];
    for (int i = 0; i < NTHIEVES; i++)
        pthread_create(&th[i], NULL, thief, NULL);
    int next = 0;
    unsigned seed = 1;
    while (next < NITEMS) {
        int burst = 1 + (int)(rand_r(&seed) % 200);
        for (int k = 0; k < burst && next < NITEMS; k++)
            cr_assert_eq(pool_deque_push(&race.d, &items[next++]), 0);
        int pops = (int)(rand_r(&seed) % (unsigned)(burst + 1));
        for (int k = 0; k < pops; k++) {
            void *x = pool_deque_pop(&race.d);
            if (!x)
                break;
            take(x);
        }
    }
    void *x;
    while ((x = pool_deque_pop(&race.d)))
        take(x);
    atomic_store(&race.done, true);
    for (int i = 0; i < NTHIEVES; i++)
        pthread_join(th[i], NULL);
    cr_assert_eq(atomic_load(&race.total), NITEMS);
    for (int i = 0; i < NITEMS; i++)
        cr_assert_eq(atomic_load(&race.taken[i]), 1, "item %d taken %d times",
                     i, atomic_load(&race.taken[i]));
    pool_deque_destroy(&race.d);
}

/* Owner and thieves fight over the last element again and again. */
Test(deque, last_element_race, .timeout = 120) {
    cr_assert_eq(pool_deque_init(&race.d, 16), 0);
    pthread_t th[NTHIEVES];
    for (int i = 0; i < NTHIEVES; i++)
        pthread_create(&th[i], NULL, thief, NULL);
    for (int i = 0; i < NITEMS; i++) {
        pool_deque_push(&race.d, &items[i]);
        void *x = pool_deque_pop(&race.d);
        if (x)
            take(x);
    }
    atomic_store(&race.done, true);
    for (int i = 0; i < NTHIEVES; i++)
        pthread_join(th[i], NULL);
    cr_assert_eq(atomic_load(&race.total), NITEMS);
    for (int i = 0; i < NITEMS; i++)
        cr_assert_eq(atomic_load(&race.taken[i]), 1);
    pool_deque_destroy(&race.d);
}
