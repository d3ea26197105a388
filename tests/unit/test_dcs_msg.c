/*
 * test_dcs_msg.c - cache-fusion messages: every type round-trips; every length, every field out of
 * range and every reserved byte set is refused with an error that names the problem; random bytes
 * never crash the decoder.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "dcs/dcs_msg.h"
#include "drc/drc.h"
#include "respool/error.h"

#include <stdlib.h>
#include <string.h>

#define PS 8192
static const dcs_limits_t LIM = {.data_pages = 1000, .page_size = PS, .members = 3};
static const uint16_t TYPES[] = {DCS_LOCK, DCS_GRANT,      DCS_FORWARD, DCS_PAGE,
                                 DCS_DONE, DCS_INVALIDATE, DCS_ACK,     DCS_RELEASE};
#define NTYPES (sizeof(TYPES) / sizeof(TYPES[0]))

static dcs_msg_t valid(uint16_t type)
{
    dcs_msg_t m = {.res = 999, .seq = 0x1122334455667788ULL, .req_id = 0xdeadbeefcafef00dULL, .mode = DRC_X,
                   .source = DRC_FROM_OWNER, .requester = 2, .has_copy = true};
    if (type == DCS_PAGE)
        m.flags = DCS_PAGE_NO_CONTENT;
    return m;
}

static void expect_refused(uint16_t type, const unsigned char *b, uint32_t len, const char *needle)
{
    dcs_msg_t out;
    int rc = dcs_msg_decode(type, b, len, &LIM, &out);
    if (rc != RP_EPROTO || !strstr(rp_last_error()->message, needle))
        fail_msg("%s of %u bytes: rc %d, message \"%s\", expected one with \"%s\"", dcs_type_name(type), len, rc,
                 rp_last_error()->message, needle);
    assert_non_null(strstr(rp_last_error()->message, dcs_type_name(type)));
}

static void test_every_type_round_trips(void **state)
{
    (void)state;
    for (size_t t = 0; t < NTYPES; t++) {
        unsigned char b[DCS_MSG_MAX_HDR];
        dcs_msg_t in = valid(TYPES[t]), out;
        size_t len = dcs_msg_encode(TYPES[t], &in, b);
        assert_true(len >= 8 && len <= DCS_MSG_MAX_HDR);
        assert_int_equal(dcs_msg_decode(TYPES[t], b, (uint32_t)len, &LIM, &out), 0);
        assert_int_equal(out.res, in.res);
        if (TYPES[t] != DCS_LOCK && TYPES[t] != DCS_RELEASE)
            assert_true(out.seq == in.seq);
        if (TYPES[t] == DCS_FORWARD) {
            assert_true(out.req_id == in.req_id);
            assert_int_equal(out.requester, 2);
        }
        if (TYPES[t] == DCS_LOCK)
            assert_true(out.has_copy);
        if (TYPES[t] == DCS_GRANT)
            assert_int_equal(out.source, DRC_FROM_OWNER);
        if (TYPES[t] == DCS_LOCK || TYPES[t] == DCS_GRANT || TYPES[t] == DCS_FORWARD || TYPES[t] == DCS_PAGE)
            assert_int_equal(out.mode, DRC_X);
    }
    /* a named lock is a resource beyond every page number */
    unsigned char b[DCS_MSG_MAX_HDR];
    dcs_msg_t in = valid(DCS_LOCK), out;
    in.res = drc_res_lock("space.claim");
    assert_int_equal(dcs_msg_decode(DCS_LOCK, b, (uint32_t)dcs_msg_encode(DCS_LOCK, &in, b), &LIM, &out), 0);
    assert_true(out.res == in.res);
}

static void test_page_with_content(void **state)
{
    (void)state;
    unsigned char *b = calloc(1, DCS_PAGE_HDR + PS + 1);
    dcs_msg_t in = valid(DCS_PAGE), out;
    in.flags = 0;
    dcs_msg_encode(DCS_PAGE, &in, b);
    b[DCS_PAGE_HDR] = 0xab;
    assert_int_equal(dcs_msg_decode(DCS_PAGE, b, DCS_PAGE_HDR + PS, &LIM, &out), 0);
    assert_ptr_equal(out.content, b + DCS_PAGE_HDR);
    /* every length but header + page is refused */
    for (uint32_t len = 0; len <= DCS_PAGE_HDR + PS + 1; len++)
        if (len != DCS_PAGE_HDR + PS)
            expect_refused(DCS_PAGE, b, len, "bytes, expected");
    /* a lock never carries content */
    in.res = drc_res_lock("x");
    dcs_msg_encode(DCS_PAGE, &in, b);
    expect_refused(DCS_PAGE, b, DCS_PAGE_HDR + PS, "a lock does not carry content");
    free(b);
}

static void test_every_wrong_length_is_refused(void **state)
{
    (void)state;
    unsigned char b[DCS_MSG_MAX_HDR + 8] = {0};
    for (size_t t = 0; t < NTYPES; t++) {
        dcs_msg_t in = valid(TYPES[t]);
        size_t len = dcs_msg_encode(TYPES[t], &in, b);
        for (uint32_t l = 0; l <= DCS_MSG_MAX_HDR + 8; l++)
            if (l != len)
                expect_refused(TYPES[t], b, l, "bytes, expected");
    }
    dcs_msg_t out;
    assert_int_equal(dcs_msg_decode(0x1234, b, 16, &LIM, &out), RP_EPROTO);
    assert_non_null(strstr(rp_last_error()->message, "not a cache-fusion message"));
}

static void test_every_field_out_of_range_is_refused(void **state)
{
    (void)state;
    unsigned char b[DCS_MSG_MAX_HDR];
    for (size_t t = 0; t < NTYPES; t++) {
        uint16_t type = TYPES[t];
        dcs_msg_t in = valid(type);
        /* pages beyond the volume, the first one included */
        in.res = LIM.data_pages;
        size_t len = dcs_msg_encode(type, &in, b);
        expect_refused(type, b, (uint32_t)len, "beyond the volume");
        in.res = (1ULL << 63) - 1;
        dcs_msg_encode(type, &in, b);
        expect_refused(type, b, (uint32_t)len, "beyond the volume");
        in = valid(type);
        /* every reserved byte, one at a time */
        size_t first_reserved = type == DCS_LOCK ? 10 : type == DCS_FORWARD ? 26 : type == DCS_GRANT || type == DCS_PAGE ? 18 : len;
        for (size_t i = first_reserved; i < len; i++) {
            dcs_msg_encode(type, &in, b);
            b[i] = 1;
            expect_refused(type, b, (uint32_t)len, "reserved bytes");
        }
    }
    /* modes: only S and X travel */
    uint16_t moded[] = {DCS_LOCK, DCS_GRANT, DCS_FORWARD, DCS_PAGE};
    for (size_t t = 0; t < 4; t++) {
        for (unsigned mode = 0; mode < 256; mode++) {
            if (mode == DRC_S || mode == DRC_X)
                continue;
            dcs_msg_t in = valid(moded[t]);
            in.mode = (uint8_t)mode;
            size_t len = dcs_msg_encode(moded[t], &in, b);
            expect_refused(moded[t], b, (uint32_t)len, "is neither S");
        }
    }
    for (unsigned v = 0; v < 256; v++) {
        dcs_msg_t in = valid(DCS_LOCK), out;
        size_t len = dcs_msg_encode(DCS_LOCK, &in, b);
        b[9] = (unsigned char)v;
        if (v <= 1)
            assert_int_equal(dcs_msg_decode(DCS_LOCK, b, (uint32_t)len, &LIM, &out), 0);
        else
            expect_refused(DCS_LOCK, b, (uint32_t)len, "has_copy");

        in = valid(DCS_GRANT);
        in.source = (uint8_t)v;
        len = dcs_msg_encode(DCS_GRANT, &in, b);
        if (v >= DRC_FROM_DISK && v <= DRC_FROM_OWNER)
            assert_int_equal(dcs_msg_decode(DCS_GRANT, b, (uint32_t)len, &LIM, &out), 0);
        else
            expect_refused(DCS_GRANT, b, (uint32_t)len, "source");

        in = valid(DCS_FORWARD);
        in.requester = (uint8_t)v;
        len = dcs_msg_encode(DCS_FORWARD, &in, b);
        if ((int)v < LIM.members)
            assert_int_equal(dcs_msg_decode(DCS_FORWARD, b, (uint32_t)len, &LIM, &out), 0);
        else
            expect_refused(DCS_FORWARD, b, (uint32_t)len, "is not a member");

        in = valid(DCS_PAGE);
        in.flags = (uint8_t)v;
        len = dcs_msg_encode(DCS_PAGE, &in, b);
        if (v == DCS_PAGE_NO_CONTENT)
            assert_int_equal(dcs_msg_decode(DCS_PAGE, b, (uint32_t)len, &LIM, &out), 0);
        else if (v & DCS_PAGE_NO_CONTENT)
            expect_refused(DCS_PAGE, b, (uint32_t)len, "unknown flags");
        /* without the flag the header alone is too short for a page with content */
        else
            expect_refused(DCS_PAGE, b, (uint32_t)len, "header and one page");
    }
}

static void test_random_bytes_never_crash(void **state)
{
    (void)state;
    unsigned char *b = malloc(DCS_PAGE_HDR + PS);
    unsigned seed = 12345;
    int accepted = 0;
    for (int i = 0; i < 200000; i++) {
        uint32_t len = (uint32_t)(rand_r(&seed) % 40);
        if (i % 1000 == 0)
            len = DCS_PAGE_HDR + PS;
        for (uint32_t k = 0; k < len && k < 40; k++)
            b[k] = (unsigned char)(rand_r(&seed) % 4 == 0 ? rand_r(&seed) : 0);
        dcs_msg_t out;
        uint16_t type = (uint16_t)(DCS_LOCK - 1 + rand_r(&seed) % (NTYPES + 2));
        int rc = dcs_msg_decode(type, b, len, &LIM, &out);
        if (rc == 0)
            accepted++;
        else
            assert_true(rc == RP_EPROTO && rp_last_error()->message[0]);
    }
    assert_true(accepted > 0); /* the generator does reach valid messages */
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_type_round_trips),
        cmocka_unit_test(test_page_with_content),
        cmocka_unit_test(test_every_wrong_length_is_refused),
        cmocka_unit_test(test_every_field_out_of_range_is_refused),
        cmocka_unit_test(test_random_bytes_never_crash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
