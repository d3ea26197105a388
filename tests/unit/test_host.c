/*
 * test_host.c - host inspection: /proc/meminfo, sysfs choice lists, sysctls, the commit check that the
 *               instance runs before it maps its buffer pool, and logind's RemoveIPC as systemd merges it
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/host.h"
#include "common/util.h"
#include "ctl/check_int.h"
#include "respool/error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char meminfo_text[] = "MemTotal:        8388608 kB\n"
                                   "MemFree:         1048576 kB\n"
                                   "MemAvailable:    4194304 kB\n"
                                   "SwapTotal:       2097152 kB\n"
                                   "SwapFree:        2097152 kB\n"
                                   "Shmem:             12345 kB\n"
                                   "a line without a colon\n"
                                   "CommitLimit:     6291456 kB\n"
                                   "Committed_AS:    abc kB\n"
                                   "Committed_AS:    5242880 kB\n"
                                   "HugePages_Total:     512\n"
                                   "HugePages_Free:      500\n"
                                   "HugePages_Rsvd:      100\n"
                                   "HugePages_Surp:        3\n"
                                   "Hugepagesize:       2048 kB\n"
                                   "Hugetlb:         1048576 kB\n"
                                   "MemTotalX:       1 kB\n"
                                   "VmallocTotal:   99999999999999999999999 kB"; /* no final newline */

static void test_parse_meminfo(void **state)
{
    (void)state;
    rp_host_meminfo_t mi;
    assert_int_equal(rp_host_parse_meminfo(meminfo_text, &mi), 0);
    assert_int_equal(mi.mem_total, 8ULL << 30);
    assert_int_equal(mi.mem_free, 1ULL << 30);
    assert_int_equal(mi.mem_available, 4ULL << 30);
    assert_int_equal(mi.swap_total, 2ULL << 30);
    assert_int_equal(mi.shmem, 12345ULL * 1024);
    assert_int_equal(mi.commit_limit, 6ULL << 30);
    assert_int_equal(mi.committed_as, 5ULL << 30); /* the malformed line is skipped */
    assert_int_equal(mi.huge_total, 512);          /* pages: no kB */
    assert_int_equal(mi.huge_free, 500);
    assert_int_equal(mi.huge_rsvd, 100);
    assert_int_equal(mi.huge_surp, 3);
    assert_int_equal(mi.huge_size, 2ULL << 20);
    assert_int_equal(mi.hugetlb, 1ULL << 30);
    assert_true(mi.have & RP_HOST_MI_MEM_TOTAL);
    assert_true(mi.have & RP_HOST_MI_COMMIT_LIMIT);
    assert_true(mi.have & RP_HOST_MI_HUGE);

    assert_int_equal(rp_host_parse_meminfo("MemFree: 1 kB\n", &mi), RP_EINVAL);
    assert_int_equal(rp_host_parse_meminfo("", &mi), RP_EINVAL);
    /* saturates instead of wrapping */
    assert_int_equal(rp_host_parse_meminfo("MemTotal: 99999999999999999999999 kB\n", &mi), 0);
    assert_int_equal(mi.mem_total, UINT64_MAX);
}

static void test_meminfo_of_this_host(void **state)
{
    (void)state;
    rp_host_meminfo_t mi;
    assert_int_equal(rp_host_meminfo(&mi), 0);
    assert_true(mi.mem_total > 0);
    assert_true(mi.have & RP_HOST_MI_COMMIT_LIMIT);
    uint64_t total, free_, rsvd, surp, size;
    assert_int_equal(rp_host_hugepages(&total, &free_, &rsvd, &surp, &size), 0);
    assert_true(free_ <= total + surp);
    assert_true(rsvd <= free_);
    assert_int_equal(rp_host_hugepages(NULL, NULL, NULL, NULL, NULL), 0);
}

static void test_parse_selected(void **state)
{
    (void)state;
    char out[16];
    assert_int_equal(rp_host_parse_selected("always [madvise] never\n", out, sizeof(out)), 0);
    assert_string_equal(out, "madvise");
    assert_int_equal(rp_host_parse_selected("[always] madvise never", out, sizeof(out)), 0);
    assert_string_equal(out, "always");
    assert_int_equal(rp_host_parse_selected("always defer defer+madvise [madvise] never", out, sizeof(out)), 0);
    assert_string_equal(out, "madvise");
    assert_int_equal(rp_host_parse_selected("always madvise never", out, sizeof(out)), RP_EINVAL);
    assert_int_equal(rp_host_parse_selected("[] never", out, sizeof(out)), RP_EINVAL);
    assert_int_equal(rp_host_parse_selected("[unterminated", out, sizeof(out)), RP_EINVAL);
    char small[4];
    assert_int_equal(rp_host_parse_selected("[madvise]", small, sizeof(small)), 0);
    assert_string_equal(small, "mad");
}

static void test_sysctl_and_files(void **state)
{
    (void)state;
    uint64_t v, sem[4];
    int n;
    char buf[64];
    assert_int_equal(rp_host_sysctl_u64("vm.overcommit_memory", &v), 0);
    assert_true(v <= 2);
    assert_int_equal(rp_host_sysctl_u64s("kernel.sem", sem, 4, &n), 0);
    assert_int_equal(n, 4);
    assert_int_equal(rp_host_sysctl_str("kernel.ostype", buf, sizeof(buf)), 0);
    assert_string_equal(buf, "Linux"); /* trailing newline removed */
    assert_int_equal(rp_host_sysctl_u64("../../etc/passwd", &v), RP_EINVAL);
    assert_int_equal(rp_host_sysctl_u64("kernel/../../etc", &v), RP_EINVAL);
    assert_int_equal(rp_host_sysctl_u64("", &v), RP_EINVAL);
    assert_int_equal(rp_host_sysctl_u64("kernel.no_such_sysctl_rp", &v), RP_ENOENT);
    assert_non_null(strstr(rp_last_error()->message, "/proc/sys/kernel/no_such_sysctl_rp"));
    assert_int_equal(rp_host_sysctl_u64("kernel.ostype", &v), RP_EINVAL); /* not a number */

    char tiny[8];
    size_t len;
    assert_int_equal(rp_host_read_file("/proc/meminfo", tiny, sizeof(tiny), &len), 0);
    assert_int_equal(len, sizeof(tiny) - 1); /* cut short, still terminated */
    assert_int_equal(strlen(tiny), sizeof(tiny) - 1);
    assert_int_equal(rp_host_read_file("/no/such/file", tiny, sizeof(tiny), NULL), RP_ENOENT);

    int64_t boot;
    assert_int_equal(rp_host_boot_time(&boot), 0);
    assert_true(boot > 1000000000 && boot <= (int64_t)time(NULL));
    char en[16], df[32];
    int rc = rp_host_thp(en, sizeof(en), df, sizeof(df));
    if (rc == 0)
        assert_true(strcmp(en, "always") == 0 || strcmp(en, "madvise") == 0 || strcmp(en, "never") == 0);
    else
        assert_int_equal(rc, RP_ENOENT);
}

/* A host with 8 GiB of RAM, no swap, strict overcommit at 50%: CommitLimit 4 GiB. */
static rp_host_commit_t strict_host(void)
{
    rp_host_commit_t c;
    memset(&c, 0, sizeof(c));
    c.mode = 2;
    c.ratio = 50;
    c.mi.mem_total = 8ULL << 30;
    c.mi.commit_limit = 4ULL << 30;
    c.mi.committed_as = 3584ULL << 20; /* 3.5 GiB */
    c.rlimit_as = c.rlimit_data = UINT64_MAX;
    return c;
}

static void test_commit_strict(void **state)
{
    (void)state;
    rp_host_commit_t c = strict_host();
    const char *what = "the buffer pool (buffer-pool-size = 1 GiB)";
    assert_int_equal(rp_host_commit_assess(&c, 256ULL << 20, what), 0);
    assert_int_equal(rp_host_commit_assess(&c, 1ULL << 30, what), RP_ENOMEM);
    const rp_report_t *r = rp_last_error();
    assert_non_null(strstr(r->message, what));
    assert_non_null(strstr(r->message, "1.0 GiB"));
    assert_non_null(strstr(r->detail, "vm.overcommit_memory = 2"));
    assert_non_null(strstr(r->detail, "CommitLimit is 4.0 GiB"));
    assert_non_null(strstr(r->detail, "Committed_AS is 3.5 GiB"));
    assert_non_null(strstr(r->detail, "only 512.0 MiB can still be committed"));
    assert_non_null(strstr(r->detail, "1.0 GiB was asked for"));
    /* the exact fix: (3.5 GiB + 1 GiB) / 8 GiB = 56.25% -> 57 */
    assert_non_null(strstr(r->hint, "vm.overcommit_ratio=57 (now 50"));
    assert_non_null(strstr(r->hint, "at most 512.0 MiB"));

    /* with overcommit_kbytes in use the hint names that instead */
    c.kbytes = 4ULL << 20;
    assert_int_equal(rp_host_commit_assess(&c, 1ULL << 30, what), RP_ENOMEM);
    assert_non_null(strstr(rp_last_error()->hint, "vm.overcommit_kbytes=4718593"));
    c.kbytes = 0;

    /* beyond what any ratio can give */
    assert_int_equal(rp_host_commit_assess(&c, 16ULL << 30, what), RP_ENOMEM);
    assert_non_null(strstr(rp_last_error()->hint, "even vm.overcommit_ratio=100 would not make room"));

    /* huge pages are taken out of CommitLimit: say so */
    c.mi.hugetlb = 1ULL << 30;
    assert_int_equal(rp_host_commit_assess(&c, 1ULL << 30, what), RP_ENOMEM);
    assert_non_null(strstr(rp_last_error()->detail, "huge pages, 1.0 GiB, are excluded"));
    assert_non_null(strstr(rp_last_error()->hint, "vm.overcommit_ratio=65 (")); /* 4.5 GiB / 7 GiB */
    c.mi.hugetlb = 0;

    /* the kernel's reserves count: 384 MiB fit without them, not with 128 MiB reserved */
    assert_int_equal(rp_host_commit_assess(&c, 384ULL << 20, what), 0);
    c.reserve = 128ULL << 20;
    assert_int_equal(rp_host_commit_assess(&c, 384ULL << 20, what), RP_ENOMEM);
    assert_non_null(strstr(rp_last_error()->detail, "keeps 128.0 MiB in reserve"));

    /* already over the limit: nothing fits, no underflow */
    c.reserve = 0;
    c.mi.committed_as = 5ULL << 30;
    assert_int_equal(rp_host_commit_assess(&c, 1, what), RP_ENOMEM);
    assert_non_null(strstr(rp_last_error()->detail, "only 0 bytes"));
}

static void test_commit_heuristic_and_always(void **state)
{
    (void)state;
    rp_host_commit_t c = strict_host();
    c.mode = 0;
    c.mi.swap_total = 2ULL << 30;
    /* mode 0 checks nothing the kernel would not: even far past CommitLimit is fine ... */
    assert_int_equal(rp_host_commit_assess(&c, 10ULL << 30, "x"), 0);
    /* ... up to MemTotal + SwapTotal for one request */
    assert_int_equal(rp_host_commit_assess(&c, (10ULL << 30) + 1, "the buffer pool"), RP_ENOMEM);
    assert_non_null(strstr(rp_last_error()->detail, "vm.overcommit_memory = 0"));
    assert_non_null(strstr(rp_last_error()->detail, "MemTotal + SwapTotal (10.0 GiB)"));
    assert_non_null(strstr(rp_last_error()->detail, "CommitLimit"));
    assert_non_null(strstr(rp_last_error()->detail, "Committed_AS"));
    c.mode = 1;
    assert_int_equal(rp_host_commit_assess(&c, UINT64_MAX, "x"), 0);
}

static void test_commit_rlimits(void **state)
{
    (void)state;
    rp_host_commit_t c = strict_host();
    c.mode = 1;
    c.rlimit_as = 1ULL << 30;
    c.vm_size = 900ULL << 20;
    assert_int_equal(rp_host_commit_assess(&c, 100ULL << 20, "x"), 0);
    assert_int_equal(rp_host_commit_assess(&c, 200ULL << 20, "the buffer pool"), RP_ENOMEM);
    assert_non_null(strstr(rp_last_error()->detail, "RLIMIT_AS (ulimit -v) is 1.0 GiB"));
    assert_non_null(strstr(rp_last_error()->hint, "LimitAS=infinity"));
    c.rlimit_as = UINT64_MAX;
    c.rlimit_data = 512ULL << 20;
    c.vm_data = 400ULL << 20;
    assert_int_equal(rp_host_commit_assess(&c, 200ULL << 20, "x"), RP_ENOMEM);
    assert_non_null(strstr(rp_last_error()->detail, "RLIMIT_DATA"));
}

static void test_check_commit_on_this_host(void **state)
{
    (void)state;
    assert_int_equal(rp_host_check_commit(1 << 20, "a small test"), 0);
    rp_host_commit_t c;
    assert_int_equal(rp_host_commit_read(&c), 0);
    assert_true(c.mode >= 0 && c.mode <= 2);
    assert_true(c.vm_size > 0);
    int rc = rp_host_check_commit(UINT64_MAX / 2, "an absurd request");
    if (c.mode == 1 && c.rlimit_as == UINT64_MAX && c.rlimit_data == UINT64_MAX) {
        assert_int_equal(rc, 0);
    } else {
        assert_int_equal(rc, RP_ENOMEM);
        assert_non_null(strstr(rp_last_error()->message, "an absurd request"));
    }
}

/* ---- logind.conf as systemd merges it ---- */

static char root[128];

static void put(const char *rel, const char *text)
{
    char path[512], dir[512];
    snprintf(path, sizeof(path), "%s%s", root, rel);
    snprintf(dir, sizeof(dir), "%s", path);
    for (char *p = dir + strlen(root) + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(dir, 0755);
            *p = '/';
        }
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int make_root(void **state)
{
    (void)state;
    snprintf(root, sizeof(root), "/tmp/rp-test-host.XXXXXX");
    return mkdtemp(root) ? 0 : -1;
}

static int remove_root(void **state)
{
    (void)state;
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_logind_merge(void **state)
{
    (void)state;
    ctl_logind_t l;
    ctl_logind_config(root, &l);
    assert_true(l.remove_ipc); /* systemd's default */
    assert_non_null(strstr(l.source, "built-in default"));

    put("/etc/systemd/logind.conf", "[Login]\n#RemoveIPC=yes\n  RemoveIPC = off  \n[Other]\nRemoveIPC=yes\n");
    ctl_logind_config(root, &l);
    assert_false(l.remove_ipc);
    assert_string_equal(l.source, "/etc/systemd/logind.conf:3");

    /* drop-ins apply after the main file, in file-name order across directories */
    put("/usr/lib/systemd/logind.conf.d/10-vendor.conf", "[Login]\nRemoveIPC=yes\n");
    ctl_logind_config(root, &l);
    assert_true(l.remove_ipc);
    assert_string_equal(l.source, "/usr/lib/systemd/logind.conf.d/10-vendor.conf:2");
    put("/run/systemd/logind.conf.d/20-runtime.conf", "[Login]\nRemoveIPC=no\n");
    ctl_logind_config(root, &l);
    assert_false(l.remove_ipc);
    assert_string_equal(l.source, "/run/systemd/logind.conf.d/20-runtime.conf:2");

    /* the same name in /etc hides the one in /usr/lib, whatever it says */
    put("/usr/lib/systemd/logind.conf.d/30-db.conf", "[Login]\nRemoveIPC=yes\n");
    put("/etc/systemd/logind.conf.d/30-db.conf", "[Login]\nRemoveIPC=no\n# a comment\n");
    ctl_logind_config(root, &l);
    assert_false(l.remove_ipc);
    assert_string_equal(l.source, "/etc/systemd/logind.conf.d/30-db.conf:2");

    /* a link to /dev/null masks a vendor drop-in */
    put("/usr/lib/systemd/logind.conf.d/40-late.conf", "[Login]\nRemoveIPC=yes\n");
    ctl_logind_config(root, &l);
    assert_true(l.remove_ipc);
    char link[512];
    snprintf(link, sizeof(link), "%s/etc/systemd/logind.conf.d/40-late.conf", root);
    assert_int_equal(symlink("/dev/null", link), 0);
    ctl_logind_config(root, &l);
    assert_false(l.remove_ipc);

    /* invalid values are ignored, as logind does; other sections and non-.conf files too */
    put("/etc/systemd/logind.conf.d/50-bad.conf", "[Login]\nRemoveIPC=maybe\n");
    put("/etc/systemd/logind.conf.d/60-other.conf", "[Journal]\nRemoveIPC=yes\n");
    put("/etc/systemd/logind.conf.d/70-notconf.txt", "[Login]\nRemoveIPC=yes\n");
    ctl_logind_config(root, &l);
    assert_false(l.remove_ipc);
    assert_non_null(strstr(l.files, "/etc/systemd/logind.conf, "));
    assert_null(strstr(l.files, "70-notconf"));
}

static void test_logind_words_and_login_defs(void **state)
{
    (void)state;
    static const char *const yes[] = {"yes", "YES", "y", "true", "t", "on", "1"};
    static const char *const no[] = {"no", "No", "n", "false", "f", "off", "0"};
    for (size_t i = 0; i < RP_ARRAY_LEN(yes); i++) {
        assert_int_equal(ctl_logind_parse_bool(yes[i]), 1);
        assert_int_equal(ctl_logind_parse_bool(no[i]), 0);
    }
    assert_int_equal(ctl_logind_parse_bool("2"), -1);
    assert_int_equal(ctl_logind_parse_bool(""), -1);

    bool from_file;
    assert_int_equal(ctl_sys_uid_max(root, &from_file), 999);
    assert_false(from_file);
    put("/etc/login.defs", "#SYS_UID_MAX 100\nSYS_UID_MAX_X 5\nSYS_UID_MAX\t\t 499\nUID_MIN 500\n");
    assert_int_equal(ctl_sys_uid_max(root, &from_file), 499);
    assert_true(from_file);
    put("/etc/login.defs", "SYS_UID_MAX abc\n");
    assert_int_equal(ctl_sys_uid_max(root, &from_file), 999);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_meminfo),
        cmocka_unit_test(test_meminfo_of_this_host),
        cmocka_unit_test(test_parse_selected),
        cmocka_unit_test(test_sysctl_and_files),
        cmocka_unit_test(test_commit_strict),
        cmocka_unit_test(test_commit_heuristic_and_always),
        cmocka_unit_test(test_commit_rlimits),
        cmocka_unit_test(test_check_commit_on_this_host),
        cmocka_unit_test_setup_teardown(test_logind_merge, make_root, remove_root),
        cmocka_unit_test_setup_teardown(test_logind_words_and_login_defs, make_root, remove_root),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
