/* outbox.c with a fake clock and a recording send callback that can play a dead link: frames go
 * out in the order they were made, wait while the link is down with nothing lost, go again after
 * a rewind, are forgotten after the retain time, are dropped (not sent) once their request's
 * deadline passed, and the oldest go first over the byte cap. */
#include "outbox.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define MAX_SENT 64

/* The link as the outbox sees it: takes `accept` more frames (-1 = all), then fails. */
typedef struct {
    int accept;
    size_t n;
    char *sent[MAX_SENT]; /* the frames' text, in send order */
} link_sink;

static int sink_send(const uint8_t *buf, size_t len, void *user)
{
    link_sink *s = user;
    if (s->accept == 0)
        return -1;
    if (s->accept > 0)
        s->accept--;
    assert_true(s->n < MAX_SENT);
    /* Big frames carry their name in the first bytes only. */
    size_t keep = strnlen((const char *)buf, len < 32 ? len : 32);
    s->sent[s->n] = strndup((const char *)buf, keep);
    assert_non_null(s->sent[s->n]);
    s->n++;
    return 0;
}

static void sink_clear(link_sink *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->sent[i]);
    s->n = 0;
}

/* Assert the sink received exactly these frames since the last clear, then clear it. */
static void expect_sent(link_sink *s, const char *const *names, size_t n)
{
    assert_int_equal(s->n, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(s->sent[i], names[i]);
    sink_clear(s);
}

static const uint8_t request_id[16] = {0xab, 0xcd};

/* Queue a frame whose bytes are its name (with the NUL). */
static void push_named(outbox *ob, const char *name, uint64_t deadline_unix_ms)
{
    size_t len = strlen(name) + 1;
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    memcpy(buf, name, len);
    assert_int_equal(outbox_push(ob, &buf, len, deadline_unix_ms, request_id), 0);
    assert_null(buf); /* ownership moved */
}

static void test_frames_go_out_in_the_order_they_were_made(void **state)
{
    (void)state;
    outbox *ob = outbox_new();
    assert_non_null(ob);
    link_sink s = {.accept = -1};
    push_named(ob, "a", 0);
    push_named(ob, "b", 0);
    push_named(ob, "c", 0);
    assert_int_equal(outbox_unsent(ob), 3);
    assert_int_equal(outbox_flush(ob, 100, 1000, sink_send, &s), 3);
    expect_sent(&s, (const char *[]){"a", "b", "c"}, 3);
    assert_int_equal(outbox_unsent(ob), 0);
    /* Sent frames are not sent twice by a later flush. */
    assert_int_equal(outbox_flush(ob, 200, 1100, sink_send, &s), 0);
    assert_int_equal(s.n, 0);
    outbox_destroy(&ob);
    assert_null(ob);
    outbox_destroy(&ob); /* destroying NULL is a no-op */
    outbox_destroy(NULL);
}

static void test_frames_wait_while_the_link_is_down_and_none_is_lost(void **state)
{
    (void)state;
    outbox *ob = outbox_new();
    link_sink s = {.accept = 0};
    push_named(ob, "a", 0);
    push_named(ob, "b", 0);
    assert_int_equal(outbox_flush(ob, 100, 1000, sink_send, &s), 0);
    push_named(ob, "c", 0);
    assert_int_equal(outbox_flush(ob, 200, 1100, sink_send, &s), 0);
    assert_int_equal(outbox_unsent(ob), 3);
    outbox_prune(ob, 100000, 2000, 10); /* no deadlines: waiting frames stay however long */
    assert_int_equal(outbox_unsent(ob), 3);
    s.accept = -1; /* the link is back */
    assert_int_equal(outbox_flush(ob, 100100, 2100, sink_send, &s), 3);
    expect_sent(&s, (const char *[]){"a", "b", "c"}, 3);
    assert_int_equal(outbox_unsent(ob), 0);
    outbox_destroy(&ob);
}

static void test_a_failed_send_stops_the_flush_and_the_next_starts_there(void **state)
{
    (void)state;
    outbox *ob = outbox_new();
    link_sink s = {.accept = 2};
    const char *names[] = {"f0", "f1", "f2", "f3", "f4"};
    for (size_t i = 0; i < 5; i++)
        push_named(ob, names[i], 0);
    assert_int_equal(outbox_flush(ob, 100, 1000, sink_send, &s), 2);
    expect_sent(&s, names, 2);
    assert_int_equal(outbox_unsent(ob), 3);
    push_named(ob, "f5", 0); /* made while the rest waits: goes after it */
    s.accept = -1;
    assert_int_equal(outbox_flush(ob, 200, 1100, sink_send, &s), 4);
    expect_sent(&s, (const char *[]){"f2", "f3", "f4", "f5"}, 4);
    outbox_destroy(&ob);
}

static void test_a_frame_made_after_all_were_sent_goes_out_next(void **state)
{
    (void)state;
    outbox *ob = outbox_new();
    link_sink s = {.accept = -1};
    push_named(ob, "a", 0);
    assert_int_equal(outbox_flush(ob, 100, 1000, sink_send, &s), 1);
    push_named(ob, "b", 0);
    assert_int_equal(outbox_unsent(ob), 1);
    assert_int_equal(outbox_flush(ob, 200, 1000, sink_send, &s), 1);
    expect_sent(&s, (const char *[]){"a", "b"}, 2);
    outbox_destroy(&ob);
}

static void test_a_rewind_sends_again_every_frame_sent_since_then(void **state)
{
    (void)state;
    outbox *ob = outbox_new();
    link_sink s = {.accept = -1};
    push_named(ob, "a", 0);
    assert_int_equal(outbox_flush(ob, 100, 1000, sink_send, &s), 1);
    push_named(ob, "b", 0);
    assert_int_equal(outbox_flush(ob, 200, 1000, sink_send, &s), 1);
    push_named(ob, "c", 0);
    assert_int_equal(outbox_flush(ob, 300, 1000, sink_send, &s), 1);
    push_named(ob, "d", 0); /* not sent yet when the link dies */
    sink_clear(&s);

    outbox_rewind(ob, 301); /* nothing was sent at or after 301 */
    assert_int_equal(outbox_unsent(ob), 1);
    outbox_rewind(ob, 200); /* the link died after 200: b and c may be lost */
    assert_int_equal(outbox_unsent(ob), 3);
    assert_int_equal(outbox_flush(ob, 400, 1000, sink_send, &s), 3);
    expect_sent(&s, (const char *[]){"b", "c", "d"}, 3);

    outbox_rewind(ob, 0); /* everything still kept */
    assert_int_equal(outbox_unsent(ob), 4);
    assert_int_equal(outbox_flush(ob, 500, 1000, sink_send, &s), 4);
    expect_sent(&s, (const char *[]){"a", "b", "c", "d"}, 4);
    outbox_destroy(&ob);
}

static void test_prune_forgets_sent_frames_older_than_the_retain_time(void **state)
{
    (void)state;
    outbox *ob = outbox_new();
    link_sink s = {.accept = -1};
    push_named(ob, "a", 0);
    assert_int_equal(outbox_flush(ob, 100, 1000, sink_send, &s), 1);
    push_named(ob, "b", 0);
    assert_int_equal(outbox_flush(ob, 200, 1000, sink_send, &s), 1);
    push_named(ob, "c", 0);
    sink_clear(&s);

    outbox_prune(ob, 1000, 1000, 850); /* a (100 + 850 < 1000) goes; b (1050) stays */
    assert_int_equal(outbox_unsent(ob), 1);
    outbox_rewind(ob, 0);
    assert_int_equal(outbox_unsent(ob), 2);
    assert_int_equal(outbox_flush(ob, 1100, 1000, sink_send, &s), 2);
    expect_sent(&s, (const char *[]){"b", "c"}, 2);

    outbox_prune(ob, 100000, 1000, 850); /* all sent long ago: the outbox is empty */
    outbox_rewind(ob, 0);
    assert_int_equal(outbox_unsent(ob), 0);
    assert_int_equal(outbox_flush(ob, 100001, 1000, sink_send, &s), 0);
    push_named(ob, "d", 0); /* and works again from empty */
    assert_int_equal(outbox_flush(ob, 100002, 1000, sink_send, &s), 1);
    expect_sent(&s, (const char *[]){"d"}, 1);
    outbox_destroy(&ob);
}

static void test_a_frame_past_its_deadline_is_dropped_not_sent(void **state)
{
    (void)state;
    outbox *ob = outbox_new();
    link_sink s = {.accept = -1};
    push_named(ob, "late", 5000);
    push_named(ob, "forever", 0); /* 0 = no deadline */
    push_named(ob, "later", 10000);
    /* The deadline itself is still in time. */
    assert_int_equal(outbox_flush(ob, 100, 5000, sink_send, &s), 3);
    expect_sent(&s, (const char *[]){"late", "forever", "later"}, 3);

    outbox_rewind(ob, 0); /* resent after a reconnect, now past the first deadline */
    assert_int_equal(outbox_flush(ob, 200, 5001, sink_send, &s), 2);
    expect_sent(&s, (const char *[]){"forever", "later"}, 2);
    assert_int_equal(outbox_unsent(ob), 0);
    outbox_rewind(ob, 0);
    assert_int_equal(outbox_unsent(ob), 2); /* "late" is gone for good */
    assert_int_equal(outbox_flush(ob, 300, 20000, sink_send, &s), 1);
    expect_sent(&s, (const char *[]){"forever"}, 1);
    outbox_destroy(&ob);
}

static void test_prune_drops_waiting_frames_whose_deadline_passed(void **state)
{
    (void)state;
    outbox *ob = outbox_new();
    link_sink s = {.accept = 0};
    push_named(ob, "keep", 0);
    push_named(ob, "expire", 100);
    push_named(ob, "keep2", 300);
    push_named(ob, "tail", 150);
    assert_int_equal(outbox_flush(ob, 10, 50, sink_send, &s), 0);
    outbox_prune(ob, 20, 100, 0); /* at the deadline: nothing goes */
    assert_int_equal(outbox_unsent(ob), 4);
    outbox_prune(ob, 30, 200, 0); /* "expire" and the last frame, "tail", go */
    assert_int_equal(outbox_unsent(ob), 2);
    push_named(ob, "new", 0); /* must queue after keep2, not after the freed tail */
    s.accept = -1;
    assert_int_equal(outbox_flush(ob, 40, 200, sink_send, &s), 3);
    expect_sent(&s, (const char *[]){"keep", "keep2", "new"}, 3);
    outbox_destroy(&ob);
}

/* A frame of `len` bytes named `name`; only the name's bytes are written. */
static void push_big(outbox *ob, const char *name, size_t len)
{
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    memcpy(buf, name, strlen(name) + 1);
    assert_int_equal(outbox_push(ob, &buf, len, 0, request_id), 0);
}

static void test_over_the_byte_cap_the_oldest_frames_go_first(void **state)
{
    (void)state;
    outbox *ob = outbox_new();
    link_sink s = {.accept = 0};
    const size_t quarter = OUTBOX_MAX_BYTES / 4;
    push_big(ob, "big0", quarter);
    push_big(ob, "big1", quarter);
    push_big(ob, "big2", quarter);
    push_big(ob, "big3", quarter);
    assert_int_equal(outbox_unsent(ob), 4); /* exactly at the cap: all kept */
    push_big(ob, "big4", quarter);
    assert_int_equal(outbox_unsent(ob), 4);
    push_big(ob, "big5", 2 * quarter); /* needs two to go */
    assert_int_equal(outbox_unsent(ob), 3);
    s.accept = -1;
    assert_int_equal(outbox_flush(ob, 100, 1000, sink_send, &s), 3);
    expect_sent(&s, (const char *[]){"big3", "big4", "big5"}, 3);
    /* Sent frames count too: a new one pushes out the oldest kept for replay. */
    push_big(ob, "big6", quarter);
    outbox_rewind(ob, 0);
    assert_int_equal(outbox_unsent(ob), 3);
    assert_int_equal(outbox_flush(ob, 200, 1000, sink_send, &s), 3);
    expect_sent(&s, (const char *[]){"big4", "big5", "big6"}, 3);
    outbox_destroy(&ob);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frames_go_out_in_the_order_they_were_made),
        cmocka_unit_test(test_frames_wait_while_the_link_is_down_and_none_is_lost),
        cmocka_unit_test(test_a_failed_send_stops_the_flush_and_the_next_starts_there),
        cmocka_unit_test(test_a_frame_made_after_all_were_sent_goes_out_next),
        cmocka_unit_test(test_a_rewind_sends_again_every_frame_sent_since_then),
        cmocka_unit_test(test_prune_forgets_sent_frames_older_than_the_retain_time),
        cmocka_unit_test(test_a_frame_past_its_deadline_is_dropped_not_sent),
        cmocka_unit_test(test_prune_drops_waiting_frames_whose_deadline_passed),
        cmocka_unit_test(test_over_the_byte_cap_the_oldest_frames_go_first),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
