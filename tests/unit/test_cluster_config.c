/*
 * test_cluster_config.c - the cluster file (src/cm): reading, validating, writing, local hosts
 *
 * Every error a person can make must be refused with a report that names the file, the section, the
 * key and the line, and hints at the fix; what `cluster init` writes must read back identically; the
 * secret file must be refused when group or others can access it (with the exact chmod); and every key
 * must be documented in docs/cluster.md.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cm/cm_int.h"
#include "respool/cluster.h"
#include "respool/error.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];
static char conf[128], key[128];
static rp_cluster_config_t *cfg;

#define SECRET_HEX "00112233445566778899aabbccddeeff0123456789abcdeffedcba9876543210"

static void write_file(const char *path, const char *text, mode_t mode)
{
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/rp-cm-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(conf, sizeof(conf), "%s/cluster.conf", dir);
    snprintf(key, sizeof(key), "%s/cluster.key", dir);
    write_file(key, SECRET_HEX, 0600);
    cfg = calloc(1, sizeof(*cfg));
    rp_error_clear();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    free(cfg);
    return 0;
}

/* A valid file: [cluster] (line 2; cluster_extra, one line or none, is line 5), [instance.0] (line 7),
 * [instance.1] (line 13, its keys on lines 14-17), then `extra` from line 18. */
static void write_conf(const char *cluster_extra, const char *extra)
{
    char text[4096];
    snprintf(text, sizeof(text),
             "; a test cluster\n"                   /* 1 */
             "[cluster]\n"                          /* 2 */
             "volume = %s/volume\n"                 /* 3 */
             "secret-file = %s\n"                   /* 4 */
             "%s"                                   /* 5 */
             "\n"
             "[instance.0]\n"
             "host = 127.0.0.1\n"
             "port = 6380\n"
             "cluster-port = 16380\n"
             "data-dir = %s/data0\n"
             "\n"
             "[instance.1]\n"
             "host = 127.0.0.1\n"
             "port = 6381\n"
             "cluster-port = 16381\n"
             "data-dir = %s/data1\n"
             "%s",
             dir, key, cluster_extra[0] ? cluster_extra : "name = test\n", dir, dir, extra);
    write_file(conf, text, 0644);
}

/* The report's three parts in one string, for substring checks. */
static const char *report_text(void)
{
    static char buf[4096];
    const rp_report_t *r = rp_last_error();
    snprintf(buf, sizeof(buf), "%s | %s | %s", r->message, r->detail, r->hint);
    return buf;
}

static void expect_load_error(int code, ...)
{
    int rc = rp_cluster_config_load(conf, cfg);
    const char *text = report_text();
    if (rc != code)
        fail_msg("load returned %d (%s), expected %d: %s", rc, rp_errname(rc), code, text);
    va_list ap;
    va_start(ap, code);
    for (const char *want; (want = va_arg(ap, const char *)) != NULL;)
        if (!strstr(text, want))
            fail_msg("the report does not say \"%s\": %s", want, text);
    va_end(ap);
    /* nothing half-loaded is left behind */
    unsigned char zero[RP_CLUSTER_SECRET_LEN] = {0};
    assert_memory_equal(cfg->secret, zero, sizeof(zero));
}

/* ---- good files --------------------------------------------------------------------------------- */

static void test_write_then_load_round_trip(void **state)
{
    (void)state;
    rp_cluster_config_t *w = calloc(1, sizeof(*w));
    snprintf(w->name, sizeof(w->name), "prod-1");
    snprintf(w->volume, sizeof(w->volume), "%s/volume", dir);
    snprintf(w->secret_file, sizeof(w->secret_file), "%s/new.key", dir);
    for (int i = 0; i < RP_CLUSTER_SECRET_LEN; i++)
        w->secret[i] = (unsigned char)(i * 37 + 1);
    w->partitions = 256;
    w->request_timeout_ms = 1500;
    w->join_timeout_ms = 0;
    w->nmembers = 3;
    for (int i = 0; i < 3; i++) {
        rp_cluster_member_t *m = &w->members[i];
        m->id = i * 2; /* ids need not be dense */
        snprintf(m->host, sizeof(m->host), "%s", i == 2 ? "localhost" : "127.0.0.1");
        m->port = 7000 + i;
        m->cluster_port = 17000 + i;
        snprintf(m->data_dir, sizeof(m->data_dir), "%s/d%d", dir, i);
    }
    assert_int_equal(rp_cluster_config_write(conf, w), 0);
    struct stat st;
    assert_int_equal(stat(conf, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    assert_int_equal(stat(w->secret_file, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(rp_cluster_config_load(conf, cfg), 0);
    assert_string_equal(cfg->path, conf);
    assert_string_equal(cfg->name, "prod-1");
    assert_string_equal(cfg->volume, w->volume);
    assert_string_equal(cfg->secret_file, w->secret_file);
    assert_memory_equal(cfg->secret, w->secret, RP_CLUSTER_SECRET_LEN);
    assert_int_equal(cfg->partitions, 256);
    assert_int_equal(cfg->request_timeout_ms, 1500);
    assert_int_equal(cfg->join_timeout_ms, 0);
    assert_int_equal(cfg->nmembers, 3);
    for (int i = 0; i < 3; i++)
        assert_memory_equal(&cfg->members[i], &w->members[i], sizeof(rp_cluster_member_t));
    assert_ptr_equal(rp_cluster_member(cfg, 4), &cfg->members[2]);
    assert_null(rp_cluster_member(cfg, 1));
    assert_null(rp_cluster_member(cfg, 63));
    free(w);
}

static void test_defaults_relative_paths_indentation_and_comments(void **state)
{
    (void)state;
    char text[1024];
    write_file(key, SECRET_HEX "\n", 0600); /* a final newline is allowed */
    snprintf(text, sizeof(text),
             "# comment\n"
             "[cluster]\n"
             "    volume = vol        ; inline comment\n"
             "    secret-file = cluster.key\n"
             "\n"
             "[ instance.5 ]\n"
             "\thost=localhost\n"
             "\tport=1\n"
             "\tcluster-port=65535\n"
             "\tdata-dir=sub/data5\n");
    write_file(conf, text, 0644);
    assert_int_equal(rp_cluster_config_load(conf, cfg), 0);
    char want[256];
    snprintf(want, sizeof(want), "%s/vol", dir);
    assert_string_equal(cfg->volume, want);
    snprintf(want, sizeof(want), "%s/sub/data5", dir);
    assert_string_equal(cfg->members[0].data_dir, want);
    assert_string_equal(cfg->name, "respool");
    assert_int_equal(cfg->partitions, RP_CLUSTER_PARTITIONS_DEFAULT);
    assert_int_equal(cfg->request_timeout_ms, 5000);
    assert_int_equal(cfg->join_timeout_ms, 60000);
    assert_int_equal(cfg->nmembers, 1);
    assert_int_equal(cfg->members[0].id, 5);
    assert_string_equal(cfg->members[0].host, "localhost");
}

static void test_members_on_other_hosts_may_share_ports(void **state)
{
    (void)state;
    char text[1024];
    snprintf(text, sizeof(text),
             "[cluster]\nvolume = /dev/sdx\nsecret-file = %s\n"
             "[instance.0]\nhost = 198.51.100.7\nport = 6380\ncluster-port = 16380\ndata-dir = /srv/rp\n"
             "[instance.1]\nhost = 198.51.100.8\nport = 6380\ncluster-port = 16380\ndata-dir = /srv/rp\n",
             key);
    write_file(conf, text, 0644);
    assert_int_equal(rp_cluster_config_load(conf, cfg), 0);
    assert_false(rp_cluster_member_is_local(&cfg->members[0]));
}

/* ---- bad files: every message names file, section, key and line -------------------------------- */

static void test_unknown_key_suggests_the_closest(void **state)
{
    (void)state;
    write_conf("", "prot = 6382\n");
    expect_load_error(RP_ECONFIG, "unknown key \"prot\" in section [instance.1]", conf, "line 18",
                      "Did you mean \"port\"?", NULL);
}

static void test_key_in_the_wrong_section(void **state)
{
    (void)state;
    write_conf("data-dir = /x\n", "");
    expect_load_error(RP_ECONFIG, "unknown key \"data-dir\" in section [cluster]", "line 5",
                      "belongs in each [instance.N] section", NULL);
}

static void test_invalid_and_out_of_range_values(void **state)
{
    (void)state;
    write_conf("", "[instance.2]\nhost = 127.0.0.1\nport = six\n");
    expect_load_error(RP_ECONFIG, "invalid value for \"port\" in section [instance.2]: \"six\"", conf, "line 20",
                      "an integer from 1 to 65535", "Redis clients", NULL);
    write_conf("", "[instance.2]\ncluster-port = 70000\n");
    expect_load_error(RP_ECONFIG, "\"cluster-port\" in section [instance.2]: \"70000\"", "line 19", NULL);
    write_conf("partitions = 1024 # many\n", "");
    expect_load_error(RP_ECONFIG, "\"partitions\" in section [cluster]", "line 5",
                      "Only ';' starts a comment after a value", NULL);
    write_conf("request-timeout = 1ms\n", "");
    expect_load_error(RP_ECONFIG, "\"request-timeout\"", "from 10ms to 10min", NULL);
    write_conf("request-timeout = 5 parsecs\n", "");
    expect_load_error(RP_ECONFIG, "\"request-timeout\"", "line 5", NULL);
    write_conf("name = my cluster\n", "");
    expect_load_error(RP_ECONFIG, "invalid value for \"name\" in section [cluster]: \"my cluster\"", NULL);
}

static void test_hosts_others_cannot_reach_are_refused(void **state)
{
    (void)state;
    static const char *const bad[][2] = {
        {"0.0.0.0", "every address"}, {"::", "every address"},     {"[::1]", "without brackets"},
        {"10.0.0.256", "not a valid IPv4"}, {"bad_host", "only letters"}, {"-a.example", "starts with '-'"},
        {"a..b", "empty label"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char extra[128];
        snprintf(extra, sizeof(extra), "[instance.2]\nhost = %s\n", bad[i][0]);
        write_conf("", extra);
        expect_load_error(RP_ECONFIG, "invalid value for \"host\" in section [instance.2]", "line 19", bad[i][1], NULL);
    }
}

static void test_missing_keys_name_the_section_line(void **state)
{
    (void)state;
    write_conf("", "[instance.2]\nhost = 127.0.0.1\nport = 6382\ndata-dir = /tmp/x\n");
    expect_load_error(RP_ECONFIG, "section [instance.2] has no \"cluster-port\"", conf, "starts at line 18",
                      "Add \"cluster-port = ...\"", NULL);
    write_file(conf, "[cluster]\nsecret-file = k\n", 0644);
    expect_load_error(RP_ECONFIG, "section [cluster] has no \"volume\"", "starts at line 1", NULL);
    write_file(conf, "[instance.0]\nhost = a\n", 0644);
    expect_load_error(RP_ECONFIG, "has no [cluster] section", NULL);
    char text[256];
    snprintf(text, sizeof(text), "[cluster]\nvolume = v\nsecret-file = %s\n", key);
    write_file(conf, text, 0644);
    expect_load_error(RP_ECONFIG, "has no member", NULL);
}

static void test_repeated_keys_and_sections(void **state)
{
    (void)state;
    write_conf("", "port = 6390\n");
    expect_load_error(RP_ECONFIG, "\"port\" is set twice in section [instance.1]", "lines 15 and 18", NULL);
    write_conf("", "[instance.0]\n");
    expect_load_error(RP_ECONFIG, "section [instance.0] appears twice", "lines 7 and 18", NULL);
    write_conf("", "[cluster]\n");
    expect_load_error(RP_ECONFIG, "section [cluster] appears twice", "lines 2 and 18", NULL);
}

static void test_bad_sections_and_lines(void **state)
{
    (void)state;
    write_conf("", "[clustr]\n");
    expect_load_error(RP_ECONFIG, "unknown section [clustr]", "line 18", "Did you mean [cluster]?", NULL);
    write_conf("", "[instance.01]\n");
    expect_load_error(RP_ECONFIG, "invalid instance id in section [instance.01]", "without leading zeros", NULL);
    write_conf("", "[instance.64]\n");
    expect_load_error(RP_ECONFIG, "[instance.64]", "at most 64 instance slots", NULL);
    write_file(conf, "volume = v\n[cluster]\n", 0644);
    expect_load_error(RP_ECONFIG, "key \"volume\" is outside any section", "line 1", NULL);
    write_conf("", "this is not ini\n");
    expect_load_error(RP_ECONFIG, "syntax error in", "at line 18", NULL);
    char extra[400];
    snprintf(extra, sizeof(extra), "[instance.2]\ndata-dir = /%0240d\n", 0);
    write_conf("", extra);
    expect_load_error(RP_ECONFIG, "line 19", "is too long", "at most 198 characters", NULL);
}

static void test_ports_and_data_dirs_must_differ_on_one_host(void **state)
{
    (void)state;
    write_conf("", "[instance.2]\nhost = localhost\nport = 16381\ncluster-port = 16390\ndata-dir = /tmp/d2\n");
    expect_load_error(RP_ECONFIG, "port 16381 is used twice on host 127.0.0.1", "\"cluster-port\" of [instance.1] (line 13)",
                      "\"port\" of [instance.2] (line 18)", "both hosts are this host", NULL);
    write_conf("", "[instance.2]\nhost = 127.0.0.1\nport = 6390\ncluster-port = 6390\ndata-dir = /tmp/d2\n");
    expect_load_error(RP_ECONFIG, "port 6390 is both the port and the cluster-port of [instance.2]", NULL);
    char extra[256];
    snprintf(extra, sizeof(extra), "[instance.2]\nhost = 127.0.0.1\nport = 6390\ncluster-port = 6391\ndata-dir = %s/data0\n",
             dir);
    write_conf("", extra);
    expect_load_error(RP_ECONFIG, "is shared by two members", "[instance.0] (line 7) and [instance.2] (line 18)", NULL);
}

static void test_partitions(void **state)
{
    (void)state;
    write_conf("partitions = 1000\n", "");
    expect_load_error(RP_ECONFIG, "\"partitions\" in [cluster]", "is 1000", "power of two", NULL);
    write_conf("partitions = 1\n", "");
    expect_load_error(RP_ECONFIG, "is 1", "at least the number of members (2)", NULL);
    write_conf("partitions = 2\n", "");
    assert_int_equal(rp_cluster_config_load(conf, cfg), 0);
}

static void test_missing_config_file(void **state)
{
    (void)state;
    expect_load_error(RP_ENOENT, "could not open cluster configuration", "cluster init", NULL);
}

/* ---- the secret --------------------------------------------------------------------------------- */

static void test_secret_readable_by_others_is_refused_with_the_chmod(void **state)
{
    (void)state;
    write_conf("", "");
    static const mode_t modes[] = {0644, 0640, 0604, 0620, 0610, 0700 | 0001};
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        assert_int_equal(chmod(key, modes[i]), 0);
        char mode[16], hint[200];
        snprintf(mode, sizeof(mode), "mode is %04o", (unsigned)modes[i]);
        snprintf(hint, sizeof(hint), "| Run: chmod 600 %s", key);
        expect_load_error(RP_EPERM, "is accessible by group or others", mode, hint, "line 4", NULL);
    }
    assert_int_equal(chmod(key, 0400), 0);
    assert_int_equal(rp_cluster_config_load(conf, cfg), 0);
    assert_int_equal(cfg->secret[1], 0x11);
}

static void test_secret_content(void **state)
{
    (void)state;
    write_conf("", "");
    write_file(key, "0011", 0600);
    expect_load_error(RP_ECONFIG, "does not hold 64 hexadecimal characters", "It holds 4 characters", NULL);
    char text[80];
    snprintf(text, sizeof(text), "%s", SECRET_HEX);
    text[4] = 'g';
    write_file(key, text, 0600);
    expect_load_error(RP_ECONFIG, "Character 5 is not a hexadecimal digit", NULL);
    write_file(key, SECRET_HEX SECRET_HEX, 0600);
    expect_load_error(RP_ECONFIG, "It holds at least", NULL);
    write_file(key, "0000000000000000000000000000000000000000000000000000000000000000\n", 0600);
    expect_load_error(RP_ECONFIG, "a secret of all zeros", NULL);
    unlink(key);
    expect_load_error(RP_ENOENT, "does not exist", "\"secret-file\" in section [cluster]", "line 4", "chmod 600", NULL);
    assert_int_equal(mkdir(key, 0700), 0);
    expect_load_error(RP_ECONFIG, "is not a regular file", NULL);
    rmdir(key);
}

/* ---- writing ------------------------------------------------------------------------------------ */

static void test_write_refuses_what_it_cannot_write_or_load(void **state)
{
    (void)state;
    rp_cluster_config_t *w = calloc(1, sizeof(*w));
    snprintf(w->name, sizeof(w->name), "c");
    snprintf(w->volume, sizeof(w->volume), "%s/v ;x", dir);
    snprintf(w->secret_file, sizeof(w->secret_file), "%s/w.key", dir);
    w->partitions = 16;
    w->request_timeout_ms = 100;
    w->nmembers = 1;
    snprintf(w->members[0].host, sizeof(w->members[0].host), "127.0.0.1");
    w->members[0].port = 1;
    w->members[0].cluster_port = 2;
    snprintf(w->members[0].data_dir, sizeof(w->members[0].data_dir), "/d");
    assert_int_equal(rp_cluster_config_write(conf, w), RP_ECONFIG);
    assert_non_null(strstr(report_text(), "starts a comment"));
    snprintf(w->volume, sizeof(w->volume), "%s/v", dir);
    w->members[0].cluster_port = 1;
    assert_int_equal(rp_cluster_config_write(conf, w), RP_ECONFIG);
    assert_non_null(strstr(report_text(), "both the port and the cluster-port"));
    struct stat st;
    assert_int_not_equal(stat(conf, &st), 0);       /* nothing written */
    assert_int_not_equal(stat(w->secret_file, &st), 0);
    free(w);
}

/* ---- local hosts -------------------------------------------------------------------------------- */

static bool local(const char *host)
{
    rp_cluster_member_t m = {0};
    snprintf(m.host, sizeof(m.host), "%s", host);
    return rp_cluster_member_is_local(&m);
}

static void test_is_local(void **state)
{
    (void)state;
    assert_true(local("127.0.0.1"));
    assert_true(local("127.4.5.6"));
    assert_true(local("::1"));
    assert_true(local("localhost"));
    assert_true(local("LocalHost"));
    assert_true(local("db.localhost"));
    char me[256] = {0};
    assert_int_equal(gethostname(me, sizeof(me) - 1), 0);
    assert_true(local(me));
    strcat(me, ".");
    assert_true(local(me));
    /* an address of an interface that is not loopback, if the host has one */
    struct ifaddrs *ifs, *i;
    assert_int_equal(getifaddrs(&ifs), 0);
    for (i = ifs; i; i = i->ifa_next)
        if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET &&
            (ntohl(((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr) >> 24) != 127) {
            char text[INET_ADDRSTRLEN];
            inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, text, sizeof(text));
            assert_true(local(text));
            break;
        }
    freeifaddrs(ifs);
    assert_false(local("198.51.100.7")); /* TEST-NET-2 */
    assert_false(local("2001:db8::7"));
    assert_false(local("no-such-host.invalid"));
    assert_false(local(""));
}

static void test_bind_addresses(void **state)
{
    (void)state;
    rp_cluster_member_t m = {.id = 3};
    char buf[256];
    snprintf(m.host, sizeof(m.host), "localhost");
    assert_int_equal(rp_cluster_member_bind(&m, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "127.0.0.1");
    snprintf(m.host, sizeof(m.host), "::1");
    assert_int_equal(rp_cluster_member_bind(&m, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "::1");
    assert_int_equal(gethostname(m.host, sizeof(m.host) - 1), 0);
    if (rp_cluster_member_bind(&m, buf, sizeof(buf)) == 0) /* a host name that resolves */
        assert_true(buf[0] != '\0');
    snprintf(m.host, sizeof(m.host), "198.51.100.7");
    assert_int_equal(rp_cluster_member_bind(&m, buf, sizeof(buf)), RP_ECONFIG);
    assert_non_null(strstr(report_text(), "host \"198.51.100.7\" of [instance.3] is not this host"));
}

/* ---- documentation ------------------------------------------------------------------------------ */

static void check_documented(const rp_cm_key_t *keys, const char *doc)
{
    for (int i = 0; keys[i].name; i++) {
        char row[96];
        snprintf(row, sizeof(row), "\n| `%s` |", keys[i].name);
        if (!strstr(doc, row))
            fail_msg("key \"%s\" of the cluster file has no row in docs/cluster.md", keys[i].name);
    }
}

static void test_every_key_is_documented(void **state)
{
    (void)state;
    FILE *f = fopen(RP_SOURCE_DIR "/docs/cluster.md", "r");
    assert_non_null(f);
    char *doc = calloc(1, 1 << 20);
    size_t n = fread(doc, 1, (1 << 20) - 1, f);
    doc[n] = '\0';
    fclose(f);
    check_documented(rp_cm_cluster_keys, doc);
    check_documented(rp_cm_instance_keys, doc);
    free(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_write_then_load_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_defaults_relative_paths_indentation_and_comments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_members_on_other_hosts_may_share_ports, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_key_suggests_the_closest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_in_the_wrong_section, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_and_out_of_range_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hosts_others_cannot_reach_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_keys_name_the_section_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_repeated_keys_and_sections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_sections_and_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ports_and_data_dirs_must_differ_on_one_host, setup, teardown),
        cmocka_unit_test_setup_teardown(test_partitions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_config_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_readable_by_others_is_refused_with_the_chmod, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_content, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_refuses_what_it_cannot_write_or_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_is_local, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bind_addresses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_key_is_documented, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
