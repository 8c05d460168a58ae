/* libedgefleet's asynchronous calls: each generate or chat is a call_single (client_call.c),
 * each batch a call with a batch's pump (client_batch.c, started in client_async_batch.c), whose
 * replies the reply core handles exactly as for a blocking call, driven by the events of
 * client_async.c instead of a blocking receive. A call waits for the link, is on the wire, waits
 * for a broken link to come back (then is sent again with its tokens), or has ended; ended calls
 * get their on_done only when the library is about to hand control back (leave()), never from
 * inside the function that started or cancelled them. Loop thread only; see
 * include/edgefleet.h. */
#include "client_async.h"
#include "client_call.h"
#include "clock.h"
#include "grow.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

EF_API ef_call_params ef_call_default_params(void)
{
    ef_call_params p;
    memset(&p, 0, sizeof p);
    return p;
}

/* ---- entering and leaving: where on_done is called ----------------------------------------- */

static void enter(ef_client_t *c) { c->calls.depth++; }

static void end_call(struct ef_call *a, int code, const char *why);

/* Hand every ended call its on_done and free it (outermost level only, so a callback never
 * runs inside the library's own handling of a frame), then finish a destroy asked for inside a
 * callback. */
static void leave(ef_client_t *c)
{
    client_calls *t = &c->calls;
    while (t->depth == 1) {
        if (t->destroying)
            while (t->pending)
                end_call(t->pending, EF_ECANCELED, "the client was destroyed");
        struct ef_call *a = t->ended;
        if (!a)
            break;
        t->ended = a->next;
        if (!t->ended)
            t->ended_tail = NULL;
        t->n_pending--;
        if (a->b) {
            async_batch_done(a);
        } else {
            ef_result r = a->s.it.result;
            a->cb.on_done(a, r.status, &r, a->cb.user);
        }
        async_call_free(a);
    }
    if (--t->depth == 0 && t->destroying) {
        free(t->slots);
        free(t->free_slots);
        t->slots = NULL;
        t->free_slots = NULL;
        client_async_finish(c);
    }
}

/* End a (code 0: its item has ended already, with its own outcome): cancel it on the fleet when
 * it is on the wire, move it to the ended list. Its on_done comes in leave(). */
static void end_call(struct ef_call *a, int code, const char *why)
{
    if (a->state == ACALL_ENDED)
        return;
    call *k = &a->s.k;
    if (code && k->n_done < k->n) {
        call_cancel_open(k);
        if (!a->b) /* a batch's open items end unreported, as in ef_client_batch */
            call_item_fail(k, &a->s.it, code, why);
    }
    if (a->b) {
        a->status = code ? code : a->refused ? a->refused : batch_outcome(k);
    } else {
        ef_result *r = &a->s.it.result;
        if (r->status && !r->message[0]) /* the client's last error may be another call's */
            snprintf(r->message, sizeof r->message, "%s", ef_strerror(r->status));
        a->status = call_single_outcome(&a->s, 0);
    }
    a->state = ACALL_ENDED;
    client_calls *t = &a->c->calls;
    t->slots[a->slot] = NULL;             /* a late reply to it finds nothing there */
    t->free_slots[t->n_free++] = a->slot; /* room made when the slot was taken */
    if (a->prev)
        a->prev->next = a->next;
    else
        t->pending = a->next;
    if (a->next)
        a->next->prev = a->prev;
    a->prev = a->next = NULL;
    if (t->ended_tail)
        t->ended_tail->next = a;
    else
        t->ended = a;
    t->ended_tail = a;
    if (t->depth == 0) /* ended outside any event (ef_call_cancel): on_done on the next turn */
        client_async_wake(a->c, 0);
}

/* After the core handled a frame for a: a token callback that asked to stop cancels it; an
 * item the core ended ends the call. */
static void settle(struct ef_call *a)
{
    if (a->state == ACALL_ENDED)
        return;
    call *k = &a->s.k;
    if (k->stop && k->n_done < k->n)
        end_call(a, EF_ECANCELED, "cancelled by a callback");
    else if (k->n_done == k->n)
        end_call(a, 0, NULL);
    else if (a->b && a->state == ACALL_SENT)
        async_call_pump(a);
}

void async_call_pump(struct ef_call *a)
{
    uint64_t wake = UINT64_MAX;
    int rc = a->s.k.hooks.pump(&a->s.k, clock_mono_ms(), &wake);
    if (rc)
        end_call(a, rc, a->c->last_error);
    else if (a->s.k.stop && a->s.k.n_done < a->s.k.n) /* an on_item the pump called said so */
        end_call(a, EF_ECANCELED, "cancelled by a callback");
    else if (a->s.k.n_done == a->s.k.n) /* its last items ended while being sent */
        end_call(a, 0, NULL);
    else
        client_async_wake(a->c, wake);
}

/* ---- events from the loop ------------------------------------------------------------------ */

static int call_token(const char *text, size_t len, void *user)
{
    struct ef_call *a = user;
    if (a->state == ACALL_ENDED || !a->cb.on_token) /* cancelled from an earlier callback */
        return a->state == ACALL_ENDED;
    return a->cb.on_token(a, text, len, a->cb.user);
}

static const ProtobufCBinaryData *reply_id(const envelope *env)
{
    switch (env->body_case) {
    case EDGEFLEET__ENVELOPE__BODY_TOKEN_CHUNK:
        return &env->token_chunk->request_id;
    case EDGEFLEET__ENVELOPE__BODY_DONE:
        return &env->done->request_id;
    case EDGEFLEET__ENVELOPE__BODY_ERROR:
        return &env->error->request_id;
    default:
        return NULL; /* operator replies and the like: no call of ours waits for them */
    }
}

/* The call after the one just handled, or, when a callback (a batch's on_item) ended it
 * meanwhile, the first pending call again: an ended call has left the pending list. */
static struct ef_call *still_pending(ef_client_t *c, struct ef_call *next)
{
    return next && next->state == ACALL_ENDED ? c->calls.pending : next;
}

void async_calls_on_frame(ef_client_t *c, const envelope *env)
{
    const ProtobufCBinaryData *id = reply_id(env);
    if (!id)
        return;
    enter(c);
    /* An Error with no id: the coordinator could not read a frame of ours and cannot say which;
     * as the blocking client ends its call, every call on the wire ends with it. */
    int unnamed = env->body_case == EDGEFLEET__ENVELOPE__BODY_ERROR && id->len == 0;
    if (unnamed) {
        struct ef_call *next = NULL;
        for (struct ef_call *a = c->calls.pending; a; a = next) {
            next = a->next;
            if (a->state == ACALL_WAIT_LINK)
                continue;
            int rc = call_on_reply(&a->s.k, env);
            a->refused = rc ? rc : a->refused;
            settle(a); /* a has ended: every item failed */
            next = still_pending(c, next);
        }
    } else if (id->len == CODEC_REQUEST_ID_LEN) {
        uint32_t slot = 0;
        for (int b = 0; b < 4; b++)
            slot = slot << 8 | id->data[CALL_SLOT_AT + b];
        struct ef_call *a = slot < c->calls.n_slots ? c->calls.slots[slot] : NULL;
        if (a && call_owns_id(&a->s.k, *id)) { /* the whole id: not a stale call's */
            int rc = call_on_reply(&a->s.k, env);
            a->refused = rc ? rc : a->refused;
            settle(a);
        }
    }
    leave(c);
}

/* Put a on the wire: its first attempt, or again after a broken link with what it received. */
static void send_call(struct ef_call *a)
{
    int again = a->state == ACALL_LINK_LOST;
    int rc = again ? call_send_again(&a->s.k) : a->b ? 0 : call_single_send(&a->s);
    if (rc) {
        end_call(a, rc, a->c->last_error);
        return;
    }
    a->state = ACALL_SENT;
    if (a->b) /* a batch's items go out through its pump, held ones too */
        async_call_pump(a);
}

void async_calls_link_up(ef_client_t *c)
{
    enter(c);
    client_async_drain(c); /* what the old link delivered comes before anything sent again */
    struct ef_call *next = NULL;
    for (struct ef_call *a = c->calls.pending; a; a = next) {
        next = a->next;
        if (a->state == ACALL_WAIT_LINK || a->state == ACALL_LINK_LOST)
            send_call(a);
        next = still_pending(c, next);
    }
    leave(c);
}

void async_calls_link_down(ef_client_t *c)
{
    enter(c);
    uint64_t now = clock_mono_ms();
    struct ef_call *next = NULL;
    for (struct ef_call *a = c->calls.pending; a; a = next) {
        next = a->next;
        if (a->state != ACALL_SENT)
            continue;
        if (a->s.k.resends >= CALL_RESENDS_MAX || a->s.k.stop) {
            end_call(a, EF_ENOTCONN, "lost the connection to the coordinator mid-call");
            continue;
        }
        a->state = ACALL_LINK_LOST;
        a->link_until_ms = a->end_ms != UINT64_MAX ? a->end_ms : now + c->connect_timeout_ms;
        client_async_wake(c, a->link_until_ms);
    }
    leave(c);
}

void async_calls_link_refused(ef_client_t *c)
{
    enter(c);
    struct ef_call *next = NULL;
    for (struct ef_call *a = c->calls.pending; a; a = next) {
        next = a->next;
        if (a->state == ACALL_WAIT_LINK || a->state == ACALL_LINK_LOST)
            end_call(a, client_link_failure(c), c->last_error);
    }
    leave(c);
}

uint64_t async_calls_tick(ef_client_t *c, uint64_t now)
{
    uint64_t wake = UINT64_MAX;
    enter(c);
    struct ef_call *next = NULL;
    for (struct ef_call *a = c->calls.pending; a; a = next) {
        next = a->next;
        int waiting = a->state == ACALL_WAIT_LINK || a->state == ACALL_LINK_LOST;
        if (a->end_ms <= now) {
            char why[96];
            snprintf(why, sizeof why, "no answer within %u ms", c->request_timeout_ms);
            end_call(a, EF_ETIMEDOUT, why);
        } else if (!waiting || a->link_until_ms > now) {
            uint64_t at = waiting && a->link_until_ms < a->end_ms ? a->link_until_ms : a->end_ms;
            wake = at < wake ? at : wake;
            if (a->b && !waiting) /* due resends and deadlines (it asks to be woken for more) */
                async_call_pump(a);
            next = still_pending(c, next);
        } else if (a->state == ACALL_WAIT_LINK) {
            end_call(a, client_link_timed_out(c), c->last_error);
        } else {
            end_call(a, EF_ENOTCONN,
                     "lost the connection to the coordinator mid-call; it did not come back in "
                     "time");
        }
    }
    leave(c);
    return wake;
}

void async_calls_destroy(ef_client_t *c)
{
    if (c->calls.destroying)
        return;
    c->calls.destroying = 1;
    if (c->calls.depth > 0)
        return; /* inside a callback: the outermost leave() finishes */
    enter(c);
    leave(c);
}

/* ---- starting calls ------------------------------------------------------------------------ */

/* Room for s and its NUL in the strings block; NULL counts as absent. */
static size_t room(const char *s) { return s ? strlen(s) + 1 : 0; }

static char *put(char **at, const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *out = memcpy(*at, s, n);
    *at += n;
    return out;
}

/* Copy everything of the caller's that the Request will point at. 0 or EF_ENOMEM. */
static int copy_args(struct ef_call *a, const char *model, const char *prompt,
                     const ef_chat_message *messages, size_t n_messages)
{
    ef_gen_params *p = &a->params;
    size_t n_stop = p->stop ? p->n_stop : 0, need = room(model) + room(prompt);
    need += room(p->session_id);
    for (size_t i = 0; i < n_stop; i++)
        need += room(p->stop[i]);
    for (size_t i = 0; i < n_messages; i++)
        need += room(messages[i].role ? messages[i].role : "user") +
                room(messages[i].content ? messages[i].content : "");
    a->strings = malloc(need ? need : 1);
    a->stop = n_stop ? calloc(n_stop, sizeof *a->stop) : NULL;
    a->msgs = n_messages ? calloc(n_messages, sizeof *a->msgs) : NULL;
    a->msg_ptrs = n_messages ? calloc(n_messages, sizeof *a->msg_ptrs) : NULL;
    if (!a->strings || (n_stop && !a->stop) || (n_messages && (!a->msgs || !a->msg_ptrs)))
        return EF_ENOMEM;
    char *at = a->strings;
    a->model = put(&at, model);
    a->prompt = put(&at, prompt);
    p->session_id = put(&at, p->session_id);
    for (size_t i = 0; i < n_stop; i++)
        a->stop[i] = put(&at, p->stop[i] ? p->stop[i] : "");
    p->stop = (const char *const *)a->stop;
    p->n_stop = n_stop;
    for (size_t i = 0; i < n_messages; i++) {
        edgefleet__chat_message__init(&a->msgs[i]);
        a->msgs[i].role = put(&at, messages[i].role ? messages[i].role : "user");
        a->msgs[i].content = put(&at, messages[i].content ? messages[i].content : "");
        a->msg_ptrs[i] = &a->msgs[i];
    }
    return 0;
}

/* A slot for a: a free one, or a new one (with room kept to free it again). 0 or EF_ENOMEM. */
static int take_slot(ef_client_t *c, struct ef_call *a)
{
    client_calls *t = &c->calls;
    if (t->n_free > 0) {
        a->slot = t->free_slots[--t->n_free];
    } else {
        if (t->n_slots >= UINT32_MAX ||
            grow_array((void **)&t->slots, &t->slots_cap, t->n_slots + 1, sizeof *t->slots) ||
            grow_array((void **)&t->free_slots, &t->free_cap, t->n_slots + 1,
                       sizeof *t->free_slots))
            return EF_ENOMEM;
        a->slot = (uint32_t)t->n_slots++;
    }
    t->slots[a->slot] = a;
    return 0;
}

void async_call_free(struct ef_call *a)
{
    if (a->s.k.items && a->s.k.items != &a->s.it) { /* a batch's items */
        for (size_t i = 0; i < a->s.k.n; i++) {
            free(a->s.k.items[i].text);
            free(a->s.k.items[i].tokens);
        }
        free(a->s.k.items);
        batch_free(&a->b);
    } else {
        free(a->s.it.tokens);
    }
    free(a->strings);
    free(a->stop);
    free(a->msgs);
    free(a->msg_ptrs);
    free(a->items);
    free(a->item_params);
    free(a);
}

int async_call_slot(struct ef_call *a) { return take_slot(a->c, a); }

void async_call_start(struct ef_call *a)
{
    ef_client_t *c = a->c;
    uint64_t now = a->s.k.start_ms;
    a->s.k.slotted = 1;
    a->s.k.slot = a->slot;
    a->end_ms = c->request_timeout_ms ? now + c->request_timeout_ms : UINT64_MAX;
    a->link_until_ms = now + c->connect_timeout_ms;
    a->next = c->calls.pending;
    if (a->next)
        a->next->prev = a;
    c->calls.pending = a;
    c->calls.n_pending++;
    a->state = ACALL_WAIT_LINK;
    if (c->link_error && !c->connected)
        end_call(a, client_link_failure(c), c->last_error);
    else if (c->connected && !a->b)
        send_call(a);
    /* A batch's first items go out from the next tick: its pump may end items (too big, past
     * their deadline), and no callback runs inside the function that started the call. */
    uint64_t at = a->link_until_ms < a->end_ms ? a->link_until_ms : a->end_ms;
    client_async_wake(c, c->connected && a->b ? 0 : at);
}

/* Make a generate or chat call, link it in and send it (or let it wait for the link). */
static int start(ef_client_t *c, const char *model, const char *prompt,
                 const ef_chat_message *messages, size_t n_messages, const ef_gen_params *params,
                 const ef_call_params *cb, ef_call_t **call_out)
{
    if (call_out)
        *call_out = NULL;
    if (call_check_args(c, model, params, NULL) || !c->loop || c->calls.destroying || !cb ||
        !cb->on_done)
        return EF_EINVAL;
    struct ef_call *a = calloc(1, sizeof *a);
    if (!a)
        return EF_ENOMEM;
    a->c = c;
    a->cb = *cb;
    a->params = params ? *params : ef_gen_default_params();
    if (copy_args(a, model, prompt, messages, n_messages) != 0 || take_slot(c, a) != 0) {
        async_call_free(a);
        return EF_ENOMEM;
    }
    call_single_init(&a->s, c, a->model, &a->params, a->prompt, a->msg_ptrs, n_messages);
    call_id_put_slot(a->s.it.id, a->slot);
    a->s.k.on_token = call_token;
    a->s.k.user = a;
    if (call_out)
        *call_out = a;
    async_call_start(a);
    return 0;
}

EF_API int ef_client_generate_async(ef_client_t *client, const char *model, const char *prompt,
                                    const ef_gen_params *params, const ef_call_params *cb,
                                    ef_call_t **call_out)
{
    if (!prompt)
        return EF_EINVAL;
    return start(client, model, prompt, NULL, 0, params, cb, call_out);
}

EF_API int ef_client_chat_async(ef_client_t *client, const char *model,
                                const ef_chat_message *messages, size_t n_messages,
                                const ef_gen_params *params, const ef_call_params *cb,
                                ef_call_t **call_out)
{
    if (!messages || n_messages == 0)
        return EF_EINVAL;
    return start(client, model, NULL, messages, n_messages, params, cb, call_out);
}

EF_API int ef_call_cancel(ef_call_t *a)
{
    if (!a)
        return EF_EINVAL;
    end_call(a, EF_ECANCELED, "cancelled (ef_call_cancel)");
    return 0;
}

EF_API size_t ef_client_pending(const ef_client_t *client)
{
    return client && client->loop ? client->calls.n_pending : 0;
}
