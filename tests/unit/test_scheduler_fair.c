/* Scheduler fairness between clients, with a fake clock and simulated agents: a quiet client's
 * request overtakes another's flood, the per-client cap refuses with EF_EBUSY, a reason and a
 * retry hint (and never makes another client busy), clients take turns while each keeps its own
 * earliest-deadline order, a requeue keeps its claim, and every way a request ends (complete,
 * expire, orphan, cancel, agent gone, flush) brings the per-client counts back to 0, also over a
 * long random mix checked against a brute-force recount. */
#include "scheduler.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define T0     1000000u /* fake clock start */
#define MODEL  "tiny"
#define MODEL2 "small"
#define TOKENS 64 /* max_tokens of every test request */

typedef struct {
    registry_t *reg;
    scheduler_t *sched;
    uint32_t next_id; /* request ids are a counter in the first 4 bytes */
} fixture;

static const uint8_t test_key[SCHED_HASH_KEY_LEN] = "fixed test key!";

static void start(fixture *f, scheduler_params p)
{
    p.hash_key = test_key; /* deterministic layout; the hash test covers random keys */
    f->sched = scheduler_new(f->reg, &p);
    assert_non_null(f->sched);
}

/* Flushes (handing every credit back to the registry) and starts again with p. */
static void restart(fixture *f, scheduler_params p)
{
    sched_request out[64];
    while (scheduler_flush(f->sched, out, 64) == 64) {
    }
    scheduler_destroy(&f->sched);
    start(f, p);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    f->reg = registry_new(NULL);
    *state = f;
    return f->reg ? 0 : -1;
}

static int teardown(void **state)
{
    fixture *f = *state;
    sched_request out[64];
    if (f->sched) {
        assert_int_equal(scheduler_check(f->sched), 0);
        while (scheduler_flush(f->sched, out, 64) == 64) {
        }
        assert_int_equal(scheduler_clients(f->sched), 0);
        assert_int_equal(scheduler_check(f->sched), 0);
    }
    scheduler_destroy(&f->sched);
    registry_destroy(&f->reg);
    free(f);
    return 0;
}

/* A simulated agent serving MODEL (and MODEL2 when both) with slots at speed tokens/s. */
static agent_id_t join_serving(fixture *f, const char *name, uint32_t slots, bool both,
                               uint64_t now)
{
    registry_model_decl m[2] = {{.name = MODEL, .n_slots = slots},
                                {.name = MODEL2, .n_slots = slots}};
    registry_registration r = {.name = name,
                               .key_id = name,
                               .routing_id = (const uint8_t *)name,
                               .routing_id_len = strlen(name),
                               .models = m,
                               .n_models = both ? 2 : 1,
                               .simulated = true};
    agent_id_t id = AGENT_ID_NONE, gone;
    assert_int_equal(registry_register(f->reg, &r, now, &id, &gone, NULL), 0);
    registry_model_load ml[2] = {{.model = MODEL, .total_slots = slots},
                                 {.model = MODEL2, .total_slots = slots}};
    registry_load hb = {.models = ml, .n_models = both ? 2 : 1, .gen_tps = 10};
    assert_int_equal(registry_heartbeat(f->reg, id, &hb, now), 0);
    return id;
}

static agent_id_t join(fixture *f, const char *name, uint32_t slots, uint64_t now)
{
    return join_serving(f, name, slots, false, now);
}

typedef struct {
    const char *client;
    const char *model; /* NULL = MODEL */
    uint64_t deadline;
    sched_busy busy;
    uint32_t retry;
} sub;

static int submit_full(fixture *f, sub *s, uint64_t now, sched_dispatch *d)
{
    uint8_t rid[SCHED_REQUEST_ID_LEN] = {0};
    f->next_id++;
    memcpy(rid, &f->next_id, sizeof(f->next_id));
    sched_submit req = {.request_id = rid,
                        .model = s->model ? s->model : MODEL,
                        .deadline_ms = s->deadline,
                        .max_tokens = TOKENS,
                        .payload = (void *)(uintptr_t)f->next_id,
                        .client = s->client,
                        .busy = &s->busy};
    s->retry = 0;
    return scheduler_submit(f->sched, &req, now, d, &s->retry);
}

static int submit(fixture *f, const char *client, uint64_t deadline, uint64_t now,
                  sched_dispatch *d)
{
    sub s = {.client = client, .deadline = deadline};
    return submit_full(f, &s, now, d);
}

/* Completes `done` (in flight) and returns the one request dispatched onto the freed slot. */
static uint64_t next_after(fixture *f, uint64_t done, uint64_t now)
{
    assert_int_equal(scheduler_complete(f->sched, done, true, NULL), 0);
    sched_dispatch got[2];
    assert_int_equal(scheduler_dispatch(f->sched, now, got, 2), 1);
    return got[0].ticket;
}

static void test_one_request_from_a_quiet_client_overtakes_a_flood_of_1000(void **state)
{
    fixture *f = *state;
    scheduler_params p = scheduler_default_params();
    p.max_per_client = 0; /* no cap: the turns alone must protect the quiet client */
    start(f, p);
    join(f, "sim-a", 2, T0);
    sched_dispatch d, running[2];
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(submit(f, "clients/flood", 0, T0, &d), 0);
        if (i < 2)
            running[i] = d;
    }
    assert_int_equal(scheduler_queued(f->sched, MODEL), 998);
    sched_dispatch quiet;
    assert_int_equal(submit(f, "clients/quiet", 0, T0 + 1, &quiet), 0);
    assert_int_equal(quiet.agent, AGENT_ID_NONE); /* everything is busy: it waits, admitted */
    /* The flood's turn comes first (it was waiting), then the quiet client's: one ahead at most. */
    uint64_t first = next_after(f, running[0].ticket, T0 + 2);
    uint64_t second = next_after(f, running[1].ticket, T0 + 3);
    assert_int_not_equal(first, quiet.ticket);
    assert_int_equal(second, quiet.ticket);
    assert_string_equal(scheduler_get(f->sched, first)->client, "clients/flood");
    /* Again later: a second quiet request still waits for at most one of the flood's. */
    assert_int_equal(submit(f, "clients/quiet", 0, T0 + 4, &quiet), 0);
    uint64_t third = next_after(f, first, T0 + 5);
    uint64_t fourth = next_after(f, third, T0 + 6);
    assert_int_not_equal(third, quiet.ticket);
    assert_int_equal(fourth, quiet.ticket);
    assert_int_equal(scheduler_client_count(f->sched, "clients/flood"), 1000 - 4); /* 4 done */
    assert_int_equal(scheduler_client_count(f->sched, "clients/quiet"), 2);
    assert_int_equal(scheduler_check(f->sched), 0);
}

static void test_a_flood_from_one_key_never_makes_another_key_busy(void **state)
{
    fixture *f = *state;
    start(f, scheduler_default_params()); /* the defaults the daemon is told to use */
    join(f, "sim-a", 4, T0);
    int refused = 0;
    for (int i = 0; i < 1000; i++) {
        sub s = {.client = "clients/flood"};
        sched_dispatch d;
        int rc = submit_full(f, &s, T0, &d);
        if (rc == EF_EBUSY) {
            assert_int_equal(s.busy.reason, SCHED_BUSY_CLIENT);
            refused++;
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(s.busy.reason, SCHED_BUSY_NONE);
        }
    }
    assert_int_equal(refused, 1000 - SCHED_DEFAULT_MAX_PER_CLIENT);
    for (int i = 0; i < 100; i++) {
        sched_dispatch d;
        assert_int_equal(submit(f, "clients/other", 0, T0, &d), 0);
    }
    assert_int_equal(scheduler_client_count(f->sched, "clients/flood"),
                     SCHED_DEFAULT_MAX_PER_CLIENT);
    assert_int_equal(scheduler_client_count(f->sched, "clients/other"), 100);
}

static void test_client_over_its_cap_is_refused_busy_with_the_reason_and_a_retry_hint(void **state)
{
    fixture *f = *state;
    scheduler_params p = scheduler_default_params();
    p.max_per_client = 4;
    start(f, p);
    join_serving(f, "sim-a", 1, true, T0);
    assert_int_equal(scheduler_client_cap(f->sched), 4);
    sched_dispatch d[4];
    sub s = {.client = "clients/alice"};
    for (int i = 0; i < 4; i++) { /* the cap counts over all models, running ones included */
        s.model = i % 2 ? MODEL2 : MODEL;
        assert_int_equal(submit_full(f, &s, T0, &d[i]), 0);
    }
    assert_int_equal(scheduler_client_count(f->sched, "clients/alice"), 4);
    assert_int_equal(scheduler_inflight(f->sched), 2);
    uint32_t refused_id = f->next_id + 1;
    sched_dispatch over;
    s.model = MODEL;
    assert_int_equal(submit_full(f, &s, T0, &over), EF_EBUSY);
    assert_int_equal(s.busy.reason, SCHED_BUSY_CLIENT);
    assert_int_equal(s.busy.count, 4);
    assert_int_equal(s.busy.limit, 4);
    /* Her 4 x 64 tokens over the model's 1 slot x 10 tok/s: about 25.6 s. */
    assert_in_range(s.retry, 20000, 30000);
    uint8_t rid[SCHED_REQUEST_ID_LEN] = {0};
    memcpy(rid, &refused_id, sizeof(refused_id));
    assert_null(scheduler_find(f->sched, rid)); /* nothing kept */
    assert_int_equal(scheduler_client_count(f->sched, "clients/alice"), 4);
    /* Someone else is not refused; once one of hers ends, she may send again. */
    sched_dispatch bob;
    assert_int_equal(submit(f, "clients/bob", 0, T0, &bob), 0);
    assert_int_equal(scheduler_complete(f->sched, d[0].ticket, true, NULL), 0);
    assert_int_equal(submit_full(f, &s, T0 + 1, &over), 0);
    assert_int_equal(s.busy.reason, SCHED_BUSY_NONE);
    /* The model's queue bound still has its own reason. */
    p.max_per_client = 0;
    p.max_queued_per_model = 2;
    restart(f, p);
    for (int i = 0; i < 3; i++) /* one takes the slot of MODEL, two wait */
        assert_int_equal(submit(f, NULL, 0, T0, &d[0]), 0);
    s = (sub){.client = "clients/carol"};
    assert_int_equal(submit_full(f, &s, T0, &over), EF_EBUSY);
    assert_int_equal(s.busy.reason, SCHED_BUSY_QUEUE);
    assert_int_equal(s.busy.limit, 2);
    assert_true(s.retry >= 100);
}

static void test_three_clients_take_turns_round_robin(void **state)
{
    fixture *f = *state;
    start(f, scheduler_default_params());
    join(f, "sim-a", 1, T0);
    sched_dispatch blocker, d[9];
    const char *who[3] = {"clients/a", "clients/b", "clients/c"};
    assert_int_equal(submit(f, "clients/x", 0, T0, &blocker), 0);
    for (int i = 0; i < 9; i++) /* a a a b b b c c c */
        assert_int_equal(submit(f, who[i / 3], 0, T0, &d[i]), 0);
    int expect[9] = {0, 3, 6, 1, 4, 7, 2, 5, 8}; /* a b c a b c a b c */
    uint64_t prev = blocker.ticket;
    for (int i = 0; i < 9; i++) {
        prev = next_after(f, prev, T0 + 1 + i);
        assert_int_equal(prev, d[expect[i]].ticket);
        assert_int_equal(scheduler_check(f->sched), 0);
    }
}

static void test_within_one_client_the_earliest_deadline_still_goes_first(void **state)
{
    fixture *f = *state;
    start(f, scheduler_default_params());
    join(f, "sim-a", 1, T0);
    sched_dispatch blocker, a[4], b[2];
    uint64_t a_deadlines[4] = {0, T0 + 900, T0 + 500, T0 + 700};
    uint64_t b_deadlines[2] = {0, T0 + 300};
    assert_int_equal(submit(f, "clients/x", 0, T0, &blocker), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(submit(f, "clients/a", a_deadlines[i], T0, &a[i]), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(submit(f, "clients/b", b_deadlines[i], T0, &b[i]), 0);
    assert_int_equal(scheduler_next_deadline_ms(f->sched), T0 + 300);
    /* Turns a b a b a a; within a: 500 700 900 none; within b: 300 none. */
    uint64_t expect[6] = {a[2].ticket, b[1].ticket, a[3].ticket,
                          b[0].ticket, a[1].ticket, a[0].ticket};
    uint64_t prev = blocker.ticket;
    for (int i = 0; i < 6; i++) {
        prev = next_after(f, prev, T0 + 1 + i);
        assert_int_equal(prev, expect[i]);
    }
}

static void test_requeued_request_keeps_its_claim_at_the_front(void **state)
{
    fixture *f = *state;
    start(f, scheduler_default_params());
    agent_id_t ag = join(f, "sim-a", 1, T0);
    /* Its client has more waiting: it goes before them, and the turn order stays. */
    sched_dispatch a1, a2, b1;
    assert_int_equal(submit(f, "clients/a", 0, T0, &a1), 0);
    assert_int_equal(a1.agent, ag);
    assert_int_equal(submit(f, "clients/a", 0, T0, &a2), 0);
    assert_int_equal(submit(f, "clients/b", 0, T0, &b1), 0);
    assert_int_equal(scheduler_requeue(f->sched, a1.ticket, T0 + 1), 0); /* agent said EBUSY */
    assert_int_equal(scheduler_client_count(f->sched, "clients/a"), 2);  /* still hers */
    sched_dispatch got;
    assert_int_equal(scheduler_dispatch(f->sched, T0 + 2, &got, 1), 1);
    assert_int_equal(got.ticket, a1.ticket);
    assert_int_equal(scheduler_get(f->sched, a1.ticket)->attempts, 2);
    assert_int_equal(next_after(f, a1.ticket, T0 + 3), b1.ticket);
    assert_int_equal(next_after(f, b1.ticket, T0 + 4), a2.ticket);
    /* Its client has nothing else waiting: it gets the next turn, before the clients waiting. */
    sched_dispatch c1, d1;
    assert_int_equal(submit(f, "clients/c", 0, T0 + 5, &c1), 0);
    assert_int_equal(submit(f, "clients/d", 0, T0 + 5, &d1), 0);
    assert_int_equal(scheduler_requeue(f->sched, a2.ticket, T0 + 6), 0);
    assert_int_equal(scheduler_dispatch(f->sched, T0 + 7, &got, 1), 1);
    assert_int_equal(got.ticket, a2.ticket);
    assert_int_equal(next_after(f, a2.ticket, T0 + 8), c1.ticket);
    assert_int_equal(next_after(f, c1.ticket, T0 + 9), d1.ticket);
    assert_int_equal(scheduler_check(f->sched), 0);
}

static void assert_counts(fixture *f, uint32_t a, uint32_t b, uint32_t c)
{
    assert_int_equal(scheduler_client_count(f->sched, "clients/a"), a);
    assert_int_equal(scheduler_client_count(f->sched, "clients/b"), b);
    assert_int_equal(scheduler_client_count(f->sched, NULL), c);
    assert_int_equal(scheduler_client_count(f->sched, ""), c); /* "" is the anonymous too */
    assert_int_equal(scheduler_clients(f->sched), (a > 0) + (b > 0) + (c > 0));
    assert_int_equal(scheduler_check(f->sched), 0);
}

static void test_every_way_a_request_ends_brings_its_client_count_back_to_zero(void **state)
{
    fixture *f = *state;
    scheduler_params p = scheduler_default_params();
    p.orphan_grace_ms = 1000;
    start(f, p);
    agent_id_t ag = join(f, "sim-a", 2, T0);
    sched_dispatch run_a, run_b, late, q_b, q_anon, q_a;
    assert_int_equal(submit(f, "clients/a", 0, T0, &run_a), 0);
    assert_int_equal(submit(f, "clients/b", 0, T0, &run_b), 0);
    assert_int_equal(submit(f, "clients/a", T0 + 100, T0, &late), 0);
    assert_int_equal(submit(f, "clients/b", 0, T0, &q_b), 0);
    assert_int_equal(submit(f, NULL, 0, T0, &q_anon), 0);
    assert_int_equal(submit(f, "clients/a", 0, T0, &q_a), 0);
    assert_counts(f, 3, 2, 1);
    sched_request out[8];
    /* Expired: counted until scheduler_expire hands it back. */
    assert_int_equal(scheduler_expire(f->sched, T0 + 100, out, 8), 1);
    assert_int_equal(out[0].ticket, late.ticket);
    assert_string_equal(out[0].client, "clients/a");
    assert_counts(f, 2, 2, 1);
    /* Cancel: a queued one leaves at once, a running one at its Done. */
    assert_int_equal(scheduler_cancel(f->sched, q_anon.ticket, &out[0]), 0);
    assert_string_equal(out[0].client, "");
    assert_counts(f, 2, 2, 0);
    assert_int_equal(scheduler_cancel(f->sched, run_b.ticket, &out[0]), 0);
    assert_counts(f, 2, 2, 0);
    assert_int_equal(scheduler_complete(f->sched, run_b.ticket, false, NULL), 0);
    assert_counts(f, 2, 1, 0);
    /* Agent gone: its in-flight requests come back (a's turn took the freed slot: q_a). */
    sched_dispatch got[4];
    assert_int_equal(scheduler_dispatch(f->sched, T0 + 101, got, 4), 1);
    assert_int_equal(got[0].ticket, q_a.ticket);
    assert_int_equal(scheduler_agent_gone(f->sched, ag, out, 8), 2);
    assert_int_equal(registry_remove(f->reg, ag), 0);
    assert_counts(f, 0, 1, 0);
    /* Orphaned: the last queued one, once no agent served its model for the grace. */
    assert_int_equal(scheduler_orphaned(f->sched, T0 + 200, out, 8), 0);
    assert_int_equal(scheduler_orphaned(f->sched, T0 + 1200, out, 8), 1);
    assert_int_equal(out[0].ticket, q_b.ticket);
    assert_counts(f, 0, 0, 0);
    /* Flush: whatever is left at shutdown. */
    join(f, "sim-b", 1, T0 + 1300);
    assert_int_equal(submit(f, "clients/a", 0, T0 + 1300, &run_a), 0);
    assert_int_equal(submit(f, "clients/b", 0, T0 + 1300, &q_b), 0);
    assert_counts(f, 1, 1, 0);
    assert_int_equal(scheduler_flush(f->sched, out, 8), 2);
    assert_counts(f, 0, 0, 0);
    assert_int_equal(scheduler_queued(f->sched, MODEL), 0);
    assert_int_equal(scheduler_inflight(f->sched), 0);
}

/* ---- a long random mix, checked against the test's own books ------------------------------ */

#define MIX_REQUESTS        10000
#define MIX_CLIENTS         7 /* index 0 is the anonymous client */
#define MIX_AGENTS          3
#define MIX_LIVE_MAX        (MIX_CLIENTS * 40) /* max_per_client 40 below */
#define MIX_ORPHAN_GRACE_MS 2000

typedef struct {
    fixture *f;
    uint32_t seed;
    uint64_t now;
    agent_id_t agents[MIX_AGENTS];
    uint32_t agent_names; /* agents ever joined: fresh names for replacements */
    uint64_t live[MIX_LIVE_MAX];
    int live_client[MIX_LIVE_MAX];
    size_t n_live;
    uint32_t submitted, refused, completed, requeued, cancelled, expired, orphaned, lost,
        dispatched;
} mix;

static const char *mix_client_name[MIX_CLIENTS] = {
    NULL, "clients/0", "clients/1", "clients/2", "clients/3", "clients/4", "clients/5"};

static uint32_t lcg(uint32_t *s) /* deterministic: the same mix every run */
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

static void mix_forget(mix *m, const sched_request *r)
{
    for (size_t i = 0; i < m->n_live; i++)
        if (m->live[i] == r->ticket) {
            const char *want = mix_client_name[m->live_client[i]];
            assert_string_equal(r->client, want ? want : ""); /* the record kept its client */
            m->live[i] = m->live[--m->n_live];
            m->live_client[i] = m->live_client[m->n_live];
            return;
        }
    fail_msg("ticket %llu handed back but not live", (unsigned long long)r->ticket);
}

static void mix_join(mix *m, int i)
{
    char name[32];
    snprintf(name, sizeof(name), "sim-%u", m->agent_names++);
    m->agents[i] = join_serving(m->f, name, 1 + (uint32_t)i, i != 1, m->now);
}

static void mix_submit(mix *m)
{
    int c = (int)(lcg(&m->seed) % MIX_CLIENTS);
    sub s = {.client = mix_client_name[c], .model = lcg(&m->seed) % 3 ? MODEL : MODEL2};
    if (lcg(&m->seed) % 4 == 0)
        s.deadline = m->now + 1 + lcg(&m->seed) % 500;
    sched_dispatch d;
    m->submitted++;
    int rc = submit_full(m->f, &s, m->now, &d);
    if (rc == EF_EBUSY) {
        assert_true(s.busy.reason == SCHED_BUSY_CLIENT || s.busy.reason == SCHED_BUSY_QUEUE);
        m->refused++;
        return;
    }
    assert_int_equal(rc, 0);
    assert_true(m->n_live < MIX_LIVE_MAX);
    m->live[m->n_live] = d.ticket;
    m->live_client[m->n_live++] = c;
}

/* A live request in state want, from a random starting point; 0 when there is none. */
static uint64_t mix_pick(mix *m, sched_state want)
{
    size_t start = m->n_live ? lcg(&m->seed) % m->n_live : 0;
    for (size_t k = 0; k < m->n_live; k++) {
        uint64_t t = m->live[(start + k) % m->n_live];
        sched_request *r = scheduler_get(m->f->sched, t);
        assert_non_null(r);
        if (r->state == want)
            return t;
    }
    return 0;
}

/* Every board serving MODEL2 drains for longer than the orphan grace: its queue is failed. */
static void mix_blackout(mix *m, sched_request *out, size_t cap)
{
    for (int i = 0; i < MIX_AGENTS; i += 2)
        assert_int_equal(registry_set_drain(m->f->reg, m->agents[i], true), 0);
    for (int pass = 0; pass < 2; pass++) {
        size_t n;
        while ((n = scheduler_orphaned(m->f->sched, m->now, out, cap)) > 0)
            for (size_t i = 0; i < n; i++, m->orphaned++)
                mix_forget(m, &out[i]);
        m->now += MIX_ORPHAN_GRACE_MS; /* the first pass started the grace */
        for (int i = 0; i < MIX_AGENTS; i++)
            assert_int_equal(registry_touch(m->f->reg, m->agents[i], m->now), 0);
    }
    for (int i = 0; i < MIX_AGENTS; i += 2)
        assert_int_equal(registry_set_drain(m->f->reg, m->agents[i], false), 0);
}

static void mix_step(mix *m)
{
    scheduler_t *sc = m->f->sched;
    sched_request out[4], one;
    sched_dispatch d[8];
    uint32_t op = lcg(&m->seed) % 100;
    uint64_t t;
    if (op < 50) {
        mix_submit(m);
    } else if (op < 65 && (t = mix_pick(m, SCHED_INFLIGHT)) != 0) {
        assert_int_equal(scheduler_complete(sc, t, op % 2, &one), 0);
        mix_forget(m, &one);
        m->completed++;
    } else if (op < 70 && (t = mix_pick(m, SCHED_INFLIGHT)) != 0) {
        assert_int_equal(scheduler_requeue(sc, t, m->now), 0);
        m->requeued++;
    } else if (op < 76 && (t = mix_pick(m, SCHED_QUEUED)) != 0) {
        assert_int_equal(scheduler_cancel(sc, t, &one), 0);
        mix_forget(m, &one);
        m->cancelled++;
    } else if (op < 84) {
        m->now += lcg(&m->seed) % 60;
        size_t n;
        while ((n = scheduler_expire(sc, m->now, out, 4)) > 0)
            for (size_t i = 0; i < n; i++, m->expired++)
                mix_forget(m, &out[i]);
    } else if (op < 85 && lcg(&m->seed) % 4 == 0) {
        mix_blackout(m, out, 4);
    } else if (op < 87) { /* a board dies; a fresh one takes its place */
        int i = (int)(lcg(&m->seed) % MIX_AGENTS);
        size_t n;
        while ((n = scheduler_agent_gone(sc, m->agents[i], out, 4)) > 0)
            for (size_t k = 0; k < n; k++, m->lost++)
                mix_forget(m, &out[k]);
        assert_int_equal(registry_remove(m->f->reg, m->agents[i]), 0);
        mix_join(m, i);
    } else {
        m->dispatched += (uint32_t)scheduler_dispatch(sc, m->now, d, 1 + lcg(&m->seed) % 8);
    }
    for (int i = 0; i < MIX_AGENTS; i++)
        assert_int_equal(registry_touch(m->f->reg, m->agents[i], m->now), 0);
}

/* The scheduler's per-client counts against the books; credits against its in-flight ones. */
static void mix_check_counts(mix *m, bool full)
{
    uint32_t want[MIX_CLIENTS] = {0}, inflight = 0;
    for (size_t i = 0; i < m->n_live; i++)
        want[m->live_client[i]]++;
    for (int c = 0; c < MIX_CLIENTS; c++)
        assert_int_equal(scheduler_client_count(m->f->sched, mix_client_name[c]), want[c]);
    if (!full)
        return;
    for (int i = 0; i < MIX_AGENTS; i++) {
        const registry_agent *a = registry_get(m->f->reg, m->agents[i]);
        for (size_t mi = 0; mi < a->n_models; mi++)
            inflight += a->models[mi].inflight;
    }
    assert_int_equal(inflight, scheduler_inflight(m->f->sched));
    assert_int_equal(scheduler_check(m->f->sched), 0);
}

static void test_ten_thousand_mixed_moves_keep_the_books(void **state)
{
    fixture *f = *state;
    scheduler_params p = scheduler_default_params();
    p.max_per_client = 40;
    p.max_queued_per_model = 150;
    p.orphan_grace_ms = MIX_ORPHAN_GRACE_MS;
    start(f, p);
    mix m = {.f = f, .seed = 12345, .now = T0};
    for (int i = 0; i < MIX_AGENTS; i++)
        mix_join(&m, i);
    for (uint32_t step = 0; m.submitted < MIX_REQUESTS; step++) {
        mix_step(&m);
        mix_check_counts(&m, step % 64 == 0);
    }
    mix_check_counts(&m, true);
    printf("mix: %u submitted, %u refused busy, %u dispatched from queues, %u completed, %u "
           "requeued, %u cancelled, %u expired, %u orphaned, %u lost with an agent\n",
           m.submitted, m.refused, m.dispatched, m.completed, m.requeued, m.cancelled, m.expired,
           m.orphaned, m.lost);
    /* Every move happened, and often enough to mean something. */
    assert_true(m.refused > 0 && m.refused < m.submitted / 2);
    assert_true(m.dispatched > 100 && m.completed > 100 && m.requeued > 100 && m.cancelled > 100);
    assert_true(m.expired > 100 && m.orphaned > 10 && m.lost > 10);
    sched_request out[16];
    size_t n;
    while ((n = scheduler_flush(f->sched, out, 16)) > 0)
        for (size_t i = 0; i < n; i++)
            mix_forget(&m, &out[i]);
    assert_int_equal(m.n_live, 0);
    mix_check_counts(&m, true);
    assert_int_equal(scheduler_clients(f->sched), 0);
    assert_int_equal(scheduler_inflight(f->sched), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_one_request_from_a_quiet_client_overtakes_a_flood_of_1000, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_flood_from_one_key_never_makes_another_key_busy,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_client_over_its_cap_is_refused_busy_with_the_reason_and_a_retry_hint, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_three_clients_take_turns_round_robin, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_within_one_client_the_earliest_deadline_still_goes_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_requeued_request_keeps_its_claim_at_the_front, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_every_way_a_request_ends_brings_its_client_count_back_to_zero, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ten_thousand_mixed_moves_keep_the_books, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
