/* textout.c driven token by token as the engine does (push one piece, take what is safe): stop
 * strings split across pieces are held back and never streamed, text before them goes out
 * exactly once, every chunk ends on a UTF-8 boundary, invalid bytes pass through without a hang,
 * and the final take flushes what was held. */
#include "textout.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

/* 1 when s[0..len) is a sequence of whole UTF-8 characters (lead byte and its continuations). */
static int utf8_whole(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        size_t need = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
        if (need == 0 || i + need > len)
            return 0;
        for (size_t k = 1; k < need; k++)
            if (((unsigned char)s[i + k] & 0xC0) != 0x80)
                return 0;
        i += need;
    }
    return 1;
}

/* Push pieces[i] as token 100 + i, taking after each; returns the last take's result. */
static int stream(textout *t, textout_release *r, const char *const *pieces, size_t n)
{
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(textout_push(t, (int32_t)(100 + i), pieces[i], strlen(pieces[i])), 0);
        rc = textout_take(t, 0, r);
        assert_true(rc >= 0);
        if (rc == 1)
            break;
    }
    return rc;
}

static void test_a_stop_string_split_across_pieces_is_never_emitted(void **state)
{
    (void)state;
    static const char *const stop[] = {"</s>"};
    static const char *const pieces[] = {"Hello", " wor", "ld<", "/", "s", ">", " more"};
    textout t;
    textout_init(&t, stop, 1);
    textout_release r = {0};
    const char *want = "Hello world";
    int rc = 0;
    size_t i;
    for (i = 0; i < sizeof pieces / sizeof pieces[0] && rc == 0; i++) {
        assert_int_equal(textout_push(&t, (int32_t)(100 + i), pieces[i], strlen(pieces[i])), 0);
        rc = textout_take(&t, 0, &r);
        /* Whatever went out so far is a prefix of the text before the stop: no '<' ever. */
        assert_true(r.len <= strlen(want));
        assert_memory_equal(r.text, want, r.len);
        assert_null(memchr(r.text, '<', r.len));
    }
    assert_int_equal(rc, 1);
    assert_int_equal(i, 6); /* found on ">", the piece that completed it */
    assert_string_equal(r.text, want);
    /* Tokens only wholly before the stop: "ld<" reaches into it and is not counted. */
    assert_int_equal(r.n, 2);
    assert_int_equal(r.tokens[0], 100);
    assert_int_equal(r.tokens[1], 101);
    /* Stopped: further tokens are ignored, even a final take adds nothing. */
    assert_int_equal(textout_push(&t, 200, "tail", 4), 0);
    assert_int_equal(textout_take(&t, 1, &r), 1);
    assert_string_equal(r.text, want);
    assert_int_equal(r.n, 2);
    textout_release_free(&r);
    textout_free(&t);
}

static void test_text_before_a_stop_goes_out_exactly_once_after_a_false_start(void **state)
{
    (void)state;
    static const char *const stop[] = {"STOP"};
    /* "ST" looks like the start of STOP and is held; "AR" proves it was not. */
    static const char *const pieces[] = {"ST", "AR", "T ST", "O", "P", "after"};
    textout t;
    textout_init(&t, stop, 1);
    textout_release r = {0};
    assert_int_equal(textout_push(&t, 1, pieces[0], 2), 0);
    assert_int_equal(textout_take(&t, 0, &r), 0);
    assert_int_equal(r.len, 0); /* "ST" held */
    assert_int_equal(textout_push(&t, 2, pieces[1], 2), 0);
    assert_int_equal(textout_take(&t, 0, &r), 0);
    assert_string_equal(r.text, "STAR"); /* released once it could no longer be STOP */
    assert_int_equal(r.n, 2);
    assert_int_equal(stream(&t, &r, pieces + 2, 4), 1);
    assert_string_equal(r.text, "START ");
    assert_int_equal(r.n, 2); /* "T ST" reaches into the stop */
    textout_release_free(&r);
    textout_free(&t);
}

static void test_without_stop_strings_everything_goes_out_in_order(void **state)
{
    (void)state;
    static const char *const pieces[] = {"The", " quick", " <brown>", " fox", "</s>", "."};
    textout t;
    textout_init(&t, NULL, 0);
    textout_release r = {0};
    assert_int_equal(stream(&t, &r, pieces, 6), 0);
    /* ASCII, no stop: nothing needs holding, so all is out before the final take. */
    assert_string_equal(r.text, "The quick <brown> fox</s>.");
    assert_int_equal(r.n, 6);
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(r.tokens[i], 100 + (int32_t)i);
    assert_int_equal(textout_take(&t, 1, &r), 0);
    assert_string_equal(r.text, "The quick <brown> fox</s>.");
    assert_int_equal(r.n, 6);
    textout_release_free(&r);
    textout_free(&t);
}

static void test_the_final_take_flushes_a_held_stop_prefix(void **state)
{
    (void)state;
    static const char *const stop[] = {"</s>", "", "\n\nUser:"};
    static const char *const pieces[] = {"abc", "\n", "\nUs"};
    textout t;
    textout_init(&t, stop, 3); /* the empty stop string must be ignored, not match everywhere */
    textout_release r = {0};
    assert_int_equal(stream(&t, &r, pieces, 3), 0);
    assert_string_equal(r.text, "abc"); /* "\n\nUs" may become "\n\nUser:" */
    assert_int_equal(r.n, 1);
    assert_int_equal(textout_take(&t, 1, &r), 0);
    assert_string_equal(r.text, "abc\n\nUs");
    assert_int_equal(r.n, 3);
    assert_int_equal(t.len, 0);
    assert_int_equal(t.n, 0);
    /* A second final take has nothing more to give. */
    assert_int_equal(textout_take(&t, 1, &r), 0);
    assert_string_equal(r.text, "abc\n\nUs");
    textout_release_free(&r);
    textout_free(&t);
}

static void test_the_earliest_of_several_stop_strings_wins(void **state)
{
    (void)state;
    static const char *const stop[] = {"world", "lo w"};
    textout t;
    textout_init(&t, stop, 2);
    textout_release r = {0};
    assert_int_equal(textout_push(&t, 1, "hello world", 11), 0);
    assert_int_equal(textout_take(&t, 0, &r), 1);
    assert_string_equal(r.text, "hel");
    assert_int_equal(r.n, 0);
    textout_release_free(&r);
    textout_free(&t);
}

static void test_a_stop_string_inside_one_piece_cuts_the_text_there(void **state)
{
    (void)state;
    static const char *const stop[] = {"</s>"};
    static const char *const pieces[] = {"ok ", "abc</s>def"};
    textout t;
    textout_init(&t, stop, 1);
    textout_release r = {0};
    assert_int_equal(stream(&t, &r, pieces, 2), 1);
    assert_string_equal(r.text, "ok abc");
    assert_int_equal(r.n, 1);
    assert_int_equal(r.tokens[0], 100);
    textout_release_free(&r);
    textout_free(&t);
}

static void test_a_multibyte_character_split_across_pieces_is_never_emitted_half(void **state)
{
    (void)state;
    /* "a€b😀c é" (€ = E2 82 AC, 😀 = F0 9F 98 80, é = C3 A9) cut inside each character; the
     * third piece holds the end of € and the start of 😀, as byte-level BPE tokens do. */
    static const char *const pieces[] = {"a\xE2",    "\x82",   "\xAC\x62\xF0\x9F", /* \x62 = b */
                                         "\x98\x80", "c \xC3", "\xA9"};
    const char *whole = "a\xE2\x82\xAC"
                        "b\xF0\x9F\x98\x80"
                        "c \xC3\xA9";
    /* Tokens go out whole, so the first cut on a character boundary is after "\x98\x80". */
    static const size_t want_len[] = {0, 0, 0, 9, 9, 13};
    textout t;
    textout_init(&t, NULL, 0);
    textout_release r = {0};
    for (size_t i = 0; i < 6; i++) {
        assert_int_equal(textout_push(&t, (int32_t)i, pieces[i], strlen(pieces[i])), 0);
        size_t before = r.len;
        assert_int_equal(textout_take(&t, 0, &r), 0);
        /* This take's chunk and everything so far are whole characters. */
        assert_true(utf8_whole(r.text + before, r.len - before));
        assert_true(utf8_whole(r.text, r.len));
        assert_memory_equal(r.text, whole, r.len);
        assert_int_equal(r.len, want_len[i]);
    }
    assert_string_equal(r.text, whole);
    assert_int_equal(r.n, 6);
    textout_release_free(&r);
    textout_free(&t);
}

static void test_a_held_partial_character_is_flushed_at_the_end(void **state)
{
    (void)state;
    textout t;
    textout_init(&t, NULL, 0);
    textout_release r = {0};
    assert_int_equal(textout_push(&t, 7, "ok\xE2\x82", 4), 0);
    assert_int_equal(textout_take(&t, 0, &r), 0);
    assert_int_equal(r.len, 0);
    assert_int_equal(textout_take(&t, 1, &r), 0); /* the stream ended: give what there is */
    assert_int_equal(r.len, 4);
    assert_memory_equal(r.text, "ok\xE2\x82", 4);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.tokens[0], 7);
    textout_release_free(&r);
    textout_free(&t);
}

static void test_invalid_bytes_pass_through_without_hanging(void **state)
{
    (void)state;
    static const char *const stop[] = {"\xFF\xFE"};
    /* Stray continuations, bytes that are never UTF-8, a lead byte followed by ASCII. */
    static const char *const pieces[] = {"\x80\x80\x80\x80\x80", "\xFF", "x", "\xC3", "A",
                                         "\xF8\xF8\xF8",         "\xFE"};
    textout t;
    textout_init(&t, stop, 1);
    textout_release r = {0};
    /* ASCII after the garbage lets everything before it out; a stray lead byte is held. */
    static const size_t want_len[] = {5, 5, 7, 7, 9, 9};
    size_t pushed = 0;
    for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++) {
        assert_int_equal(textout_push(&t, (int32_t)i, pieces[i], strlen(pieces[i])), 0);
        pushed += strlen(pieces[i]);
        assert_int_equal(textout_take(&t, 0, &r), 0);
        if (i < 6)
            assert_int_equal(r.len, want_len[i]);
    }
    assert_true(r.len >= 9);
    assert_int_equal(textout_take(&t, 1, &r), 0);
    assert_int_equal(r.len, pushed);
    assert_memory_equal(r.text,
                        "\x80\x80\x80\x80\x80\xFFx\xC3"
                        "A\xF8\xF8\xF8\xFE",
                        pushed);
    assert_int_equal(r.n, 7);
    textout_release_free(&r);
    textout_free(&t);
}

static void test_a_long_stream_releases_every_token_once(void **state)
{
    (void)state;
    static const char *const stop[] = {"<|end|>"};
    textout t;
    textout_init(&t, stop, 1);
    textout_release r = {0};
    /* Enough tokens to grow every buffer several times; "<|" often, never the whole stop. */
    for (int32_t i = 0; i < 5000; i++) {
        const char *piece = i % 3 == 0 ? "<|" : i % 3 == 1 ? "en" : "d ";
        assert_int_equal(textout_push(&t, i, piece, 2), 0);
        assert_int_equal(textout_take(&t, 0, &r), 0);
        assert_true(r.n <= (size_t)i + 1);
    }
    assert_int_equal(textout_take(&t, 1, &r), 0);
    assert_int_equal(r.n, 5000);
    assert_int_equal(r.len, 10000);
    for (int32_t i = 0; i < 5000; i++)
        assert_int_equal(r.tokens[i], i);
    assert_memory_equal(r.text, "<|end <|end ", 12);
    textout_release_free(&r);
    textout_free(&t);
}

static void test_a_cleared_release_is_reused_for_each_take(void **state)
{
    (void)state;
    static const char *const stop[] = {"</s>"};
    static const char *const pieces[] = {"ab", "c<", "/s", ">"};
    textout t;
    textout_init(&t, stop, 1);
    textout_release r = {0};
    char got[16] = "";
    int rc = 0;
    for (size_t i = 0; i < 4 && rc == 0; i++) {
        textout_release_clear(&r); /* as the engine does: one release, emptied per token */
        assert_int_equal(r.len, 0);
        assert_int_equal(r.n, 0);
        assert_int_equal(textout_push(&t, (int32_t)(100 + i), pieces[i], strlen(pieces[i])), 0);
        rc = textout_take(&t, 0, &r);
        assert_true(rc >= 0);
        assert_true(strlen(got) + r.len < sizeof got);
        strncat(got, r.text, r.len);
    }
    assert_int_equal(rc, 1);
    assert_string_equal(got, "abc");
    char *buf = r.text;
    textout_release_clear(&r);
    assert_ptr_equal(r.text, buf); /* kept, not freed */
    assert_string_equal(r.text, "");
    textout_release_free(&r);
    textout_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_stop_string_split_across_pieces_is_never_emitted),
        cmocka_unit_test(test_text_before_a_stop_goes_out_exactly_once_after_a_false_start),
        cmocka_unit_test(test_without_stop_strings_everything_goes_out_in_order),
        cmocka_unit_test(test_the_final_take_flushes_a_held_stop_prefix),
        cmocka_unit_test(test_the_earliest_of_several_stop_strings_wins),
        cmocka_unit_test(test_a_stop_string_inside_one_piece_cuts_the_text_there),
        cmocka_unit_test(test_a_multibyte_character_split_across_pieces_is_never_emitted_half),
        cmocka_unit_test(test_a_held_partial_character_is_flushed_at_the_end),
        cmocka_unit_test(test_invalid_bytes_pass_through_without_hanging),
        cmocka_unit_test(test_a_long_stream_releases_every_token_once),
        cmocka_unit_test(test_a_cleared_release_is_reused_for_each_take),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
