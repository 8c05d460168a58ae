/* Implementation of peers.h: entries in a hash table keyed by SipHash (a secret key drawn at
 * start: routing ids can be chosen by peers) over link + routing id, with a use-ordered list for
 * eviction. Revocation reads each allowlist once per sweep (zap_snapshot) however many
 * connections there are. Loop thread only. */
#include "peers.h"

#include "clock.h"
#include "coord.h"
#include "log.h"
#include "zap.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct peer {
    peers_link link;
    uint8_t routing_id[COORD_PEER_MAX];
    size_t routing_id_len;
    char user_id[REGISTRY_KEY_MAX];
    char key[KEYS_Z85_LEN + 1];
    tsock_conn conn; /* fd -1 when libzmq did not say (inproc) */
    int revoked;
    uint64_t last_ms;   /* when its last message came (clock_mono_ms) */
    int closing;        /* a close was reported for its fd: checked again until the fd shows it */
    struct peer *hnext; /* bucket chain */
    struct peer *newer, *older; /* use order */
    struct peer *fd_next;       /* by_fd chain: peers recorded on the same fd number */
    struct peer *cnext, *cprev; /* closing list, while closing */
} peer;

struct peers {
    peer **buckets;
    size_t nbuckets; /* a power of two */
    size_t n;
    peer *newest, *oldest;
    uint8_t hash_key[crypto_shorthash_KEYBYTES];
    /* By fd number, so a reported close finds its peer without a scan of every connection
     * (thousands of them in a reconnect storm: it was a tenth of the loop at 10,000), and the
     * peers whose close is being checked, for the same reason. */
    peer **by_fd;
    size_t n_by_fd;
    peer *closing;
    uint64_t swept_stamp; /* zap_allow_stamp at the last read of the allowlists */
    uint64_t swept_ms;    /* and when it was */
};

peers *peers_new(void)
{
    peers *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->nbuckets = PEERS_MAX; /* chains stay short up to the most connections remembered */
    p->buckets = calloc(p->nbuckets, sizeof *p->buckets);
    if (!p->buckets) {
        free(p);
        return NULL;
    }
    randombytes_buf(p->hash_key, sizeof p->hash_key);
    return p;
}

void peers_destroy(peers **p_p)
{
    if (!p_p || !*p_p)
        return;
    peers *p = *p_p;
    for (peer *e = p->newest, *next; e; e = next) {
        next = e->older;
        free(e);
    }
    free(p->buckets);
    free(p->by_fd);
    free(p);
    *p_p = NULL;
}

size_t peers_count(const peers *p) { return p ? p->n : 0; }

static size_t bucket_of(const peers *p, peers_link link, const uint8_t *id, size_t len)
{
    uint8_t buf[1 + COORD_PEER_MAX], h[crypto_shorthash_BYTES];
    buf[0] = (uint8_t)link;
    memcpy(buf + 1, id, len);
    crypto_shorthash(h, buf, 1 + len, p->hash_key);
    uint64_t v;
    memcpy(&v, h, sizeof v);
    return (size_t)(v & (p->nbuckets - 1));
}

static peer **find_link(peers *p, peers_link link, const uint8_t *id, size_t len)
{
    peer **at = &p->buckets[bucket_of(p, link, id, len)];
    while (*at && !((*at)->link == link && (*at)->routing_id_len == len &&
                    memcmp((*at)->routing_id, id, len) == 0))
        at = &(*at)->hnext;
    return at;
}

static void unlist(peers *p, peer *e)
{
    if (e->newer)
        e->newer->older = e->older;
    else
        p->newest = e->older;
    if (e->older)
        e->older->newer = e->newer;
    else
        p->oldest = e->newer;
    e->newer = e->older = NULL;
}

static void push_newest(peers *p, peer *e)
{
    e->older = p->newest;
    if (p->newest)
        p->newest->newer = e;
    p->newest = e;
    if (!p->oldest)
        p->oldest = e;
}

static void fd_link(peers *p, peer *e)
{
    int fd = e->conn.fd;
    if (fd < 0)
        return;
    if ((size_t)fd >= p->n_by_fd) {
        size_t n = p->n_by_fd ? p->n_by_fd : 1024;
        while (n <= (size_t)fd)
            n *= 2;
        peer **grown = realloc(p->by_fd, n * sizeof *grown);
        if (!grown)
            return; /* its close is then noticed by the liveness window only */
        memset(grown + p->n_by_fd, 0, (n - p->n_by_fd) * sizeof *grown);
        p->by_fd = grown;
        p->n_by_fd = n;
    }
    e->fd_next = p->by_fd[fd];
    p->by_fd[fd] = e;
}

static void fd_unlink(peers *p, peer *e)
{
    int fd = e->conn.fd;
    if (fd < 0 || (size_t)fd >= p->n_by_fd)
        return;
    for (peer **at = &p->by_fd[fd]; *at; at = &(*at)->fd_next)
        if (*at == e) {
            *at = e->fd_next;
            break;
        }
    e->fd_next = NULL;
}

static void closing_add(peers *p, peer *e)
{
    if (e->cnext || e->cprev || p->closing == e)
        return;
    e->cnext = p->closing;
    if (p->closing)
        p->closing->cprev = e;
    p->closing = e;
}

static void closing_del(peers *p, peer *e)
{
    if (e->cprev)
        e->cprev->cnext = e->cnext;
    else if (p->closing == e)
        p->closing = e->cnext;
    if (e->cnext)
        e->cnext->cprev = e->cprev;
    e->cnext = e->cprev = NULL;
    e->closing = 0;
}

static void forget(peers *p, peer *e)
{
    fd_unlink(p, e);
    closing_del(p, e);
    peer **at = find_link(p, e->link, e->routing_id, e->routing_id_len);
    if (*at == e)
        *at = e->hnext;
    unlist(p, e);
    p->n--;
    free(e);
}

static peer *add(peers *p, peers_link link, const uint8_t *id, size_t len, zmq_msg_t *payload)
{
    if (p->n >= PEERS_MAX)
        forget(p, p->oldest);
    peer *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->link = link;
    memcpy(e->routing_id, id, len);
    e->routing_id_len = len;
    tsock_peer who;
    tsock_peer_of(payload, &who);
    snprintf(e->user_id, sizeof e->user_id, "%s", who.user_id);
    snprintf(e->key, sizeof e->key, "%s", who.key);
    if (tsock_conn_capture(who.fd, &e->conn) != 0)
        e->conn.fd = -1;
    fd_link(p, e);
    e->last_ms = clock_mono_ms();
    log_debug("peer %s (fd %d) first heard on the %s link", e->user_id, e->conn.fd,
              link == PEERS_AGENTS ? "agents" : "clients");
    peer **at = find_link(p, link, id, len);
    e->hnext = *at;
    *at = e;
    push_newest(p, e);
    p->n++;
    return e;
}

/* A message on a routing id we knew, from another connection (another fd or key): the one we
 * knew is gone, whether or not its close was reported and checked yet. The entry then
 * describes the new connection. */
static void reused(coord *c, peer *e, const tsock_peer *who)
{
    if (e->link == PEERS_AGENTS)
        agents_link_drop_other_key(c, e->routing_id, e->routing_id_len, who->user_id);
    snprintf(e->user_id, sizeof e->user_id, "%s", who->user_id);
    snprintf(e->key, sizeof e->key, "%s", who->key);
    fd_unlink(c->peers, e);
    closing_del(c->peers, e);
    if (tsock_conn_capture(who->fd, &e->conn) != 0)
        e->conn.fd = -1;
    fd_link(c->peers, e);
    e->revoked = 0; /* ZAP admitted the new connection */
}

int peers_seen(coord *c, peers_link link, zmq_msg_t *routing, zmq_msg_t *payload)
{
    peers *p = c->peers;
    size_t len = zmq_msg_size(routing);
    if (!p || len == 0 || len > COORD_PEER_MAX)
        return 0;
    const uint8_t *id = zmq_msg_data(routing);
    peer *e = *find_link(p, link, id, len);
    if (!e) {
        e = add(p, link, id, len, payload);
    } else {
        e->last_ms = clock_mono_ms();
        tsock_peer who;
        tsock_peer_of(payload, &who);
        /* An fd compares only when both are known: a connection we could not record must
         * not look new at each message (that would undo its revocation). */
        if (strcmp(who.user_id, e->user_id) != 0 ||
            (who.fd >= 0 && e->conn.fd >= 0 && who.fd != e->conn.fd))
            reused(c, e, &who);
        if (p->newest != e) {
            unlist(p, e);
            push_newest(p, e);
        }
    }
    return e && e->revoked ? EF_EDENIED : 0;
}

int peers_holds(const peers *p, peers_link link, const uint8_t *id, size_t len, const char *user_id)
{
    if (!p)
        return 1;
    if (len == 0 || len > COORD_PEER_MAX)
        return 0;
    const peer *e = *find_link((peers *)p, link, id, len);
    if (!e || e->revoked || strcmp(e->user_id, user_id) != 0)
        return 0;
    /* a close was reported: until its check, ask the fd itself */
    return !e->closing || tsock_conn_same(&e->conn);
}

/* An agent's TCP connection closed: a killed process's kernel closes it at once, so its
 * requests move on now rather than after the liveness window (silence still needs that). A
 * board that only lost its link comes back on a new one and registers again. */
static void agent_link_closed(coord *c, const peer *e)
{
    const registry_agent *a =
        registry_get_routing_id(c->registry, e->routing_id, e->routing_id_len);
    if (!a)
        return; /* already replaced by its new link, or gone */
    agent_id_t id = a->id;
    char name[REGISTRY_NAME_MAX];
    snprintf(name, sizeof name, "%s", a->name);
    log_warn("agent %s: its connection closed; removing it", name);
    registry_remove(c->registry, id);
    request_agent_gone(c, id, name, "its connection closed");
}

void peers_on_event(tsock *s, uint16_t event, uint32_t value, void *user)
{
    coord *c = user;
    (void)s;
    if (event != ZMQ_EVENT_DISCONNECTED || !c->peers)
        return;
    int any = 0;
    peers *p = c->peers;
    for (peer *e = value < p->n_by_fd ? p->by_fd[value] : NULL; e; e = e->fd_next) {
        any = e->closing = PEERS_CLOSE_CHECKS;
        closing_add(p, e);
    }
    /* libzmq reports the close just before it closes the fd, and a newer connection may reuse
     * the number: a connection counts as closed once its fd no longer carries the recorded
     * addresses, checked in a moment. */
    if (any && !uv_is_active((uv_handle_t *)&c->peers_timer))
        uv_timer_start(&c->peers_timer, peers_on_timer, PEERS_CLOSE_CHECK_MS, 0);
}

void peers_on_timer(uv_timer_t *t)
{
    coord *c = t->data;
    int again = 0;
    for (peer *e = c->peers ? c->peers->closing : NULL, *next; e; e = next) {
        next = e->cnext;
        if (tsock_conn_same(&e->conn)) {
            if (--e->closing > 0) /* not closed yet, or the report was about another */
                again = 1;
            else
                closing_del(c->peers, e);
            continue;
        }
        if (e->link == PEERS_AGENTS)
            agent_link_closed(c, e);
        forget(c->peers, e);
    }
    if (again)
        uv_timer_start(t, peers_on_timer, PEERS_CLOSE_CHECK_MS, 0);
}

void peers_cut_silent(coord *c, uint64_t now_ms, uint64_t silent_ms)
{
    for (peer *e = c->peers ? c->peers->oldest : NULL, *newer; e; e = newer) {
        newer = e->newer;
        if (now_ms <= e->last_ms || now_ms - e->last_ms <= silent_ms)
            return; /* the rest were heard from more recently */
        if (e->link != PEERS_AGENTS ||
            registry_get_routing_id(c->registry, e->routing_id, e->routing_id_len))
            continue; /* clients have ZMTP PINGs; a registered agent is the sweep's */
        log_info("agent link %s (fd %d) silent for %llu ms with no agent on it: cut", e->user_id,
                 e->conn.fd, (unsigned long long)(now_ms - e->last_ms));
        if (e->conn.fd >= 0)
            tsock_conn_cut(&e->conn);
        forget(c->peers, e);
    }
}

/* A live agent connection lost its key: the agent leaves the fleet now. */
static void revoke_agent(coord *c, const peer *e)
{
    const registry_agent *a =
        registry_get_routing_id(c->registry, e->routing_id, e->routing_id_len);
    if (!a)
        return;
    agent_id_t id = a->id;
    char name[REGISTRY_NAME_MAX];
    snprintf(name, sizeof name, "%s", a->name);
    registry_remove(c->registry, id);
    request_agent_gone(c, id, name, "its key was revoked");
}

static void revoke_peer(coord *c, peer *e)
{
    e->revoked = 1;
    int cut = e->conn.fd >= 0 ? tsock_conn_cut(&e->conn) : EF_ENOENT;
    log_warn("key %s revoked (%s gone from the allowlist): %s connection %s", e->user_id, e->key,
             e->link == PEERS_AGENTS ? "agent" : "client",
             cut == 0 ? "cut" : "ignored from now on (it could not be cut)");
    if (e->link == PEERS_AGENTS)
        revoke_agent(c, e);
    else
        request_client_revoked(c, e->user_id);
}

void peers_sweep(coord *c)
{
    if (!c->peers || c->peers->n == 0)
        return;
    /* Reading every .pub each second cost 10,000 file reads a second with 10,000 boards
     * (bench_fleet_scale): the lists are read when a directory changed (a .pub removed or
     * renamed), and at least every PEERS_FULL_SWEEP_MS for a key edited in place. */
    peers *p = c->peers;
    int recent = 0;
    uint64_t stamp = zap_allow_stamp(transport_allowlists(c->transport), &recent);
    uint64_t now = clock_mono_ms();
    if (!recent && stamp == p->swept_stamp && now - p->swept_ms < PEERS_FULL_SWEEP_MS)
        return;
    p->swept_stamp = stamp;
    p->swept_ms = now;
    zap_snapshot *snap[2] = {zap_snapshot_new(transport_allowlists(c->transport), "agents"),
                             zap_snapshot_new(transport_allowlists(c->transport), "clients")};
    if (snap[0] && snap[1]) {
        for (peer *e = c->peers->newest; e; e = e->older)
            if (!e->revoked && e->key[0] && !zap_snapshot_has(snap[e->link], e->key, e->user_id))
                revoke_peer(c, e);
    } else {
        log_warn("revocation check skipped: out of memory");
    }
    zap_snapshot_destroy(&snap[0]);
    zap_snapshot_destroy(&snap[1]);
}

int peers_cut(coord *c, peers_link link, const uint8_t *routing_id, size_t len)
{
    peer **pp = c->peers ? find_link(c->peers, link, routing_id, len) : NULL;
    if (!pp || !*pp)
        return EF_ENOENT;
    return (*pp)->conn.fd >= 0 ? tsock_conn_cut(&(*pp)->conn) : EF_ENOENT;
}
