/* Implementation of outbox.h: one singly linked list in creation order; sent frames come first,
 * `unsent` points at the first frame not yet sent and `last_sent` at the one before it (NULL when
 * none was sent), so a flush starts where the last one stopped however many sent frames are
 * retained. */
#include "outbox.h"

#include "codec.h"
#include "edgefleet.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

struct outbox_frame {
    uint8_t *buf;
    size_t len;
    uint64_t deadline_unix_ms;
    uint64_t sent_ms; /* 0 = not sent (or rewound) */
    uint8_t id[16];
    struct outbox_frame *next;
};

struct outbox {
    outbox_frame *head, *tail, *unsent, *last_sent;
    size_t bytes, n_unsent;
};

outbox *outbox_new(void) { return calloc(1, sizeof(outbox)); }

static void frame_free(outbox *ob, outbox_frame *f)
{
    ob->bytes -= f->len;
    free(f->buf);
    free(f);
}

void outbox_destroy(outbox **ob_p)
{
    if (!ob_p || !*ob_p)
        return;
    outbox *ob = *ob_p;
    while (ob->head) {
        outbox_frame *f = ob->head;
        ob->head = f->next;
        frame_free(ob, f);
    }
    free(ob);
    *ob_p = NULL;
}

/* Unlink *pp (the frame it points at, whose predecessor is prev) and free it. */
static void unlink_frame(outbox *ob, outbox_frame **pp, outbox_frame *prev)
{
    outbox_frame *f = *pp;
    *pp = f->next;
    if (ob->tail == f)
        ob->tail = prev;
    if (ob->unsent == f)
        ob->unsent = f->next;
    if (ob->last_sent == f)
        ob->last_sent = prev;
    if (!f->sent_ms)
        ob->n_unsent--;
    frame_free(ob, f);
}

int outbox_push(outbox *ob, uint8_t **buf, size_t len, uint64_t deadline_unix_ms,
                const uint8_t id[16])
{
    outbox_frame *f = calloc(1, sizeof *f);
    if (!f)
        return EF_ENOMEM;
    f->buf = *buf;
    *buf = NULL;
    f->len = len;
    f->deadline_unix_ms = deadline_unix_ms;
    memcpy(f->id, id, 16);
    if (ob->tail)
        ob->tail->next = f;
    else
        ob->head = f;
    ob->tail = f;
    if (!ob->unsent)
        ob->unsent = f;
    ob->bytes += len;
    ob->n_unsent++;
    while (ob->bytes > OUTBOX_MAX_BYTES && ob->head != f) {
        char hex[33];
        log_warn("outbox over %u MiB while the coordinator is away: dropping a reply of request "
                 "%s",
                 OUTBOX_MAX_BYTES >> 20,
                 codec_id_hex((ProtobufCBinaryData){16, ob->head->id}, hex));
        unlink_frame(ob, &ob->head, NULL);
    }
    return 0;
}

static int expired(const outbox_frame *f, uint64_t now_unix_ms)
{
    return f->deadline_unix_ms && now_unix_ms > f->deadline_unix_ms;
}

static void drop_expired(outbox *ob, outbox_frame **pp, outbox_frame *prev)
{
    char hex[33];
    log_info("dropping a buffered reply of request %s: its deadline passed while the "
             "coordinator was away",
             codec_id_hex((ProtobufCBinaryData){16, (*pp)->id}, hex));
    unlink_frame(ob, pp, prev);
}

size_t outbox_flush(outbox *ob, uint64_t now_ms, uint64_t now_unix_ms, outbox_send_fn send,
                    void *user)
{
    size_t sent = 0;
    if (!ob->unsent)
        return 0;
    outbox_frame *prev = ob->last_sent, **pp = prev ? &prev->next : &ob->head;
    while (*pp) {
        outbox_frame *f = *pp;
        if (expired(f, now_unix_ms)) {
            drop_expired(ob, pp, prev);
            continue;
        }
        if (send(f->buf, f->len, user) != 0)
            break;
        f->sent_ms = now_ms ? now_ms : 1;
        ob->n_unsent--;
        ob->unsent = f->next;
        ob->last_sent = f;
        sent++;
        prev = f;
        pp = &f->next;
    }
    return sent;
}

void outbox_rewind(outbox *ob, uint64_t since_ms)
{
    for (outbox_frame *prev = NULL, *f = ob->head; f && f != ob->unsent; prev = f, f = f->next) {
        if (f->sent_ms >= since_ms) {
            ob->unsent = f;
            ob->last_sent = prev;
            for (outbox_frame *g = f; g && g->sent_ms; g = g->next) {
                g->sent_ms = 0;
                ob->n_unsent++;
            }
            return;
        }
    }
}

void outbox_prune(outbox *ob, uint64_t now_ms, uint64_t now_unix_ms, uint64_t retain_ms)
{
    while (ob->head && ob->head->sent_ms && ob->head->sent_ms + retain_ms < now_ms)
        unlink_frame(ob, &ob->head, NULL);
    /* Only unsent frames can expire here: start after the sent ones. */
    outbox_frame *prev = ob->last_sent, **pp = prev ? &prev->next : &ob->head;
    while (*pp) {
        if (!(*pp)->sent_ms && expired(*pp, now_unix_ms)) {
            drop_expired(ob, pp, prev);
            continue;
        }
        prev = *pp;
        pp = &(*pp)->next;
    }
}

size_t outbox_unsent(const outbox *ob) { return ob->n_unsent; }
