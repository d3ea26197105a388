/*
 * test_common.c - checksums, sizes, durations, integers, configuration tables
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/crc32c.h"
#include "common/util.h"
#include "respool/config.h"
#include "respool/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <unistd.h>

uint32_t rp_crc32c_sw(uint32_t crc, const void *data, size_t len);

static void test_crc32c_known_vectors(void **state)
{
    (void)state;
    assert_int_equal(rp_crc32c("123456789", 9), 0xe3069283u);
    assert_int_equal(rp_crc32c("", 0), 0u);
    unsigned char zeros[32] = {0};
    assert_int_equal(rp_crc32c(zeros, 32), 0x8a9136aau); /* RFC 3720 B.4 */
    unsigned char ones[32];
    memset(ones, 0xff, 32);
    assert_int_equal(rp_crc32c(ones, 32), 0x62a8ab43u);
}

static void test_crc32c_hw_matches_table_and_extends(void **state)
{
    (void)state;
    unsigned char buf[4099];
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (unsigned char)(i * 131 + 7);
    for (size_t off = 0; off < 9; off++) {
        size_t len = sizeof(buf) - off;
        assert_int_equal(rp_crc32c(buf + off, len), rp_crc32c_sw(0, buf + off, len));
    }
    uint32_t whole = rp_crc32c(buf, sizeof(buf));
    uint32_t split = rp_crc32c_extend(rp_crc32c(buf, 1000), buf + 1000, sizeof(buf) - 1000);
    assert_int_equal(whole, split);
}

static void test_parse_size(void **state)
{
    (void)state;
    uint64_t v;
    assert_int_equal(rp_parse_size("4096", &v), 0);
    assert_int_equal(v, 4096);
    assert_int_equal(rp_parse_size("8k", &v), 0);
    assert_int_equal(v, 8192);
    assert_int_equal(rp_parse_size("256M", &v), 0);
    assert_int_equal(v, 256ULL << 20);
    assert_int_equal(rp_parse_size("1GiB", &v), 0);
    assert_int_equal(v, 1ULL << 30);
    assert_int_equal(rp_parse_size("2 gb", &v), 0);
    assert_int_equal(v, 2ULL << 30);
    assert_int_not_equal(rp_parse_size("", &v), 0);
    assert_int_not_equal(rp_parse_size("-1", &v), 0);
    assert_int_not_equal(rp_parse_size("12x", &v), 0);
    assert_int_not_equal(rp_parse_size("1kk", &v), 0);
    assert_int_not_equal(rp_parse_size("99999999999999999999T", &v), 0);
}

static void test_parse_duration(void **state)
{
    (void)state;
    uint64_t v;
    assert_int_equal(rp_parse_duration("250", &v), 0);
    assert_int_equal(v, 250);
    assert_int_equal(rp_parse_duration("10ms", &v), 0);
    assert_int_equal(v, 10);
    assert_int_equal(rp_parse_duration("5s", &v), 0);
    assert_int_equal(v, 5000);
    assert_int_equal(rp_parse_duration("2min", &v), 0);
    assert_int_equal(v, 120000);
    assert_int_not_equal(rp_parse_duration("5 parsecs", &v), 0);
}

static void test_parse_i64_like_redis(void **state)
{
    (void)state;
    int64_t v;
    assert_true(rp_parse_i64("0", 1, &v) && v == 0);
    assert_true(rp_parse_i64("-42", 3, &v) && v == -42);
    assert_true(rp_parse_i64("9223372036854775807", 19, &v) && v == INT64_MAX);
    assert_true(rp_parse_i64("-9223372036854775808", 20, &v) && v == INT64_MIN);
    assert_false(rp_parse_i64("9223372036854775808", 19, &v));
    assert_false(rp_parse_i64("007", 3, &v));
    assert_false(rp_parse_i64("+7", 2, &v));
    assert_false(rp_parse_i64(" 7", 2, &v));
    assert_false(rp_parse_i64("-0", 2, &v));
    assert_false(rp_parse_i64("", 0, &v));
    assert_false(rp_parse_i64("1a", 2, &v));
}

struct conf {
    int64_t port;
    uint64_t pool;
    uint64_t delay;
    bool flag;
    char *name;
    int mode;
};
static const char *const modes[] = {"sync", "async", NULL};
static const rp_conf_def_t defs[] = {
    {"port", 'p', RP_CONF_INT, "6380", 1, 65535, NULL, offsetof(struct conf, port), "TCP port."},
    {"buffer-pool-size", 0, RP_CONF_SIZE, "64M", 1 << 20, 1LL << 40, NULL, offsetof(struct conf, pool), "Pool."},
    {"delay", 0, RP_CONF_DURATION, "10ms", 0, 0, NULL, offsetof(struct conf, delay), "Delay."},
    {"flag", 0, RP_CONF_BOOL, "no", 0, 0, NULL, offsetof(struct conf, flag), "Flag."},
    {"name", 'n', RP_CONF_STRING, "x", 0, 0, NULL, offsetof(struct conf, name), "Name."},
    {"commit-mode", 0, RP_CONF_ENUM, "sync", 0, 0, modes, offsetof(struct conf, mode), "Mode."},
    {0},
};

static void test_config_defaults_file_and_args(void **state)
{
    (void)state;
    struct conf c = {0};
    rp_conf_table_t t = {defs, &c};
    assert_int_equal(rp_conf_defaults(&t, 1), 0);
    assert_int_equal(c.port, 6380);
    assert_int_equal(c.pool, 64ULL << 20);
    assert_int_equal(c.delay, 10);
    assert_string_equal(c.name, "x");

    char path[] = "/tmp/rp-test-conf-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "; comment\nport = 7000\n[respoold]\nbuffer-pool-size = 2G\ncommit-mode = async\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    assert_int_equal(rp_conf_load_file(&t, 1, path), 0);
    assert_int_equal(c.port, 7000);
    assert_int_equal(c.pool, 2ULL << 30);
    assert_int_equal(c.mode, 1);

    char *argv[] = {"prog", "-p", "7001", "--name=hello", "--flag", "--delay", "2s", NULL};
    assert_int_equal(rp_conf_parse_args(&t, 1, 7, argv, NULL, NULL, NULL, NULL), 0);
    assert_int_equal(c.port, 7001);
    assert_string_equal(c.name, "hello");
    assert_true(c.flag);
    assert_int_equal(c.delay, 2000);

    /* errors are reported with a hint */
    assert_int_equal(rp_conf_set(&t, 1, "prot", "1", "test"), RP_ENOENT);
    assert_non_null(strstr(rp_last_error()->hint, "\"port\""));
    assert_int_equal(rp_conf_set(&t, 1, "port", "70000", "test"), RP_ERANGE);
    assert_int_equal(rp_conf_set(&t, 1, "port", "abc", "test"), RP_EINVAL);
    assert_int_equal(rp_conf_set(&t, 1, "commit-mode", "maybe", "test"), RP_EINVAL);
    assert_non_null(strstr(rp_last_error()->detail, "sync, async"));

    /* a syntax error names the line */
    fd = open(path, O_WRONLY | O_TRUNC);
    const char *bad = "port = 1\nthis line has no equals sign\n";
    assert_int_equal(write(fd, bad, strlen(bad)), (ssize_t)strlen(bad));
    close(fd);
    assert_int_equal(rp_conf_load_file(&t, 1, path), RP_EINVAL);
    assert_non_null(strstr(rp_last_error()->message, "line 2"));
    unlink(path);
    rp_conf_free(&t, 1);
    assert_null(c.name);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_known_vectors),
        cmocka_unit_test(test_crc32c_hw_matches_table_and_extends),
        cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_parse_duration),
        cmocka_unit_test(test_parse_i64_like_redis),
        cmocka_unit_test(test_config_defaults_file_and_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
