/*
 * fusion-latency.c - what one page acquisition costs between instances: the latency half of
 * bench/fusion.sh
 *
 *   fusion-latency -c CLUSTER_CONF [-n ITERATIONS] [-w WARMUP] [-v]
 *
 * Opens the first three members of CLUSTER_CONF (written by `respoolctl cluster init --instances 3`) in
 * this one process, one thread each, because rp_instance_open() waits until every member is reachable.
 * They share nothing but the process: each has its own data directory, volume slot, buffer pool, WAL,
 * transport and share of the directory, and they talk over loopback TCP exactly as three respoold
 * processes would. One driver thread then allocates pages and times rp_mtr_get() — the engine's way in,
 * everything an acquisition costs included (pin, latch, directory, messages, install) — for:
 *
 *   s-2way    R reads in S a page its master M holds in X (M is the owner): R -> M, M's worker ships it.
 *             Reset before each: M takes X again, which invalidates R's copy (not timed).
 *   s-3way    the same with the owner O neither R nor the master: R -> M -> O -> R. Reset: O takes X.
 *   x-clean   two members that are not the master take X in turn (R -> M -> O -> R, O drops its copy);
 *             nobody changes the page. Every acquisition is timed.
 *   x-dirty   the same, but each holder changes the page (a logged full image) and waits until its WAL
 *             record is durable, as a write acknowledged to a client does, before the other asks: the
 *             owner writes the page to the volume before it ships it.
 *   local     a member holding the page in X takes it in S again: the global mode is held, no message.
 *
 * Each kind uses three pages, one mastered by each member, in turn, so every instance plays every role.
 * Each kind also reports, per timed acquisition, what cache fusion's own counters (rp_dcs_get_stats,
 * summed over the three members, counted only inside the timed calls) say happened, so the table shows
 * that a kind measured what it claims:
 *   waits     acquisitions that waited for a message
 *   shipped   pages shipped by their owner on the master's word (INFO's fusion_remote_3way: it counts
 *             the shape of the grant, so s-2way, where the master is the owner, counts here too)
 *   granted   grants from a remote master without a shipped page (fusion_remote_2way)
 *   xfer      pages received in X from another member
 *   dirty     dirty pages written to the volume before they moved
 *
 * Output: a header of '#' lines, then one line per kind:
 *   name p50_us p99_us mean_us n waits=W shipped=S granted=G xfer=X dirty=D
 * Built by CMake into <build>/bench/fusion-latency (bench/CMakeLists.txt).
 */
#include "common/util.h"
#include "dcs/dcs.h"
#include "drc/drc.h"
#include "instance/instance_int.h"
#include "respool/cluster.h"
#include "respool/error.h"
#include "respool/instance.h"
#include "respool/log.h"
#include "respool/mtr.h"
#include "respool/space.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MEMBERS 3
#define BENCH_PAGE_TYPE (RP_PAGE_ENGINE_MIN + 0x42) /* any engine type: only this program reads them */

static rp_instance_t *inst[MEMBERS];
static uint32_t page_size;

/* ---- small helpers ------------------------------------------------------------------------------- */

static void die_report(const char *what)
{
    rp_error_context("%s", what);
    rp_log_report(RP_LOG_ERROR, "fusion-latency");
    exit(1);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int master_of(rp_page_id_t id)
{
    return drc_map_master(&inst[0]->map, drc_res_page(id)); /* every member has the same map */
}

/* The counters a kind reports, summed over the members. */
typedef struct counters {
    uint64_t waits, shipped, granted, xfer, dirty;
} counters_t;

static void read_counters(counters_t *c)
{
    memset(c, 0, sizeof(*c));
    for (int i = 0; i < MEMBERS; i++) {
        rp_cluster_stats_t st = {0};
        rp_dcs_get_stats(inst[i]->dcs, &st); /* the cache-fusion counters only: cheap, between timed calls */
        c->waits += st.waits;
        c->shipped += st.remote_3way;
        c->granted += st.remote_2way;
        c->xfer += st.x_transfers;
        c->dirty += st.dirty_writes;
    }
}

static void add_delta(counters_t *sum, const counters_t *a, const counters_t *b)
{
    sum->waits += b->waits - a->waits;
    sum->shipped += b->shipped - a->shipped;
    sum->granted += b->granted - a->granted;
    sum->xfer += b->xfer - a->xfer;
    sum->dirty += b->dirty - a->dirty;
}

/* ---- one acquisition ---------------------------------------------------------------------------- */

/*
 * Member `who` takes page id in mode inside a mini-transaction and returns the nanoseconds rp_mtr_get()
 * took. change: X only — change the page and wait until the change is durable (after the timing).
 */
static uint64_t acquire(int who, rp_page_id_t id, rp_latch_mode_t mode, bool change)
{
    rp_mtr_t m;
    if (mode == RP_LATCH_S)
        rp_mtr_begin_read(&m, inst[who]);
    else if (rp_mtr_begin(&m, inst[who], 0, 1) != 0)
        die_report("could not begin a mini-transaction");
    unsigned char *page;
    uint64_t t0 = rp_now_ns();
    int rc = rp_mtr_get(&m, id, mode, &page);
    uint64_t ns = rp_now_ns() - t0;
    if (rc != 0) {
        rp_error_context("member %d could not take page %" PRIu64 " in %s", who, id, mode == RP_LATCH_X ? "X" : "S");
        rp_log_report(RP_LOG_ERROR, "fusion-latency");
        exit(1);
    }
    if (change) {
        uint64_t v;
        memcpy(&v, page + RP_PAGE_HEADER_SIZE, sizeof(v));
        v++;
        memcpy(page + RP_PAGE_HEADER_SIZE, &v, sizeof(v));
        rp_mtr_log_image(&m, page); /* RP_RMGR_PAGE redoes whole images only */
    }
    rp_mtr_commit(&m);
    if (change)
        rp_instance_wait_durable(inst[who], m.end);
    return ns;
}

/* ---- the kinds ---------------------------------------------------------------------------------- */

typedef enum kind_id { K_S2WAY, K_S3WAY, K_XCLEAN, K_XDIRTY, K_LOCAL, NKINDS } kind_id_t;

static const char *const kind_names[NKINDS] = {"s-2way", "s-3way", "x-clean", "x-dirty", "local"};

/* pages[k][m]: the page kind k uses when member m is its master */
static rp_page_id_t pages[NKINDS][MEMBERS];

/*
 * Iteration i of a kind uses the page mastered by member i % 3 (so every member plays every role in
 * turn); j = i / 3 counts that page's own turns. a and b are the two members that are not the master.
 */
typedef struct roles {
    rp_page_id_t id;
    int master, a, b;
    uint64_t j;
} roles_t;

static roles_t roles_of(kind_id_t k, uint64_t i)
{
    int master = (int)(i % MEMBERS);
    return (roles_t){pages[k][master], master, (master + 1) % MEMBERS, (master + 2) % MEMBERS, i / MEMBERS};
}

/* What happens before iteration i's timed acquisition (not timed). */
static void reset(kind_id_t k, uint64_t i)
{
    roles_t r = roles_of(k, i);
    switch (k) {
    case K_S2WAY:
        acquire(r.master, r.id, RP_LATCH_X, false); /* the master owns it again; the reader's copy goes */
        break;
    case K_S3WAY:
        acquire(r.a, r.id, RP_LATCH_X, false);      /* a third member owns it again */
        break;
    case K_LOCAL:
        if (r.j == 0)
            acquire(r.a, r.id, RP_LATCH_X, false);  /* once: a holds it in X from then on */
        break;
    default:
        break;                                      /* X kinds: the previous holder is the reset */
    }
}

/* Iteration i's timed acquisition: its nanoseconds. */
static uint64_t timed(kind_id_t k, uint64_t i)
{
    roles_t r = roles_of(k, i);
    switch (k) {
    case K_S2WAY:
        return acquire(r.a, r.id, RP_LATCH_S, false);
    case K_S3WAY:
        return acquire(r.b, r.id, RP_LATCH_S, false);
    case K_XCLEAN:
    case K_XDIRTY:
        return acquire(r.j % 2 ? r.a : r.b, r.id, RP_LATCH_X, k == K_XDIRTY);
    case K_LOCAL:
        return acquire(r.a, r.id, RP_LATCH_S, false);
    default:
        abort();
    }
}

static void run_kind(kind_id_t k, int n, int warmup, uint64_t *ns)
{
    /* The warm-up also moves each page from the member that allocated it into this kind's roles. */
    for (int i = 0; i < warmup; i++) {
        reset(k, (uint64_t)i);
        timed(k, (uint64_t)i);
    }
    counters_t sum = {0}, before, after;
    for (int i = 0; i < n; i++) {
        uint64_t it = (uint64_t)(warmup + i);
        reset(k, it);
        /* Counted around the timed call only: a reset's messages are not the kind's. The owner's side
         * (dirty) is counted before it ships the page, so it lands inside the call too. */
        read_counters(&before);
        ns[i] = timed(k, it);
        read_counters(&after);
        add_delta(&sum, &before, &after);
    }

    qsort(ns, (size_t)n, sizeof(*ns), cmp_u64);
    double total = 0;
    for (int i = 0; i < n; i++)
        total += (double)ns[i];
    printf("%-8s %8.2f %8.2f %8.2f %d waits=%.2f shipped=%.2f granted=%.2f xfer=%.2f dirty=%.2f\n", kind_names[k],
           (double)ns[n / 2] / 1000.0, (double)ns[(size_t)n * 99 / 100] / 1000.0, total / n / 1000.0, n,
           (double)sum.waits / n, (double)sum.shipped / n, (double)sum.granted / n, (double)sum.xfer / n,
           (double)sum.dirty / n);
    fflush(stdout);
}

/* ---- set-up ------------------------------------------------------------------------------------- */

/* Member 0 allocates pages (in batches, each one mini-transaction) until every kind has a page mastered
 * by each member. The directory spreads pages over masters by hash, so a few dozen are enough. */
static void allocate_pages(void)
{
    int filled[MEMBERS] = {0}, need = MEMBERS * NKINDS, have = 0;
    for (int batch = 0; have < need; batch++) {
        if (batch == 64) {
            fprintf(stderr, "fusion-latency: 1024 pages did not give every member %d pages to master\n", NKINDS);
            exit(1);
        }
        rp_mtr_t m;
        if (rp_mtr_begin(&m, inst[0], 0, 17) != 0)
            die_report("could not begin the allocating mini-transaction");
        for (int i = 0; i < 16; i++) {
            rp_page_id_t id;
            unsigned char *page;
            if (rp_space_alloc(&m, &id) != 0 || rp_mtr_get_new(&m, id, &page) != 0)
                die_report("could not allocate a page");
            rp_page_init(page, page_size, id, BENCH_PAGE_TYPE);
            int master = master_of(id);
            if (filled[master] < NKINDS) {
                pages[filled[master]++][master] = id;
                have++;
            }
        }
        rp_mtr_commit(&m);
        rp_instance_wait_durable(inst[0], m.end);
    }
}

typedef struct opener {
    rp_instance_config_t cfg;
    rp_conf_table_t table;
    int index, rc;
    pthread_t thread;
} opener_t;

static void *open_main(void *arg)
{
    opener_t *o = arg;
    o->rc = rp_instance_open(&o->cfg, &inst[o->index]);
    if (o->rc != 0) {
        rp_error_context("could not open instance %d", (int)o->cfg.instance);
        rp_log_report(RP_LOG_ERROR, "fusion-latency");
    }
    return NULL;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: fusion-latency -c CLUSTER_CONF [-n ITERATIONS] [-w WARMUP] [-v]\n"
                 "  -c FILE   a cluster of at least 3 members (respoolctl cluster init); its first three are opened\n"
                 "            here, in this process, and must not be running elsewhere\n"
                 "  -n N      timed acquisitions per kind (default 2000)\n"
                 "  -w N      untimed ones before them (default 200, at least 6)\n"
                 "  -v        the instances' log lines from INFO up (default: warnings)\n");
}

int main(int argc, char **argv)
{
    const char *conf = NULL;
    int n = 2000, warmup = 200, opt;
    bool verbose = false;
    while ((opt = getopt(argc, argv, "c:n:w:vh")) != -1) {
        switch (opt) {
        case 'c': conf = optarg; break;
        case 'n': n = atoi(optarg); break;
        case 'w': warmup = atoi(optarg); break;
        case 'v': verbose = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!conf || n < 1 || warmup < 6 || optind != argc) {
        usage(stderr);
        return 2;
    }
    /* Quiet while the members start: each one dials the others before they listen, and says so. */
    rp_log_set_level(verbose ? RP_LOG_INFO : RP_LOG_ERROR);

    rp_cluster_config_t *cl = rp_xmalloc(sizeof(*cl)); /* ~290 KB: not on the stack */
    if (rp_cluster_config_load(conf, cl) != 0)
        die_report("could not load the cluster configuration");
    if (cl->nmembers < MEMBERS) {
        fprintf(stderr, "fusion-latency: %s has %d members; it needs %d\n", conf, cl->nmembers, MEMBERS);
        return 2;
    }

    /* In parallel: each open waits until every other member is reachable. */
    opener_t op[MEMBERS];
    for (int i = 0; i < MEMBERS; i++) {
        const rp_cluster_member_t *mb = &cl->members[i];
        char id[16];
        snprintf(id, sizeof(id), "%d", mb->id);
        memset(&op[i], 0, sizeof(op[i]));
        op[i].index = i;
        op[i].table = (rp_conf_table_t){rp_instance_conf_defs, &op[i].cfg};
        /* huge pages off: three pools in one process, and nothing here depends on TLB reach */
        if (rp_conf_defaults(&op[i].table, 1) != 0 ||
            rp_conf_set(&op[i].table, 1, "data-dir", mb->data_dir, "fusion-latency") != 0 ||
            rp_conf_set(&op[i].table, 1, "volume", cl->volume, "fusion-latency") != 0 ||
            rp_conf_set(&op[i].table, 1, "instance", id, "fusion-latency") != 0 ||
            rp_conf_set(&op[i].table, 1, "huge-pages", "off", "fusion-latency") != 0 ||
            rp_conf_set(&op[i].table, 1, "buffer-pool-size", "64M", "fusion-latency") != 0)
            die_report("could not configure an instance");
        op[i].cfg.cluster = cl;
        if (pthread_create(&op[i].thread, NULL, open_main, &op[i]) != 0) {
            perror("fusion-latency: pthread_create");
            return 1;
        }
    }
    int failed = 0;
    for (int i = 0; i < MEMBERS; i++) {
        pthread_join(op[i].thread, NULL);
        failed |= op[i].rc != 0;
    }
    if (failed)
        return 1; /* the process exit releases whatever did open */
    rp_log_set_level(verbose ? RP_LOG_INFO : RP_LOG_WARNING);
    page_size = rp_volume_page_size(rp_instance_volume(inst[0]));

    allocate_pages();
    uint64_t *ns = rp_xmalloc((size_t)n * sizeof(*ns));
    printf("# cache fusion: rp_mtr_get() between %d instances in one process, over loopback TCP; %d timed per kind "
           "after %d warm-up; %u-byte pages\n", MEMBERS, n, warmup, page_size);
    printf("# name     p50_us   p99_us  mean_us n, then per timed acquisition: waits shipped granted xfer dirty\n");
    fflush(stdout);
    for (int k = 0; k < NKINDS; k++)
        run_kind((kind_id_t)k, n, warmup, ns);
    free(ns);

    /* Closing one member drops its links: the others would log the lost connections. */
    rp_log_set_level(RP_LOG_ERROR);
    for (int i = 0; i < MEMBERS; i++) {
        rp_instance_close(inst[i]);
        rp_conf_free(&op[i].table, 1);
    }
    explicit_bzero(cl->secret, sizeof(cl->secret));
    free(cl);
    return 0;
}
