/* Scheduler: with a fake clock and simulated agents, work follows capacity, only free slots are
 * used, sessions stick and move, the queue is EDF with FIFO ties and bounded, expired requests
 * are reported and never dispatched, draining agents keep their work but get no more, a
 * joining agent takes queued work at once, and queued work of a model no agent serves any more
 * fails after a grace period. */
#include "scheduler.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define T0    1000000u /* fake clock start */
#define MODEL "tiny"

typedef struct {
    registry_t *reg;
    scheduler_t *sched;
    uint32_t next_id; /* request ids are a counter in the first 4 bytes */
} fixture;

static int setup_with(void **state, const scheduler_params *p)
{
    fixture *f = calloc(1, sizeof(*f));
    f->reg = registry_new(NULL);
    f->sched = scheduler_new(f->reg, p);
    *state = f;
    return f->reg && f->sched ? 0 : -1;
}

static int setup(void **state) { return setup_with(state, NULL); }

static int teardown(void **state)
{
    fixture *f = *state;
    sched_request out[64];
    assert_int_equal(scheduler_check(f->sched), 0); /* the books agree after every test */
    while (scheduler_flush(f->sched, out, 64) == 64) {
    }
    assert_int_equal(scheduler_clients(f->sched), 0);
    scheduler_destroy(&f->sched);
    registry_destroy(&f->reg);
    free(f);
    return 0;
}

/* A simulated agent serving MODEL with slots at speed (per-slot tokens/s; 0 = unmeasured). */
static agent_id_t join(fixture *f, const char *name, uint32_t slots, double speed, uint64_t now)
{
    registry_model_decl m = {.name = MODEL, .n_slots = slots};
    registry_registration r = {.name = name,
                               .key_id = name,
                               .routing_id = (const uint8_t *)name,
                               .routing_id_len = strlen(name),
                               .models = &m,
                               .n_models = 1,
                               .simulated = true};
    agent_id_t id = AGENT_ID_NONE, gone;
    assert_int_equal(registry_register(f->reg, &r, now, &id, &gone, NULL), 0);
    registry_model_load ml = {.model = MODEL, .total_slots = slots};
    registry_load hb = {.models = &ml, .n_models = 1, .gen_tps = speed};
    assert_int_equal(registry_heartbeat(f->reg, id, &hb, now), 0);
    return id;
}

static int submit(fixture *f, const char *session, uint64_t deadline, uint64_t now,
                  sched_dispatch *d)
{
    uint8_t rid[SCHED_REQUEST_ID_LEN] = {0};
    f->next_id++;
    memcpy(rid, &f->next_id, sizeof(f->next_id));
    sched_submit s = {.request_id = rid,
                      .model = MODEL,
                      .session_id = session,
                      .deadline_ms = deadline,
                      .max_tokens = 64,
                      .payload = (void *)(uintptr_t)f->next_id};
    uint32_t retry = 0;
    return scheduler_submit(f->sched, &s, now, d, &retry);
}

static void test_twice_as_fast_agent_gets_twice_the_work(void **state)
{
    fixture *f = *state;
    agent_id_t slow = join(f, "sim-slow", 1000, 10, T0);
    agent_id_t fast = join(f, "sim-fast", 1000, 20, T0);
    int n_slow = 0, n_fast = 0;
    for (int i = 0; i < 300; i++) {
        sched_dispatch d;
        assert_int_equal(submit(f, NULL, 0, T0, &d), 0);
        n_slow += d.agent == slow;
        n_fast += d.agent == fast;
    }
    assert_int_equal(n_slow + n_fast, 300);
    assert_in_range(n_fast, 195, 205); /* 2/3 of 300, within a request or five */
}

static void test_only_free_slots_are_used(void **state)
{
    fixture *f = *state;
    agent_id_t a = join(f, "sim-a", 2, 10, T0);
    agent_id_t b = join(f, "sim-b", 1, 50, T0);
    sched_dispatch d[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(submit(f, NULL, 0, T0, &d[i]), 0);
    int on_a = 0, on_b = 0, queued = 0;
    for (int i = 0; i < 4; i++) {
        on_a += d[i].agent == a;
        on_b += d[i].agent == b;
        queued += d[i].agent == AGENT_ID_NONE;
    }
    assert_int_equal(on_a, 2);
    assert_int_equal(on_b, 1); /* fast, but one slot */
    assert_int_equal(queued, 1);
    assert_int_equal(scheduler_queued(f->sched, MODEL), 1);
    sched_dispatch more[4];
    assert_int_equal(scheduler_dispatch(f->sched, T0, more, 4), 0); /* still no credit */
    /* A completion frees a credit; the queued request takes it. */
    assert_int_equal(scheduler_complete(f->sched, d[0].ticket, true, NULL), 0);
    assert_int_equal(scheduler_dispatch(f->sched, T0 + 1, more, 4), 1);
    assert_int_equal(more[0].agent, d[0].agent);
    assert_int_equal(more[0].ticket, d[3].ticket);
    assert_int_equal(registry_get(f->reg, a)->served + registry_get(f->reg, b)->served, 1);
}

static void test_session_sticks_to_the_agent_that_served_it(void **state)
{
    fixture *f = *state;
    agent_id_t a = join(f, "sim-a", 4, 10, T0);
    agent_id_t b = join(f, "sim-b", 4, 10, T0);
    sched_dispatch other, s1, s2;
    assert_int_equal(submit(f, NULL, 0, T0, &other), 0);
    assert_int_equal(other.agent, a); /* ties go to the lower id */
    assert_int_equal(submit(f, "chat-1", 0, T0, &s1), 0);
    assert_int_equal(s1.agent, b);
    assert_int_equal(scheduler_complete(f->sched, other.ticket, true, NULL), 0);
    assert_int_equal(scheduler_complete(f->sched, s1.ticket, true, NULL), 0);
    /* Both idle now: without affinity the tie would pick a. */
    assert_int_equal(submit(f, "chat-1", 0, T0 + 100, &s2), 0);
    assert_int_equal(s2.agent, b);
    assert_int_equal(scheduler_session_agent(f->sched, "chat-1", T0 + 100), b);
    (void)a;
}

static void test_session_moves_when_its_agent_is_full_draining_or_dead(void **state)
{
    fixture *f = *state;
    agent_id_t a = join(f, "sim-a", 1, 9, T0); /* just slower: b fills up before a is used */
    agent_id_t b = join(f, "sim-b", 8, 10, T0);
    sched_dispatch d, d2;
    assert_int_equal(submit(f, "s", 0, T0, &d), 0);
    assert_int_equal(d.agent, b); /* b has more free capacity */
    /* Full: fill b so it has no credit left; the session goes to a and is rebound there. */
    while (registry_free_slots(registry_get(f->reg, b), 0) > 0) {
        sched_dispatch fill;
        assert_int_equal(submit(f, NULL, 0, T0, &fill), 0);
        assert_int_equal(fill.agent, b);
    }
    assert_int_equal(submit(f, "s", 0, T0, &d2), 0);
    assert_int_equal(d2.agent, a);
    assert_int_equal(scheduler_session_agent(f->sched, "s", T0), a);
    assert_int_equal(scheduler_complete(f->sched, d2.ticket, true, NULL), 0);
    /* Draining: a drains, b has room again; the session moves to b. */
    assert_int_equal(scheduler_complete(f->sched, d.ticket, true, NULL), 0);
    assert_int_equal(registry_set_drain(f->reg, a, true), 0);
    assert_int_equal(submit(f, "s", 0, T0 + 1, &d2), 0);
    assert_int_equal(d2.agent, b);
    assert_int_equal(scheduler_complete(f->sched, d2.ticket, true, NULL), 0);
    /* Dead: b goes silent (a undrained and alive); the session moves to a. */
    assert_int_equal(registry_set_drain(f->reg, a, false), 0);
    assert_int_equal(registry_touch(f->reg, a, T0 + 2500), 0);
    assert_int_equal(submit(f, "s", 0, T0 + 3000, &d2), 0);
    assert_int_equal(d2.agent, a);
}

static void test_queue_is_earliest_deadline_first_with_fifo_ties(void **state)
{
    fixture *f = *state;
    sched_dispatch d[6];
    uint64_t deadlines[6] = {0, T0 + 900, 0, T0 + 500, T0 + 900, T0 + 700};
    agent_id_t a = join(f, "sim-a", 1, 10, T0);
    sched_dispatch busy;
    assert_int_equal(submit(f, NULL, 0, T0, &busy), 0);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(submit(f, NULL, deadlines[i], T0, &d[i]), 0);
        assert_int_equal(d[i].agent, AGENT_ID_NONE);
    }
    assert_int_equal(scheduler_next_deadline_ms(f->sched), T0 + 500);
    int expect[6] = {3, 5, 1, 4, 0, 2}; /* 500, 700, 900 (first), 900, none (first), none */
    uint64_t prev = busy.ticket;
    for (int i = 0; i < 6; i++) {
        assert_int_equal(scheduler_complete(f->sched, prev, true, NULL), 0);
        sched_dispatch got;
        assert_int_equal(scheduler_dispatch(f->sched, T0 + 1, &got, 1), 1);
        assert_int_equal(got.agent, a);
        assert_int_equal(got.ticket, d[expect[i]].ticket);
        prev = got.ticket;
    }
}

static void test_full_queue_refuses_with_ebusy_and_a_retry_hint(void **state)
{
    fixture *f = *state;
    scheduler_destroy(&f->sched);
    scheduler_params p = scheduler_default_params();
    p.max_queued_per_model = 3;
    f->sched = scheduler_new(f->reg, &p);
    join(f, "sim-a", 1, 10, T0);
    sched_dispatch d;
    for (int i = 0; i < 4; i++) /* one in flight, three queued */
        assert_int_equal(submit(f, NULL, 0, T0, &d), 0);
    assert_int_equal(scheduler_queued(f->sched, MODEL), 3);
    uint8_t rid[SCHED_REQUEST_ID_LEN] = {0xee};
    sched_submit s = {.request_id = rid, .model = MODEL, .max_tokens = 64};
    uint32_t retry = 0;
    assert_int_equal(scheduler_submit(f->sched, &s, T0, &d, &retry), EF_EBUSY);
    assert_true(retry >= 100);
    /* 3 queued x 64 tokens over 1 slot x 10 tok/s: about 19 s. */
    assert_in_range(retry, 15000, 25000);
    assert_null(scheduler_find(f->sched, rid)); /* nothing kept */
    assert_int_equal(scheduler_queue_capacity(f->sched), 3);
}

static void test_expired_requests_are_reported_and_never_dispatched(void **state)
{
    fixture *f = *state;
    agent_id_t a = join(f, "sim-a", 1, 10, T0);
    sched_dispatch busy, late, fine;
    assert_int_equal(submit(f, NULL, 0, T0, &busy), 0);
    assert_int_equal(submit(f, NULL, T0 + 100, T0, &late), 0);
    assert_int_equal(submit(f, NULL, T0 + 5000, T0, &fine), 0);
    assert_int_equal(scheduler_complete(f->sched, busy.ticket, true, NULL), 0);
    /* The slot frees after late's deadline: fine gets it, late never does. */
    sched_dispatch got[4];
    assert_int_equal(scheduler_dispatch(f->sched, T0 + 100, got, 4), 1);
    assert_int_equal(got[0].ticket, fine.ticket);
    assert_int_equal(got[0].agent, a);
    sched_request gone[4];
    assert_int_equal(scheduler_expire(f->sched, T0 + 100, gone, 4), 1);
    assert_int_equal(gone[0].ticket, late.ticket);
    assert_int_equal(gone[0].agent, AGENT_ID_NONE);
    assert_int_equal(gone[0].attempts, 0);
    assert_non_null(gone[0].payload); /* handed back for the daemon to free */
    assert_null(scheduler_get(f->sched, late.ticket));
    assert_int_equal(scheduler_expire(f->sched, T0 + 10000, gone, 4), 0);
    assert_int_equal(scheduler_next_deadline_ms(f->sched), 0);
    /* A deadline already past at admission is refused outright. */
    assert_int_equal(submit(f, NULL, T0 + 50, T0 + 200, &late), EF_EDEADLINE);
}

static void test_draining_agent_gets_no_new_work_but_keeps_its_inflight(void **state)
{
    fixture *f = *state;
    agent_id_t a = join(f, "sim-a", 4, 10, T0);
    agent_id_t b = join(f, "sim-b", 4, 10, T0);
    sched_dispatch on_a;
    assert_int_equal(submit(f, NULL, 0, T0, &on_a), 0);
    assert_int_equal(on_a.agent, a);
    registry_model_load ml = {.model = MODEL, .busy_slots = 1, .total_slots = 4};
    registry_load hb = {.models = &ml, .n_models = 1, .gen_tps = 10, .draining = true};
    assert_int_equal(registry_heartbeat(f->reg, a, &hb, T0 + 10), 0);
    for (int i = 0; i < 4; i++) {
        sched_dispatch d;
        assert_int_equal(submit(f, NULL, 0, T0 + 10, &d), 0);
        assert_int_equal(d.agent, b);
    }
    sched_request *r = scheduler_get(f->sched, on_a.ticket);
    assert_non_null(r);
    assert_int_equal(r->state, SCHED_INFLIGHT);
    assert_int_equal(r->agent, a);
    sched_request done;
    assert_int_equal(scheduler_complete(f->sched, on_a.ticket, true, &done), 0);
    assert_int_equal(done.agent, a);
}

static void test_joining_agent_takes_queued_work_at_once(void **state)
{
    fixture *f = *state;
    scheduler_destroy(&f->sched);
    scheduler_params p = scheduler_default_params();
    p.queue_unknown_models = true; /* the fleet is still assembling */
    f->sched = scheduler_new(f->reg, &p);
    sched_dispatch d[3];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(submit(f, NULL, 0, T0, &d[i]), 0);
        assert_int_equal(d[i].agent, AGENT_ID_NONE);
    }
    agent_id_t a = join(f, "sim-a", 2, 10, T0 + 5);
    sched_dispatch got[8];
    assert_int_equal(scheduler_dispatch(f->sched, T0 + 5, got, 8), 2);
    assert_int_equal(got[0].agent, a);
    assert_int_equal(got[1].agent, a);
    agent_id_t b = join(f, "sim-b", 2, 10, T0 + 6);
    assert_int_equal(scheduler_dispatch(f->sched, T0 + 6, got, 8), 1);
    assert_int_equal(got[0].agent, b);
    assert_int_equal(got[0].ticket, d[2].ticket);
    assert_int_equal(scheduler_queued(f->sched, MODEL), 0);
    assert_int_equal(scheduler_inflight(f->sched), 3);
}

static void test_unknown_model_and_duplicate_request_are_refused(void **state)
{
    fixture *f = *state;
    sched_dispatch d;
    assert_int_equal(submit(f, NULL, 0, T0, &d), EF_EUNKNOWNMODEL);
    join(f, "sim-a", 1, 10, T0);
    uint8_t rid[SCHED_REQUEST_ID_LEN] = {7};
    sched_submit s = {.request_id = rid, .model = MODEL};
    assert_int_equal(scheduler_submit(f->sched, &s, T0, &d, NULL), 0);
    sched_dispatch again;
    assert_int_equal(scheduler_submit(f->sched, &s, T0, &again, NULL), EF_EDUPLICATE);
    assert_ptr_equal(scheduler_find(f->sched, rid), scheduler_get(f->sched, d.ticket));
    s.model = "other";
    rid[0] = 8;
    assert_int_equal(scheduler_submit(f->sched, &s, T0, &d, NULL), EF_EUNKNOWNMODEL);
}

static void test_lost_agent_hands_back_its_inflight_requests(void **state)
{
    fixture *f = *state;
    agent_id_t a = join(f, "sim-a", 3, 10, T0);
    sched_dispatch d[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(submit(f, "sess", 0, T0, &d[i]), 0);
    scheduler_get(f->sched, d[1].ticket)->tokens_streamed = 17;
    /* It re-registers with the same key: the old entry is replaced and its requests come back. */
    agent_id_t a2 = AGENT_ID_NONE, replaced = AGENT_ID_NONE;
    registry_model_decl m = {.name = MODEL, .n_slots = 3};
    registry_registration r = {.name = "sim-a",
                               .key_id = "sim-a",
                               .routing_id = (const uint8_t *)"sim-a",
                               .routing_id_len = 5,
                               .models = &m,
                               .n_models = 1};
    assert_int_equal(registry_register(f->reg, &r, T0 + 10, &a2, &replaced, NULL), 0);
    assert_int_equal(replaced, a);
    sched_request back[2];
    size_t n = scheduler_agent_gone(f->sched, replaced, back, 2);
    assert_int_equal(n, 2);
    n += scheduler_agent_gone(f->sched, replaced, back, 2);
    assert_int_equal(n, 3);
    assert_int_equal(scheduler_inflight(f->sched), 0);
    assert_null(scheduler_get(f->sched, d[1].ticket));
    assert_int_equal(scheduler_session_agent(f->sched, "sess", T0 + 10), AGENT_ID_NONE);
    assert_int_equal(registry_free_slots(registry_get(f->reg, a2), 0), 3);
}

static void test_queued_work_fails_after_its_last_agent_is_gone_for_the_grace(void **state)
{
    fixture *f = *state;
    scheduler_destroy(&f->sched);
    scheduler_params p = scheduler_default_params();
    p.orphan_grace_ms = 5000;
    f->sched = scheduler_new(f->reg, &p);
    agent_id_t a = join(f, "sim-a", 1, 10, T0);
    sched_dispatch running, waiting;
    assert_int_equal(submit(f, NULL, 0, T0, &running), 0);
    assert_int_equal(submit(f, NULL, 0, T0, &waiting), 0);
    assert_int_equal(waiting.agent, AGENT_ID_NONE);
    sched_request out[4];
    /* A live agent serves the model: the queued request waits as long as it has to. */
    assert_int_equal(scheduler_orphaned(f->sched, T0 + 1000, out, 4), 0);
    /* The agent goes: the grace starts at the first sweep that sees no candidate. */
    assert_int_equal(scheduler_agent_gone(f->sched, a, out, 4), 1);
    assert_int_equal(registry_remove(f->reg, a), 0);
    assert_int_equal(scheduler_orphaned(f->sched, T0 + 2000, out, 4), 0);
    assert_int_equal(scheduler_orphaned(f->sched, T0 + 6999, out, 4), 0);
    /* A board that comes back within the grace resets it. */
    agent_id_t b = join(f, "sim-b", 1, 0, T0 + 6999);
    assert_int_equal(scheduler_orphaned(f->sched, T0 + 7000, out, 4), 0);
    registry_model_load ml = {.model = MODEL, .total_slots = 1};
    registry_load hb = {.models = &ml, .n_models = 1, .draining = true};
    /* Draining boards take no new work, so they do not count: the grace starts again. */
    for (uint64_t t = T0 + 7001; t <= T0 + 11001; t += 1000) { /* heartbeats: live, draining */
        assert_int_equal(registry_heartbeat(f->reg, b, &hb, t), 0);
        assert_int_equal(scheduler_orphaned(f->sched, t + 1, out, 4), 0);
    }
    assert_int_equal(scheduler_orphaned(f->sched, T0 + 12001, out, 4), 0);
    assert_int_equal(scheduler_orphaned(f->sched, T0 + 12002, out, 4), 1);
    assert_int_equal(out[0].ticket, waiting.ticket);
    assert_int_equal(out[0].state, SCHED_QUEUED);
    assert_non_null(out[0].payload);
    assert_int_equal(scheduler_queued(f->sched, MODEL), 0);
    assert_null(scheduler_get(f->sched, waiting.ticket));
}

static void test_requeue_and_cancel_keep_the_books_straight(void **state)
{
    fixture *f = *state;
    agent_id_t a = join(f, "sim-a", 1, 10, T0);
    sched_dispatch d1, d2;
    assert_int_equal(submit(f, NULL, 0, T0, &d1), 0);
    assert_int_equal(submit(f, NULL, 0, T0, &d2), 0);
    scheduler_get(f->sched, d1.ticket)->tokens_streamed = 5;
    assert_int_equal(scheduler_requeue(f->sched, d1.ticket, T0 + 1), 0); /* agent said EBUSY */
    assert_int_equal(registry_free_slots(registry_get(f->reg, a), 0), 1);
    sched_dispatch got;
    assert_int_equal(scheduler_dispatch(f->sched, T0 + 2, &got, 1), 1);
    assert_int_equal(got.ticket, d1.ticket); /* admitted first, so first again */
    sched_request *r = scheduler_get(f->sched, d1.ticket);
    assert_int_equal(r->attempts, 2);
    assert_int_equal(r->tokens_streamed, 5);
    sched_request c;
    assert_int_equal(scheduler_cancel(f->sched, d2.ticket, &c), 0);
    assert_int_equal(c.state, SCHED_QUEUED);
    assert_null(scheduler_get(f->sched, d2.ticket));
    assert_int_equal(scheduler_cancel(f->sched, d1.ticket, &c), 0);
    assert_int_equal(c.state, SCHED_INFLIGHT); /* stays until the agent's Done */
    assert_non_null(scheduler_get(f->sched, d1.ticket));
    assert_int_equal(scheduler_complete(f->sched, d1.ticket, false, NULL), 0);
    assert_int_equal(scheduler_complete(f->sched, d1.ticket, false, NULL), EF_ENOENT);
    assert_int_equal(scheduler_inflight(f->sched), 0);
}

static void test_batch_split_is_proportional_to_capacity(void **state)
{
    fixture *f = *state;
    agent_id_t a = join(f, "sim-a", 2, 10, T0); /* capacity 20 */
    agent_id_t b = join(f, "sim-b", 2, 20, T0); /* 40 */
    agent_id_t c = join(f, "sim-c", 4, 20, T0); /* 80 */
    join(f, "sim-d", 4, 20, T0);
    registry_set_drain(f->reg, registry_find_name(f->reg, "sim-d"), true); /* not a candidate */
    agent_id_t agents[8];
    uint32_t counts[8];
    size_t n = 0;
    assert_int_equal(scheduler_plan_split(f->sched, MODEL, 70, T0, agents, counts, 8, &n), 0);
    assert_int_equal(n, 3);
    uint32_t got[3] = {0};
    for (size_t i = 0; i < n; i++)
        got[(agents[i] == a) ? 0 : (agents[i] == b) ? 1 : 2] += counts[i];
    assert_int_equal(got[0], 10);
    assert_int_equal(got[1], 20);
    assert_int_equal(got[2], 40);
    /* Odd sizes still add up, and the bigger share gets the remainder. */
    assert_int_equal(scheduler_plan_split(f->sched, MODEL, 8, T0, agents, counts, 8, &n), 0);
    uint32_t sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += counts[i];
    assert_int_equal(sum, 8);
    assert_int_equal(agents[0], c);
    assert_int_equal(counts[0], 5); /* 8 x 4/7 = 4.57 */
    assert_int_equal(scheduler_plan_split(f->sched, "none", 8, T0, agents, counts, 8, &n),
                     EF_EUNKNOWNMODEL);
}

/* 10,000 boards of three speeds (10, 20, 40 tokens/s per slot, 8 slots each), a few draining,
 * a few silent: 7,000 requests land only on live, non-draining boards, the books balance (no
 * board's load is above another's next step: the greedy capacity split), faster classes take
 * more, and 1,000 sessions come back to the board that served them. */
#define SCALE_AGENTS 10000
static void test_ten_thousand_agents_split_by_capacity_and_keep_affinity(void **state)
{
    fixture *f = *state;
    static agent_id_t ids[SCALE_AGENTS];
    static const double speeds[3] = {10, 20, 40};
    char name[32];
    for (int i = 0; i < SCALE_AGENTS; i++) {
        snprintf(name, sizeof name, "sim-%d", i);
        ids[i] = join(f, name, 8, speeds[i % 3], i % 97 == 5 ? T0 - 2000 : T0);
    }
    for (int i = 0; i < SCALE_AGENTS; i += 101)
        registry_set_drain(f->reg, ids[i], true);
    uint64_t now = T0 + 1500; /* those heard from at T0 - 2000 are past their 3 s window */
    for (int i = 0; i < 7000; i++) {
        sched_dispatch d;
        assert_int_equal(submit(f, NULL, 0, now, &d), 0);
        assert_int_not_equal(d.agent, AGENT_ID_NONE);
    }
    uint32_t per_class[3] = {0}, total = 0;
    double max_level = 0, min_next = 1e300;
    for (int i = 0; i < SCALE_AGENTS; i++) {
        const registry_agent *a = registry_get(f->reg, ids[i]);
        uint32_t k = a->models[0].inflight;
        if (i % 101 == 0 || i % 97 == 5) {
            assert_int_equal(k, 0); /* draining or silent: no work */
            continue;
        }
        double cap = 8 * speeds[i % 3];
        per_class[i % 3] += k;
        total += k;
        max_level = k / cap > max_level ? k / cap : max_level;
        min_next = (k + 1) / cap < min_next ? (k + 1) / cap : min_next;
    }
    assert_int_equal(total, 7000);
    assert_true(max_level <= min_next); /* nobody could have taken one at a lower load */
    assert_true(per_class[2] > per_class[1] && per_class[1] > per_class[0]);
    /* Affinity: 1,000 sessions spread over the fleet as load grows; once their requests are
     * over, each session's next request goes back to its board, though others are as idle. */
    static agent_id_t first[1000];
    static uint64_t tickets[1000];
    char session[32];
    for (int s = 0; s < 1000; s++) {
        snprintf(session, sizeof session, "chat-%d", s);
        sched_dispatch d;
        assert_int_equal(submit(f, session, 0, now, &d), 0);
        first[s] = d.agent;
        tickets[s] = d.ticket;
    }
    for (int s = 0; s < 1000; s++)
        assert_int_equal(scheduler_complete(f->sched, tickets[s], true, NULL), 0);
    int moved = 0;
    for (int s = 0; s < 1000; s++) {
        snprintf(session, sizeof session, "chat-%d", s);
        sched_dispatch d;
        assert_int_equal(submit(f, session, 0, now + 10, &d), 0);
        moved += d.agent != first[s];
        assert_int_equal(scheduler_session_agent(f->sched, session, now + 10), d.agent);
        assert_int_equal(scheduler_complete(f->sched, d.ticket, true, NULL), 0);
    }
    assert_int_equal(moved, 0);
    /* Without affinity, all of them would have gone to the one best board. */
    int distinct = 0;
    for (int s = 1; s < 1000; s++)
        distinct += first[s] != first[0];
    assert_true(distinct > 900);
}

static int setup_uncapped(void **state)
{
    scheduler_params p = scheduler_default_params();
    p.max_per_client = 0;
    return setup_with(state, &p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_twice_as_fast_agent_gets_twice_the_work, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_only_free_slots_are_used, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_sticks_to_the_agent_that_served_it, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_session_moves_when_its_agent_is_full_draining_or_dead,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_is_earliest_deadline_first_with_fifo_ties, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_full_queue_refuses_with_ebusy_and_a_retry_hint, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_expired_requests_are_reported_and_never_dispatched,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_draining_agent_gets_no_new_work_but_keeps_its_inflight,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_joining_agent_takes_queued_work_at_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unknown_model_and_duplicate_request_are_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_lost_agent_hands_back_its_inflight_requests, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_queued_work_fails_after_its_last_agent_is_gone_for_the_grace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_requeue_and_cancel_keep_the_books_straight, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_batch_split_is_proportional_to_capacity, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_ten_thousand_agents_split_by_capacity_and_keep_affinity, setup_uncapped, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
