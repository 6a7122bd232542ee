/*
 * The one intrusive list (pool/sched/list.h): insertion at either end,
 * removal from the middle, popping, walking, and moving a whole list.
 */
#include "pool/sched/list.h"

#include <criterion/criterion.h>
#include <stddef.h>

typedef struct item {
    int v;
    pool_list link;
} item;

static int value(pool_list *n) {
    return POOL_LIST_ENTRY(n, item, link)->v;
}

/* Checks that l holds exactly want[0..n-1], in order, both ways round. */
static void expect(const pool_list *l, const int *want, size_t n) {
    size_t i = 0;
    for (pool_list *p = pool_list_first(l); p; p = pool_list_next(l, p), i++) {
        cr_assert_lt(i, n, "more than %zu elements", n);
        cr_assert_eq(value(p), want[i], "element %zu", i);
        cr_assert_eq(p->next->prev, p, "broken link after element %zu", i);
    }
    cr_assert_eq(i, n, "%zu elements, not %zu", i, n);
    i = n;
    for (pool_list *p = l->prev; p != l; p = p->prev)
        cr_assert_eq(value(p), want[--i], "backwards, element %zu", i);
    cr_assert_eq(pool_list_empty(l), n == 0);
}

Test(list, empty) {
    pool_list l;
    pool_list_init(&l);
    cr_assert(pool_list_empty(&l));
    cr_assert_null(pool_list_first(&l));
    cr_assert_null(pool_list_pop(&l));
    expect(&l, NULL, 0);
}

Test(list, inserts_at_either_end_in_order) {
    pool_list l;
    pool_list_init(&l);
    item it[4] = {{.v = 1}, {.v = 2}, {.v = 3}, {.v = 4}};
    pool_list_insert_tail(&l, &it[1].link);
    pool_list_insert_tail(&l, &it[2].link);
    pool_list_insert_head(&l, &it[0].link);
    pool_list_insert_tail(&l, &it[3].link);
    expect(&l, (int[]){1, 2, 3, 4}, 4);
    cr_assert_eq(pool_list_first(&l), &it[0].link);
    cr_assert_eq(POOL_LIST_ENTRY(pool_list_first(&l), item, link), &it[0]);
}

Test(list, removes_from_anywhere) {
    pool_list l;
    pool_list_init(&l);
    item it[5];
    for (int i = 0; i < 5; i++) {
        it[i].v = i;
        pool_list_insert_tail(&l, &it[i].link);
    }
    pool_list_remove(&it[2].link); /* the middle */
    expect(&l, (int[]){0, 1, 3, 4}, 4);
    cr_assert(pool_list_empty(&it[2].link), "a removed link is left empty");
    pool_list_remove(&it[2].link); /* again: nothing happens */
    expect(&l, (int[]){0, 1, 3, 4}, 4);
    pool_list_remove(&it[0].link); /* the first */
    pool_list_remove(&it[4].link); /* the last */
    expect(&l, (int[]){1, 3}, 2);
    pool_list_insert_tail(&l, &it[2].link); /* a removed one goes back */
    expect(&l, (int[]){1, 3, 2}, 3);
    pool_list_remove(&it[1].link);
    pool_list_remove(&it[3].link);
    pool_list_remove(&it[2].link);
    expect(&l, NULL, 0);
}

Test(list, pops_first_in_first_out) {
    pool_list l;
    pool_list_init(&l);
    item it[3] = {{.v = 7}, {.v = 8}, {.v = 9}};
    for (int i = 0; i < 3; i++)
        pool_list_insert_tail(&l, &it[i].link);
    cr_assert_eq(value(pool_list_pop(&l)), 7);
    cr_assert_eq(value(pool_list_pop(&l)), 8);
    expect(&l, (int[]){9}, 1);
    cr_assert_eq(value(pool_list_pop(&l)), 9);
    cr_assert_null(pool_list_pop(&l));
    expect(&l, NULL, 0);
}

Test(list, moves_a_whole_list_to_the_end_of_another) {
    pool_list a, b;
    pool_list_init(&a);
    pool_list_init(&b);
    item it[5];
    for (int i = 0; i < 5; i++) {
        it[i].v = i;
        pool_list_insert_tail(i < 2 ? &b : &a, &it[i].link);
    }
    pool_list_move(&a, &b);
    expect(&a, NULL, 0);
    expect(&b, (int[]){0, 1, 2, 3, 4}, 5);
    pool_list_move(&a, &b); /* an empty one: nothing happens */
    expect(&b, (int[]){0, 1, 2, 3, 4}, 5);
    pool_list_move(&b, &a); /* into an empty one */
    expect(&b, NULL, 0);
    expect(&a, (int[]){0, 1, 2, 3, 4}, 5);
    /* The moved elements are linked to their new head. */
    pool_list_remove(&it[4].link);
    pool_list_insert_tail(&a, &it[4].link);
    expect(&a, (int[]){0, 1, 2, 3, 4}, 5);
    cr_assert_eq(a.prev, &it[4].link);
}
