/* zap.c on real allowlist directories: admitted keys get their User-Id and Key metadata, others
 * and malformed requests are refused, a removed .pub is refused at the next decision although
 * lookups are cached, and snapshots name a key under its first directory only. */
#include "keys.h"
#include "test_support.h"
#include "zap.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include <cmocka.h>

typedef struct {
    char dir[256], clients[300], operators[300];
    keys_pair alice, oscar, eve;
    zap_allow *allow;
} fixture;

static void make_key(const char *dir, const char *name, keys_pair *kp)
{
    ef_errmsg em;
    assert_int_equal(keys_generate(dir, name, kp, &em), 0);
    char path[512];
    snprintf(path, sizeof path, "%s/%s.key", dir, name);
    unlink(path); /* an allowlist holds public keys only */
}

static int setup(void **state)
{
    static fixture f;
    memset(&f, 0, sizeof f);
    assert_int_equal(ts_tempdir(f.dir, sizeof f.dir), 0);
    snprintf(f.clients, sizeof f.clients, "%s/clients", f.dir);
    snprintf(f.operators, sizeof f.operators, "%s/operators", f.dir);
    mkdir(f.clients, 0700);
    mkdir(f.operators, 0700);
    make_key(f.clients, "alice", &f.alice);
    make_key(f.operators, "oscar", &f.oscar);
    char eve_dir[300];
    snprintf(eve_dir, sizeof eve_dir, "%s", f.dir);
    make_key(eve_dir, "eve", &f.eve);
    f.allow = zap_allow_new();
    assert_int_equal(zap_allow_add(f.allow, "clients", f.operators), 0);
    assert_int_equal(zap_allow_add(f.allow, "clients", f.clients), 0);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    zap_allow_destroy(&f->allow);
    ts_rmtree(f->dir);
    return 0;
}

/* A CURVE ZAP request for the 32-byte form of a Z85 public key. */
static void decide(fixture *f, const char *domain, const char *mechanism, const char *z85,
                   uint64_t now, zap_verdict *v)
{
    uint8_t key[32];
    assert_non_null(zmq_z85_decode(key, z85));
    zap_frame fr[7] = {{(const uint8_t *)"1.0", 3},
                       {(const uint8_t *)"1", 1},
                       {(const uint8_t *)domain, strlen(domain)},
                       {(const uint8_t *)"127.0.0.1", 9},
                       {(const uint8_t *)"", 0},
                       {(const uint8_t *)mechanism, strlen(mechanism)},
                       {key, 32}};
    zap_decide(f->allow, fr, 7, now, v);
}

static void test_allowed_keys_get_their_user_id_and_key_and_others_are_refused(void **state)
{
    fixture *f = *state;
    zap_verdict v;
    decide(f, "clients", "CURVE", f->alice.public_z85, 1000, &v);
    assert_string_equal(v.status, "200");
    assert_string_equal(v.user_id, "clients/alice");
    assert_string_equal(v.key_z85, f->alice.public_z85);
    uint8_t meta[64];
    size_t n = zap_metadata(&v, meta, sizeof meta);
    assert_int_equal(n, 1 + 3 + 4 + 40);
    assert_memory_equal(meta + 1, "Key", 3);
    decide(f, "clients", "CURVE", f->oscar.public_z85, 1001, &v);
    assert_string_equal(v.user_id, "operators/oscar");
    decide(f, "clients", "CURVE", f->eve.public_z85, 1002, &v);
    assert_string_equal(v.status, "400");
    assert_true(v.refused);
    assert_int_equal(zap_metadata(&v, meta, sizeof meta), 0);
    decide(f, "agents", "CURVE", f->alice.public_z85, 1003, &v); /* another domain */
    assert_string_equal(v.status, "400");
    decide(f, "clients", "PLAIN", f->alice.public_z85, 1004, &v);
    assert_string_equal(v.status, "400");
    zap_frame short_req[2] = {{(const uint8_t *)"1.0", 3}, {(const uint8_t *)"1", 1}};
    zap_decide(f->allow, short_req, 2, 1005, &v);
    assert_string_equal(v.status, "500");
}

static void test_a_removed_key_is_refused_at_the_next_decision_despite_the_cache(void **state)
{
    fixture *f = *state;
    zap_verdict v;
    decide(f, "clients", "CURVE", f->alice.public_z85, 5000, &v);
    assert_string_equal(v.status, "200");
    char path[512];
    snprintf(path, sizeof path, "%s/alice.pub", f->clients);
    assert_int_equal(unlink(path), 0);
    decide(f, "clients", "CURVE", f->alice.public_z85, 5001, &v); /* 1 ms later */
    assert_string_equal(v.status, "400");
}

static void test_a_snapshot_names_a_key_under_its_first_directory(void **state)
{
    fixture *f = *state;
    /* oscar's key also in clients/: the operators entry, registered first, decides. */
    char from[512], to[512];
    snprintf(from, sizeof from, "%s/oscar.pub", f->operators);
    snprintf(to, sizeof to, "%s/oscar-too.pub", f->clients);
    assert_int_equal(link(from, to), 0);
    zap_snapshot *s = zap_snapshot_new(f->allow, "clients");
    assert_non_null(s);
    assert_int_equal(zap_snapshot_has(s, f->oscar.public_z85, "operators/oscar"), 1);
    assert_int_equal(zap_snapshot_has(s, f->oscar.public_z85, "clients/oscar-too"), 0);
    assert_int_equal(zap_snapshot_has(s, f->alice.public_z85, "clients/alice"), 1);
    assert_int_equal(zap_snapshot_has(s, f->alice.public_z85, "clients/bob"), 0);
    assert_int_equal(zap_snapshot_has(s, f->eve.public_z85, "clients/eve"), 0);
    assert_int_equal(zap_snapshot_has(s, "not a key", "clients/alice"), 0);
    zap_snapshot_destroy(&s);
    assert_null(s);
}

/* Found by fuzz_zap: the domain was looked up by its printable copy (63 bytes at most, '?' for
 * non-printables), so a domain that only shares that copy was decided as the registered one. */
static void test_a_domain_is_matched_exactly_not_by_its_printable_copy(void **state)
{
    fixture *f = *state;
    char long63[64];
    memset(long63, 'd', 63);
    long63[63] = '\0';
    assert_int_equal(zap_allow_add(f->allow, long63, f->clients), 0);
    zap_verdict v;
    decide(f, long63, "CURVE", f->alice.public_z85, 7000, &v);
    assert_string_equal(v.status, "200");
    char long64[65];
    memset(long64, 'd', 64);
    long64[64] = '\0';
    decide(f, long64, "CURVE", f->alice.public_z85, 7001, &v);
    assert_string_not_equal(v.status, "200");
    assert_string_equal(v.user_id, "");
    assert_int_equal(zap_allow_add(f->allow, "cl?ents", f->clients), 0);
    decide(f, "cl\x01ents", "CURVE", f->alice.public_z85, 7002, &v);
    assert_string_not_equal(v.status, "200");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_allowed_keys_get_their_user_id_and_key_and_others_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_removed_key_is_refused_at_the_next_decision_despite_the_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_domain_is_matched_exactly_not_by_its_printable_copy,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_snapshot_names_a_key_under_its_first_directory,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
