/* Key files: a generated pair loads back with the same public key; existing files are never
 * overwritten; a secret key others can read is refused; corrupt files are rejected; an allowlist
 * finds a key until its .pub is removed; FIFOs, devices and directories are refused or skipped
 * without blocking; a .key where a public key belongs (and a .pub where a secret one does) is
 * refused with a message naming the right file. Tests that could block arm an alarm, so old
 * code fails in seconds (killed by SIGALRM) instead of hanging until ctest's timeout. */
#include "keys.h"
#include "test_support.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include <cmocka.h>

/* Seconds a test that opens FIFOs may take before SIGALRM kills it: a blocked open() never
 * returns, everything else here takes milliseconds even on a loaded box. */
#define BLOCK_LIMIT_S 10
/* What "promptly" means for one allowlist scan on a loaded 2-core box. */
#define SCAN_PROMPT_MS 1000

typedef struct {
    char dir[256];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f || ts_tempdir(f->dir, sizeof f->dir) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    ts_rmtree(f->dir);
    free(f);
    return 0;
}

static void path_of(const fixture *f, const char *file, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", f->dir, file);
}

static void write_text(const char *path, const char *text, mode_t mode)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    assert_int_equal(chmod(path, mode), 0);
}

static void test_generated_pair_loads_back_with_the_same_public_key(void **state)
{
    fixture *f = *state;
    keys_pair made, loaded;
    ef_errmsg em = {{0}};
    assert_int_equal(keys_generate(f->dir, "board-7", &made, &em), 0);
    assert_int_equal(strlen(made.public_z85), KEYS_Z85_LEN);
    assert_int_equal(strlen(made.secret_z85), KEYS_Z85_LEN);

    char key_path[512], pub_path[512];
    path_of(f, "board-7.key", key_path, sizeof key_path);
    path_of(f, "board-7.pub", pub_path, sizeof pub_path);
    struct stat st;
    assert_int_equal(stat(key_path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    assert_int_equal(keys_load_pair(key_path, &loaded, &em), 0);
    assert_string_equal(loaded.secret_z85, made.secret_z85);
    assert_string_equal(loaded.public_z85, made.public_z85);

    char pub[KEYS_Z85_LEN + 1];
    assert_int_equal(keys_load_public(pub_path, pub, &em), 0);
    assert_string_equal(pub, loaded.public_z85); /* derived from the secret == the .pub file */
}

static void test_generate_refuses_to_overwrite_either_file(void **state)
{
    fixture *f = *state;
    keys_pair first, again;
    ef_errmsg em = {{0}};
    assert_int_equal(keys_generate(f->dir, "alice", &first, &em), 0);
    assert_int_equal(keys_generate(f->dir, "alice", &again, &em), EF_EEXIST);
    assert_non_null(strstr(em.msg, "alice.pub"));
    assert_non_null(strstr(em.msg, "refusing to overwrite"));

    /* The pair on disk is the first one, untouched. */
    char key_path[512];
    keys_pair loaded;
    path_of(f, "alice.key", key_path, sizeof key_path);
    assert_int_equal(keys_load_pair(key_path, &loaded, &em), 0);
    assert_string_equal(loaded.public_z85, first.public_z85);

    /* A lone .key (its .pub lost) is not replaced either, and no .pub appears. */
    char pub_path[512];
    path_of(f, "alice.pub", pub_path, sizeof pub_path);
    assert_int_equal(unlink(pub_path), 0);
    assert_int_equal(keys_generate(f->dir, "alice", &again, &em), EF_EEXIST);
    assert_non_null(strstr(em.msg, "alice.key"));
    assert_int_not_equal(access(pub_path, F_OK), 0);
    assert_int_equal(keys_load_pair(key_path, &loaded, &em), 0);
    assert_string_equal(loaded.public_z85, first.public_z85);
}

static void test_generate_rejects_bad_names(void **state)
{
    fixture *f = *state;
    keys_pair kp;
    ef_errmsg em = {{0}};
    assert_int_equal(keys_generate(f->dir, "../escape", &kp, &em), EF_EINVAL);
    assert_int_equal(keys_generate(f->dir, "", &kp, &em), EF_EINVAL);
    assert_int_equal(keys_generate(f->dir, "a b", &kp, &em), EF_EINVAL);
}

static void test_secret_key_readable_by_others_is_refused(void **state)
{
    fixture *f = *state;
    keys_pair kp;
    ef_errmsg em = {{0}};
    assert_int_equal(keys_generate(f->dir, "loose", &kp, &em), 0);
    char key_path[512];
    path_of(f, "loose.key", key_path, sizeof key_path);
    assert_int_equal(chmod(key_path, 0644), 0);
    assert_int_equal(keys_load_pair(key_path, &kp, &em), EF_EKEYPERM);
    assert_non_null(strstr(em.msg, key_path));
    assert_non_null(strstr(em.msg, "chmod 600"));
    assert_int_equal(chmod(key_path, 0640), 0);
    assert_int_equal(keys_load_pair(key_path, &kp, &em), EF_EKEYPERM);
    assert_int_equal(chmod(key_path, 0600), 0);
    assert_int_equal(keys_load_pair(key_path, &kp, &em), 0);
}

static void test_corrupt_or_missing_key_files_are_rejected(void **state)
{
    fixture *f = *state;
    keys_pair kp;
    char pub[KEYS_Z85_LEN + 1];
    ef_errmsg em = {{0}};
    char path[512];

    path_of(f, "short.key", path, sizeof path);
    write_text(path, "M>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7\n", 0600); /* 35 chars */
    assert_int_equal(keys_load_pair(path, &kp, &em), EF_EKEY);
    assert_non_null(strstr(em.msg, path));

    path_of(f, "garbage.key", path, sizeof path);
    write_text(path, "this is not a Z85 key, not even close!!!\n", 0600); /* 40 chars, bad set */
    assert_int_equal(keys_load_pair(path, &kp, &em), EF_EKEY);

    path_of(f, "two.pub", path, sizeof path);
    write_text(
        path,
        "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7\nrq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7\n",
        0644);
    assert_int_equal(keys_load_public(path, pub, &em), EF_EKEY);

    path_of(f, "empty.pub", path, sizeof path);
    write_text(path, "", 0644);
    assert_int_equal(keys_load_public(path, pub, &em), EF_EKEY);

    path_of(f, "absent.key", path, sizeof path);
    assert_int_equal(keys_load_pair(path, &kp, &em), EF_ENOENT);
    assert_non_null(strstr(em.msg, path));

    /* A well-formed public key (the RFC 26 test vector) loads. */
    path_of(f, "good.pub", path, sizeof path);
    write_text(path, "  rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7\n", 0644);
    assert_int_equal(keys_load_public(path, pub, &em), 0);
    assert_string_equal(pub, "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7");
}

static void test_allowlist_finds_a_key_until_its_file_is_removed(void **state)
{
    fixture *f = *state;
    keys_pair alice, bob, mallory;
    ef_errmsg em = {{0}};
    assert_int_equal(keys_generate(f->dir, "alice", &alice, &em), 0);
    assert_int_equal(keys_generate(f->dir, "bob", &bob, &em), 0);
    char other[512];
    path_of(f, "elsewhere", other, sizeof other);
    assert_int_equal(mkdir(other, 0700), 0);
    assert_int_equal(keys_generate(other, "mallory", &mallory, &em), 0);

    uint8_t key[32];
    char name[64];
    assert_non_null(zmq_z85_decode(key, bob.public_z85));
    assert_int_equal(keys_allowlist_find(f->dir, key, name, sizeof name), 1);
    assert_string_equal(name, "bob");
    assert_int_equal(keys_allowlist_find(f->dir, key, NULL, 0), 1);

    assert_non_null(zmq_z85_decode(key, mallory.public_z85));
    assert_int_equal(keys_allowlist_find(f->dir, key, name, sizeof name), 0);

    assert_non_null(zmq_z85_decode(key, alice.public_z85));
    assert_int_equal(keys_allowlist_find(f->dir, key, name, sizeof name), 1);
    assert_string_equal(name, "alice");
    char pub_path[512];
    path_of(f, "alice.pub", pub_path, sizeof pub_path);
    assert_int_equal(unlink(pub_path), 0);
    assert_int_equal(keys_allowlist_find(f->dir, key, name, sizeof name), 0);

    assert_int_equal(keys_allowlist_find("/nonexistent/allowlist", key, name, sizeof name), 0);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The message names path and says what the file is. */
static void expect_refused(int rc, int want, const ef_errmsg *em, const char *path,
                           const char *what)
{
    assert_int_equal(rc, want);
    if (!strstr(em->msg, path) || !strstr(em->msg, what))
        fail_msg("message \"%s\", want \"%s\" and \"%s\"", em->msg, path, what);
}

static void test_a_fifo_device_or_directory_as_a_key_is_refused_without_blocking(void **state)
{
    fixture *f = *state;
    alarm(BLOCK_LIMIT_S);
    char fifo_key[512], fifo_pub[512], link_key[512], sub[512];
    path_of(f, "fifo.key", fifo_key, sizeof fifo_key);
    path_of(f, "fifo.pub", fifo_pub, sizeof fifo_pub);
    path_of(f, "link.key", link_key, sizeof link_key);
    path_of(f, "sub.key", sub, sizeof sub);
    assert_int_equal(mkfifo(fifo_key, 0600), 0);
    assert_int_equal(mkfifo(fifo_pub, 0644), 0);
    assert_int_equal(symlink(fifo_key, link_key), 0);
    assert_int_equal(mkdir(sub, 0700), 0);

    keys_pair kp;
    char pub[KEYS_Z85_LEN + 1];
    ef_errmsg em = {{0}};
    expect_refused(keys_load_pair(fifo_key, &kp, &em), EF_EKEY, &em, fifo_key, "a FIFO");
    expect_refused(keys_load_public(fifo_pub, pub, &em), EF_EKEY, &em, fifo_pub, "a FIFO");
    /* The symlink is followed and what it leads to is checked. */
    expect_refused(keys_load_pair(link_key, &kp, &em), EF_EKEY, &em, link_key, "a FIFO");
    expect_refused(keys_load_pair(sub, &kp, &em), EF_EKEY, &em, sub, "a directory");
    expect_refused(keys_load_public(f->dir, pub, &em), EF_EKEY, &em, f->dir, "a directory");
    /* /dev/zero would read as 128 bytes of zeros: refused before any read. */
    expect_refused(keys_load_public("/dev/zero", pub, &em), EF_EKEY, &em, "/dev/zero",
                   "a character device");
    alarm(0);
}

static void test_an_allowlist_with_a_fifo_still_finds_a_good_key_promptly(void **state)
{
    fixture *f = *state;
    alarm(BLOCK_LIMIT_S);
    keys_pair alice, stranger;
    ef_errmsg em = {{0}};
    char other[512], fifo[512], link[512];
    path_of(f, "elsewhere", other, sizeof other);
    assert_int_equal(mkdir(other, 0700), 0);
    assert_int_equal(keys_generate(other, "stranger", &stranger, &em), 0);
    assert_int_equal(keys_generate(f->dir, "alice", &alice, &em), 0);
    /* Both kinds of entry: a FIFO (skipped by its d_type) and a symlink to one (opened, fstat
     * refuses it), with names sorting before and after alice. */
    path_of(f, "aaa-fifo.pub", fifo, sizeof fifo);
    path_of(f, "zzz-link.pub", link, sizeof link);
    assert_int_equal(mkfifo(fifo, 0644), 0);
    assert_int_equal(symlink(fifo, link), 0);
    char dev[512];
    path_of(f, "zero.pub", dev, sizeof dev);
    assert_int_equal(symlink("/dev/zero", dev), 0);

    uint8_t key[32];
    char name[64];
    uint64_t start = now_ms();
    assert_non_null(zmq_z85_decode(key, alice.public_z85));
    assert_int_equal(keys_allowlist_find(f->dir, key, name, sizeof name), 1);
    assert_string_equal(name, "alice");
    /* A key that is not there makes the scan read every entry. */
    assert_non_null(zmq_z85_decode(key, stranger.public_z85));
    assert_int_equal(keys_allowlist_find(f->dir, key, name, sizeof name), 0);
    uint64_t took = now_ms() - start;
    alarm(0);
    if (took > SCAN_PROMPT_MS)
        fail_msg("two allowlist scans took %llu ms", (unsigned long long)took);
}

static void test_a_secret_key_given_as_the_server_key_is_refused_naming_the_pub(void **state)
{
    fixture *f = *state;
    keys_pair kp;
    ef_errmsg em = {{0}};
    assert_int_equal(keys_generate(f->dir, "coordinator", &kp, &em), 0);
    char key_path[512], want[1200];
    char pub[KEYS_Z85_LEN + 1];
    path_of(f, "coordinator.key", key_path, sizeof key_path);
    assert_int_equal(keys_load_public(key_path, pub, &em), EF_EKEY);
    snprintf(want, sizeof want,
             "%s: this is a secret key file; --server-key needs the coordinator's public key "
             "%s/coordinator.pub",
             key_path, f->dir);
    assert_string_equal(em.msg, want);
}

static void test_a_public_key_given_as_the_secret_key_is_refused_naming_the_key(void **state)
{
    fixture *f = *state;
    keys_pair kp;
    ef_errmsg em = {{0}};
    assert_int_equal(keys_generate(f->dir, "board-7", &kp, &em), 0);
    char pub_path[512], want[1200];
    path_of(f, "board-7.pub", pub_path, sizeof pub_path);
    /* Even one only its owner can read: the name says it is the public half. */
    assert_int_equal(chmod(pub_path, 0600), 0);
    assert_int_equal(keys_load_pair(pub_path, &kp, &em), EF_EKEY);
    snprintf(want, sizeof want,
             "%s: this is a public key file; --key needs the secret key %s/board-7.key", pub_path,
             f->dir);
    assert_string_equal(em.msg, want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_generated_pair_loads_back_with_the_same_public_key,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_generate_refuses_to_overwrite_either_file, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_generate_rejects_bad_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_key_readable_by_others_is_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_or_missing_key_files_are_rejected, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_allowlist_finds_a_key_until_its_file_is_removed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_a_fifo_device_or_directory_as_a_key_is_refused_without_blocking, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_an_allowlist_with_a_fifo_still_finds_a_good_key_promptly, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_secret_key_given_as_the_server_key_is_refused_naming_the_pub, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_a_public_key_given_as_the_secret_key_is_refused_naming_the_key, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
