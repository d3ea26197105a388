/*
 * test_ipc.c - the IPC doctor's parsers and judgements: postmaster.pid (PostgreSQL 9.x-17, openGauss),
 *              /proc/PID/maps and /proc/PID/stat lines, /proc/sysvipc tables, log-line recognition,
 *              and the classification and diagnosis rules on hand-built snapshots
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "common/util.h"
#include "ctl/ipc_int.h"
#include "respool/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static int parse(const char *text, ctl_pidfile_t *pf)
{
    return ctl_pg_parse_pidfile(text, strlen(text), pf);
}

static void test_pidfile_postgres15(void **state)
{
    (void)state;
    ctl_pidfile_t pf;
    const char *text = "4242\n/var/lib/postgresql/15/main\n1700000000\n5432\n/var/run/postgresql\nlocalhost\n"
                       " 10952881        22\nready   \n";
    assert_int_equal(parse(text, &pf), 0);
    assert_int_equal(pf.nlines, 8);
    assert_int_equal(pf.pid, 4242);
    assert_false(pf.standalone);
    assert_string_equal(pf.datadir, "/var/lib/postgresql/15/main");
    assert_true(pf.has_start);
    assert_int_equal(pf.start_time, 1700000000);
    assert_int_equal(pf.port, 5432);
    assert_string_equal(pf.socket_dir, "/var/run/postgresql");
    assert_string_equal(pf.listen, "localhost");
    assert_true(pf.has_shm);
    assert_int_equal(pf.key, 10952881);
    assert_int_equal(pf.shmid, 22);
    assert_string_equal(pf.status, "ready"); /* padding removed */
}

static void test_pidfile_old_and_opengauss(void **state)
{
    (void)state;
    ctl_pidfile_t pf;
    /* PostgreSQL 9.6: 7 lines, key = port * 1000 + 1 */
    assert_int_equal(parse("777\n/srv/pg\n1600000000\n5433\n/tmp\n*\n  5433001     32769\n", &pf), 0);
    assert_int_equal(pf.nlines, 7);
    assert_int_equal(pf.key, 5433001);
    assert_int_equal(pf.shmid, 32769);
    assert_string_equal(pf.status, "");
    /* openGauss: a negative PID, CRLF line ends from a copied file, no trailing newline */
    assert_int_equal(parse("-31337\r\n/opt/og/data\r\n1650000000\r\n26000\r\n/tmp\r\n\r\n 26000001 98307", &pf), 0);
    assert_int_equal(pf.pid, 31337);
    assert_true(pf.standalone);
    assert_string_equal(pf.datadir, "/opt/og/data");
    assert_string_equal(pf.listen, "");
    assert_true(pf.has_shm);
    assert_int_equal(pf.key, 26000001);
    assert_int_equal(pf.shmid, 98307);
    /* a negative key_t printed with %lu arrives sign-extended to 64 bits; the kernel knows 32 */
    assert_int_equal(parse("1\n/d\n1\n1\n/tmp\n\n18446744071562067968         5\n", &pf), 0);
    assert_true(pf.has_shm);
    assert_int_equal(pf.key, 0x80000000u);
}

static void test_pidfile_partial_and_bad(void **state)
{
    (void)state;
    ctl_pidfile_t pf;
    /* written in steps: line 7 not there yet */
    assert_int_equal(parse("4242\n/d\n1700000000\n5432\n/tmp\n", &pf), 0);
    assert_false(pf.has_shm);
    assert_int_equal(parse("4242\n", &pf), 0);
    assert_false(pf.has_start);
    assert_int_equal(pf.port, 0);
    /* bad line 7 values are ignored, not trusted */
    static const char *const bad7[] = {"abc def", "-5 6", "5", "5 -6", "5 6 7", "5 99999999999"};
    for (size_t i = 0; i < RP_ARRAY_LEN(bad7); i++) {
        char text[128];
        snprintf(text, sizeof(text), "1\n/d\n1\n1\n/tmp\n\n%s\n", bad7[i]);
        assert_int_equal(parse(text, &pf), 0);
        assert_false(pf.has_shm);
    }
    /* a bad first line is an error with a report */
    assert_int_equal(parse("abc\n/d\n", &pf), RP_EINVAL);
    assert_non_null(strstr(rp_last_error()->message, "not a process ID"));
    assert_int_equal(parse("0\n", &pf), RP_EINVAL);
    assert_int_equal(parse("99999999999\n", &pf), RP_EINVAL);
    assert_int_equal(parse("", &pf), RP_EINVAL);
    assert_int_equal(parse("\n", &pf), RP_EINVAL);
    /* binary junk stops the parse */
    const char junk[] = "12\n/d\n\0\0\0\n5432\n";
    assert_int_equal(ctl_pg_parse_pidfile(junk, sizeof(junk) - 1, &pf), 0);
    assert_int_equal(pf.nlines, 2);
    assert_int_equal(pf.port, 0);
    /* a very long line is cut, not overflowed */
    char *longtext = malloc(20000);
    memset(longtext, 'x', 19999);
    memcpy(longtext, "5\n/", 3);
    longtext[19999] = '\0';
    assert_int_equal(parse(longtext, &pf), 0);
    assert_int_equal(strlen(pf.datadir), sizeof(pf.datadir) - 1);
    free(longtext);
}

static void test_maps_lines(void **state)
{
    (void)state;
    uint32_t key = 0;
    int64_t shmid = 0;
    uint64_t dev = 0, ino = 0;
    char name[64];
    assert_int_equal(ctl_ipc_parse_maps_line("7f2c4a1c2000-7f2c4a1c3000 rw-s 00000000 00:01 32770                  "
                                             "    /SYSV0052e2c1 (deleted)\n",
                                             &key, &shmid, &dev, &ino, name, sizeof(name)),
                     1);
    assert_int_equal(key, 0x0052e2c1);
    assert_int_equal(shmid, 32770);
    assert_int_equal(ctl_ipc_parse_maps_line("7f2c4a1c2000-7f2c4a1c3000 rw-s 00000000 00:01 0 /SYSV00000000",
                                             &key, &shmid, &dev, &ino, name, sizeof(name)),
                     1);
    assert_int_equal(key, 0);
    assert_int_equal(shmid, 0);
    assert_int_equal(ctl_ipc_parse_maps_line("7f2c4a1c2000-7f2c4a1c3000 rw-s 00000000 00:01 5 /SYSVFFFFFFFF (deleted)",
                                             &key, &shmid, &dev, &ino, name, sizeof(name)),
                     1);
    assert_int_equal(key, 0xffffffffu);
    /* a POSIX segment in /dev/shm: dev is hex major:minor */
    assert_int_equal(ctl_ipc_parse_maps_line("7f0000000000-7f0000100000 rw-s 00000000 00:1a 4711    "
                                             "/dev/shm/PostgreSQL.1883086488\n",
                                             &key, &shmid, &dev, &ino, name, sizeof(name)),
                     2);
    assert_int_equal(dev, makedev(0, 0x1a));
    assert_int_equal(ino, 4711);
    assert_string_equal(name, "PostgreSQL.1883086488");
    assert_int_equal(ctl_ipc_parse_maps_line("7f0000000000-7f0000100000 rw-s 00000000 00:1a 4711 /dev/shm/a b\n", &key,
                                             &shmid, &dev, &ino, name, sizeof(name)),
                     2);
    assert_string_equal(name, "a b");
    /* not ours */
    static const char *const others[] = {
        "7f0000000000-7f0000100000 rw-s 00000000 00:1a 4711 /dev/shm/gone (deleted)",
        "7f0000000000-7f0000100000 rw-p 00000000 00:00 0",
        "7f0000000000-7f0000100000 rw-p 00000000 00:00 0                  [heap]",
        "7f0000000000-7f0000100000 r-xp 00000000 08:01 131 /usr/lib/postgresql/15/bin/postgres",
        "7f0000000000-7f0000100000 rw-s 00000000 00:01 32770 /SYSV0052e2c1x",
        "7f0000000000-7f0000100000 rw-s 00000000 00:01 32770 /SYSV0052e2",
        "7f0000000000-7f0000100000 rw-s 00000000 00:01 32770 /SYSV0052e2g1 (deleted)",
        "7f0000000000-7f0000100000 rw-s 00000000 00:01 99999999999 /SYSV0052e2c1 (deleted)",
        "7f0000000000-7f0000100000 rw-s 00000000 00:01 -1 /SYSV0052e2c1 (deleted)",
        "7f0000000000-7f0000100000 rw-s 00000000 0001 5 /dev/shm/x",
        "garbage",
        "",
        "a b c d e",
    };
    for (size_t i = 0; i < RP_ARRAY_LEN(others); i++)
        assert_int_equal(ctl_ipc_parse_maps_line(others[i], &key, &shmid, &dev, &ino, name, sizeof(name)), 0);
    /* a long /dev/shm name is cut to the buffer */
    char small[4];
    assert_int_equal(ctl_ipc_parse_maps_line("1-2 rw-s 0 00:1a 9 /dev/shm/abcdefgh", &key, &shmid, &dev, &ino, small,
                                             sizeof(small)),
                     2);
    assert_string_equal(small, "abc");
}

static void test_proc_stat(void **state)
{
    (void)state;
    ctl_proc_t p;
    memset(&p, 0, sizeof(p));
    const char *line = "4250 (postgres) T 1 4242 4242 0 -1 4194560 120 0 0 0 1 2 0 0 20 0 1 0 987654 20000000 1000 "
                       "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
    assert_true(ctl_proc_parse_stat(line, &p));
    assert_int_equal(p.pid, 4250);
    assert_string_equal(p.comm, "postgres");
    assert_int_equal(p.state, 'T');
    assert_int_equal(p.ppid, 1);
    assert_int_equal(p.start_ticks, 987654);
    /* a program may name itself anything, including ") S 1": the LAST ')' ends the name */
    assert_true(ctl_proc_parse_stat("77 (evil) S 1 (x)) Z 9 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 555 0 0", &p));
    assert_string_equal(p.comm, "evil) S 1 (x)");
    assert_int_equal(p.state, 'Z');
    assert_int_equal(p.ppid, 9);
    assert_int_equal(p.start_ticks, 555);
    /* malformed */
    assert_false(ctl_proc_parse_stat("77 (cut) S 1 2", &p));
    assert_false(ctl_proc_parse_stat("no parens at all", &p));
    assert_false(ctl_proc_parse_stat("x (a) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5", &p));
    assert_false(ctl_proc_parse_stat("5 (a) SS 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5", &p));
    assert_false(ctl_proc_parse_stat("5 (a) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 -5", &p));
    assert_false(ctl_proc_parse_stat(")5 (", &p));
    assert_string_equal(ctl_proc_state_text('T'), "T (stopped)");
    assert_string_equal(ctl_proc_state_text('Z'), "Z (zombie)");
    assert_string_equal(ctl_proc_state_text('?'), "? (unknown)");
}

typedef struct rows {
    int n;
    char shmid[4][16];
    char nattch[4][16];
} rows_t;

static void collect(void *arg, int ncols, char **names, char **vals)
{
    rows_t *r = arg;
    for (int i = 0; i < ncols; i++) {
        if (strcmp(names[i], "shmid") == 0)
            snprintf(r->shmid[r->n], sizeof(r->shmid[0]), "%s", vals[i]);
        if (strcmp(names[i], "nattch") == 0)
            snprintf(r->nattch[r->n], sizeof(r->nattch[0]), "%s", vals[i]);
    }
    r->n++;
}

static void test_sysvipc_table(void **state)
{
    (void)state;
    char text[] = "       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      "
                  "atime      dtime      ctime                   rss                  swap\n"
                  "  10952881         22   600                    56 11399 11423      1  1001  1001  1001  1001 "
                  "1795284593          0 1795284593                  4096                     0\n"
                  "a short line\n"
                  "\n"
                  "         0         23  1600               1048576   100   100      0     0     0     0     0 "
                  "0 0 0 0 0\n";
    rows_t r = {0};
    assert_int_equal(ctl_ipc_parse_table(text, collect, &r), 2);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.shmid[0], "22");
    assert_string_equal(r.nattch[0], "1");
    assert_string_equal(r.shmid[1], "23");
    char empty[] = "";
    assert_int_equal(ctl_ipc_parse_table(empty, collect, &r), RP_EINVAL);
    char header_only[] = "key shmid\n";
    assert_int_equal(ctl_ipc_parse_table(header_only, collect, &r), 0);
}

static ctl_msg_kind_t kind_of(const char *text, ctl_logmsg_t *m)
{
    return ctl_ipc_parse_log(text, m);
}

static void test_log_lines(void **state)
{
    (void)state;
    ctl_logmsg_t m;
    assert_int_equal(kind_of("2024-05-01 10:00:00.123 UTC [4242] FATAL:  semop(id=98765) failed: Identifier removed", &m),
                     CTL_LOG_SEM_REMOVED);
    assert_true(m.has_id);
    assert_int_equal(m.id, 98765);
    assert_int_equal(kind_of("PANIC:  semop(id=7) failed: Invalid argument", &m), CTL_LOG_SEM_REMOVED);
    assert_int_equal(kind_of("LOG:  semop(id=7) failed: Interrupted system call", &m), CTL_LOG_UNKNOWN);

    assert_int_equal(kind_of("ERROR:  could not open shared memory segment \"/PostgreSQL.1883086488\": No such file or "
                             "directory",
                             &m),
                     CTL_LOG_DSM_REMOVED);
    assert_string_equal(m.path, "/PostgreSQL.1883086488");

    assert_int_equal(kind_of("FATAL:  pre-existing shared memory block (key 10952881, ID 22) is still in use\n"
                             "HINT:  Terminate any old server processes associated with data directory "
                             "\"/srv/pg/data\".",
                             &m),
                     CTL_LOG_SHM_IN_USE);
    assert_true(m.has_key && m.has_id);
    assert_int_equal(m.key, 10952881);
    assert_int_equal(m.id, 22);
    assert_string_equal(m.datadir, "/srv/pg/data");
    /* a sign-extended key from the message */
    assert_int_equal(kind_of("pre-existing shared memory block (key 18446744071562067968, ID 5) is still in use", &m),
                     CTL_LOG_SHM_IN_USE);
    assert_int_equal(m.key, 0x80000000u);

    assert_int_equal(kind_of("FATAL:  lock file \"postmaster.pid\" already exists\nHINT:  Is another postmaster (PID "
                             "4242) running in data directory \"/srv/pg\"?",
                             &m),
                     CTL_LOG_LOCK_EXISTS);
    assert_string_equal(m.path, "postmaster.pid");
    assert_true(m.has_pid);
    assert_int_equal(m.pid, 4242);
    assert_string_equal(m.datadir, "/srv/pg");
    assert_int_equal(kind_of("FATAL:  lock file \"/tmp/.s.PGSQL.5432.lock\" already exists", &m), CTL_LOG_LOCK_EXISTS);
    assert_false(m.has_pid);

    assert_int_equal(kind_of("FATAL:  could not create shared memory segment: No space left on device\nDETAIL:  Failed "
                             "system call was shmget(key=5432001, size=56, 03600).",
                             &m),
                     CTL_LOG_SHMGET_ENOSPC);
    assert_true(m.has_key && m.has_size);
    assert_int_equal(m.key, 5432001);
    assert_int_equal(m.size, 56);
    assert_int_equal(kind_of("FATAL:  could not create shared memory segment: Cannot allocate memory", &m),
                     CTL_LOG_SHMGET_ENOMEM);
    assert_false(m.has_size);
    assert_int_equal(kind_of("FATAL:  could not create shared memory segment: Invalid argument", &m),
                     CTL_LOG_SHMGET_EINVAL);

    assert_int_equal(kind_of("FATAL:  could not map anonymous shared memory: Cannot allocate memory\nHINT:  This error "
                             "usually means that PostgreSQL's request for a shared memory segment exceeded available "
                             "memory, swap space, or huge pages. To reduce the request size (currently 148324352 "
                             "bytes), reduce PostgreSQL's shared memory usage.",
                             &m),
                     CTL_LOG_MMAP_ENOMEM);
    assert_true(m.has_size);
    assert_int_equal(m.size, 148324352);
    assert_int_equal(kind_of("LOG:  could not fork new process for connection: Cannot allocate memory", &m),
                     CTL_LOG_FORK_ENOMEM);
    assert_int_equal(kind_of("LOG:  could not fork autovacuum worker process: Resource temporarily unavailable", &m),
                     CTL_LOG_UNKNOWN);
    assert_int_equal(kind_of("ERROR:  could not resize shared memory segment \"/PostgreSQL.99\" to 67108864 bytes: No "
                             "space left on device",
                             &m),
                     CTL_LOG_DSM_RESIZE);
    assert_int_equal(m.size, 67108864);
    assert_string_equal(m.path, "/PostgreSQL.99");

    assert_int_equal(kind_of("LOG:  database system is ready to accept connections", &m), CTL_LOG_UNKNOWN);
    assert_int_equal(kind_of("", &m), CTL_LOG_UNKNOWN);
    /* numbers that do not fit are not taken */
    assert_int_equal(kind_of("semop(id=99999999999999999999999) failed: Identifier removed", &m), CTL_LOG_SEM_REMOVED);
    assert_false(m.has_id);
    assert_int_equal(kind_of("lock file \"x\" already exists (PID 99999999999)", &m), CTL_LOG_LOCK_EXISTS);
    assert_false(m.has_pid);
}

/* ---- classification and diagnosis on a hand-built snapshot ---- */

static void add_proc(ctl_ipc_scan_t *s, int pid, int ppid, char state, int64_t start, const char *cmd)
{
    s->procs = rp_xrealloc(s->procs, (s->nprocs + 1) * sizeof(*s->procs));
    ctl_proc_t *p = &s->procs[s->nprocs++];
    memset(p, 0, sizeof(*p));
    p->pid = pid;
    p->ppid = ppid;
    p->state = state;
    p->start_time = start;
    p->uid = 1001;
    snprintf(p->comm, sizeof(p->comm), "postgres");
    snprintf(p->cmdline, sizeof(p->cmdline), "%s", cmd);
}

static ctl_shm_t *add_shm(ctl_ipc_scan_t *s, uint32_t key, int shmid, uint64_t nattch, int cpid, int64_t ctime)
{
    s->shm = rp_xrealloc(s->shm, (s->nshm + 1) * sizeof(*s->shm));
    ctl_shm_t *m = &s->shm[s->nshm++];
    memset(m, 0, sizeof(*m));
    m->key = key;
    m->shmid = shmid;
    m->nattch = nattch;
    m->cpid = m->lpid = cpid;
    m->ctime = ctime;
    m->size = 56;
    m->dir = -1;
    return m;
}

/* PIDs far above pid_max, so no real process is ever consulted. */
#define P(n) (4000000 + (n))

static void test_classify(void **state)
{
    (void)state;
    ctl_ipc_scan_t s;
    memset(&s, 0, sizeof(s));
    s.now = 100000;
    add_proc(&s, P(1), 1, 'S', 1000, "creator");
    add_proc(&s, P(2), 1, 'Z', 1000, "");
    ctl_shm_t *attached = add_shm(&s, 1, 10, 1, P(9), 500);
    ctl_shm_t *foreign = add_shm(&s, 2, 11, 0, P(1), 2000);  /* creator started before it: alive */
    ctl_shm_t *reused = add_shm(&s, 3, 12, 0, P(1), 500);    /* "creator" started after it: a reused PID */
    ctl_shm_t *gone = add_shm(&s, 0, 13, 0, P(7), 500);      /* creator gone */
    ctl_shm_t *zombie = add_shm(&s, 4, 14, 0, P(2), 2000);   /* creator is a zombie */
    ctl_shm_t *mapped = add_shm(&s, 5, 15, 0, P(7), 500);    /* nattch 0 but a process maps it: attached */
    ctl_pidlist_add(&mapped->mappers, P(1));
    ctl_shm_t *lastuser = add_shm(&s, 6, 16, 0, P(7), 500);  /* creator gone, last user alive */
    lastuser->lpid = P(1);
    lastuser->dtime = 3000;
    ctl_ipc_classify(&s);
    /* the pointers moved with every realloc: index instead */
    attached = &s.shm[0], foreign = &s.shm[1], reused = &s.shm[2], gone = &s.shm[3], zombie = &s.shm[4];
    mapped = &s.shm[5], lastuser = &s.shm[6];
    assert_int_equal(attached->cls, CTL_IPC_ATTACHED);
    assert_non_null(strstr(attached->why, "0 of the processes are visible"));
    assert_int_equal(foreign->cls, CTL_IPC_FOREIGN);
    assert_non_null(strstr(foreign->why, "creator"));
    assert_int_equal(reused->cls, CTL_IPC_ORPHAN);
    assert_int_equal(gone->cls, CTL_IPC_ORPHAN);
    assert_int_equal(zombie->cls, CTL_IPC_ORPHAN);
    assert_int_equal(mapped->cls, CTL_IPC_ATTACHED);
    assert_int_equal(lastuser->cls, CTL_IPC_FOREIGN);
    assert_non_null(strstr(lastuser->why, "last user"));

    /* owned by a data directory: its postmaster decides */
    s.dirs = rp_xcalloc(1, sizeof(*s.dirs));
    s.ndirs = 1;
    s.dirs[0].has_pidfile = true;
    s.dirs[0].pf.pid = P(1);
    s.dirs[0].pm = CTL_PM_ALIVE;
    s.shm[3].dir = 0;
    ctl_ipc_classify(&s);
    assert_int_equal(s.shm[3].cls, CTL_IPC_CLAIMED);
    s.dirs[0].pm = CTL_PM_DEAD;
    ctl_ipc_classify(&s);
    assert_int_equal(s.shm[3].cls, CTL_IPC_ORPHAN);
    assert_non_null(strstr(s.shm[3].why, "postmaster of its data directory is dead"));

    char age[16];
    assert_string_equal(ctl_ipc_age(100, 55, age, sizeof(age)), "45s");
    assert_string_equal(ctl_ipc_age(10000, 0, age, sizeof(age)), "-");
    assert_string_equal(ctl_ipc_age(3 * 86400 + 7200, 0 + 1, age, sizeof(age)), "3d01h");
    assert_string_equal(ctl_ipc_age(4000, 100, age, sizeof(age)), "1h05m");
    ctl_ipc_scan_free(&s);
}

static void test_diagnose(void **state)
{
    (void)state;
    ctl_ipc_scan_t s;
    memset(&s, 0, sizeof(s));
    s.now = 100000;
    s.dirs = rp_xcalloc(1, sizeof(*s.dirs));
    s.ndirs = 1;
    ctl_datadir_t *d = &s.dirs[0];
    snprintf(d->path, sizeof(d->path), "/srv/pg");
    d->ino = 777;
    d->owner_uid = 1001;
    d->has_pidfile = true;
    d->pf.pid = P(1);
    d->pf.port = 5432;
    d->pf.has_shm = true;
    d->pf.key = 777;
    d->pf.shmid = 22;
    add_proc(&s, P(5), 1, 'T', 1000, "postgres: rptest postgres [local] SELECT");
    ctl_shm_t *m = add_shm(&s, 777, 22, 1, P(1), 500);
    ctl_pidlist_add(&m->mappers, P(5));
    ctl_diagnosis_t dg;

    /* failure 2: dead postmaster, a stopped backend still maps the segment */
    d->pm = CTL_PM_DEAD;
    ctl_pg_diagnose(&s, 0, &dg);
    assert_int_equal(dg.sev, CTL_SEV_CRITICAL);
    assert_true(dg.fixable);
    assert_int_equal(dg.strays.n, 1);
    assert_int_equal(dg.strays.pids[0], P(5));
    char want[128];
    snprintf(want, sizeof(want), "PID %d (postgres: rptest postgres [local] SELECT, T (stopped), parent 1)", P(5));
    assert_non_null(strstr(dg.sentence, want));
    assert_non_null(strstr(dg.sentence, "(key 777, ID 22) is still in use"));
    /* one sentence: its only period is the last character */
    assert_ptr_equal(strchr(dg.sentence, '.'), dg.sentence + strlen(dg.sentence) - 1);
    assert_non_null(strstr(dg.remedy, "--terminate-strays --fix"));
    ctl_pidlist_free(&dg.strays);

    /* a live postmaster: its backends are not strays */
    d->pm = CTL_PM_ALIVE;
    ctl_pg_diagnose(&s, 0, &dg);
    assert_int_equal(dg.sev, CTL_SEV_OK);
    assert_int_equal(dg.strays.n, 0);
    assert_non_null(strstr(dg.sentence, "The server is running"));
    ctl_pidlist_free(&dg.strays);

    d->pm = CTL_PM_STOPPED;
    d->pm_proc.state = 'T';
    ctl_pg_diagnose(&s, 0, &dg);
    assert_int_equal(dg.sev, CTL_SEV_CRITICAL);
    assert_non_null(strstr(dg.remedy, "kill -CONT"));
    ctl_pidlist_free(&dg.strays);

    /* the backend is gone: the segment is unattached, the server can start */
    ctl_pidlist_free(&s.shm[0].mappers);
    s.shm[0].nattch = 0;
    d->pm = CTL_PM_DEAD;
    ctl_pg_diagnose(&s, 0, &dg);
    assert_int_equal(dg.sev, CTL_SEV_WARNING);
    assert_true(dg.fixable);
    assert_non_null(strstr(dg.sentence, "unattached"));
    ctl_pidlist_free(&dg.strays);

    /* attached by processes this /proc does not show */
    s.shm[0].nattch = 2;
    ctl_pg_diagnose(&s, 0, &dg);
    assert_int_equal(dg.sev, CTL_SEV_CRITICAL);
    assert_non_null(strstr(dg.sentence, "does not show"));
    ctl_pidlist_free(&dg.strays);

    /* a PID reused by a program of the same user blocks the start; of another user it does not */
    s.shm[0].nattch = 0;
    s.nshm = 0;
    d->pm = CTL_PM_REUSED;
    d->pm_proc.uid = 1001;
    ctl_pg_diagnose(&s, 0, &dg);
    assert_int_equal(dg.sev, CTL_SEV_CRITICAL);
    assert_non_null(strstr(dg.sentence, "refuses to start"));
    assert_non_null(strstr(dg.remedy, "--fix"));
    ctl_pidlist_free(&dg.strays);
    d->pm_proc.uid = 0;
    ctl_pg_diagnose(&s, 0, &dg);
    assert_int_equal(dg.sev, CTL_SEV_OK);
    ctl_pidlist_free(&dg.strays);

    /* nothing at all */
    d->has_pidfile = false;
    d->pm = CTL_PM_NONE;
    ctl_pg_diagnose(&s, 0, &dg);
    assert_int_equal(dg.sev, CTL_SEV_OK);
    assert_non_null(strstr(dg.sentence, "not running"));
    ctl_pidlist_free(&dg.strays);
    s.nshm = 1;
    ctl_ipc_scan_free(&s);
}

static void test_scan_this_host(void **state)
{
    (void)state;
    ctl_ipc_scan_t s;
    assert_int_equal(ctl_ipc_scan(&s, NULL, 0), 0);
    assert_true(s.nprocs > 0);
    assert_non_null(ctl_ipc_find_proc(&s, getpid()));
    assert_true(s.shmmni > 0);
    assert_true(s.page_size >= 4096);
    ctl_ipc_scan_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pidfile_postgres15),
        cmocka_unit_test(test_pidfile_old_and_opengauss),
        cmocka_unit_test(test_pidfile_partial_and_bad),
        cmocka_unit_test(test_maps_lines),
        cmocka_unit_test(test_proc_stat),
        cmocka_unit_test(test_sysvipc_table),
        cmocka_unit_test(test_log_lines),
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_diagnose),
        cmocka_unit_test(test_scan_this_host),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
