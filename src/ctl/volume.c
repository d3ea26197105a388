/*
 * volume.c - `respoolctl volume init` and `respoolctl volume check`
 *
 * check is read-only and offline-safe: it opens the volume without repairing anything, verifies both
 * superblock copies, every slot's WAL header (and, for a slot that was not shut down cleanly, reads its
 * log to say how much recovery is pending), and the checksum, page number and header of every allocated
 * data page. Each problem is printed with where it is. Exit status: 0 clean, 1 only recoverable damage
 * (one superblock or WAL header copy), 2 damaged pages or no usable superblock, 3 could not check.
 */
#include "ctl/ctl.h"

#include "common/util.h"
#include "respool/error.h"
#include "respool/log.h"
#include "respool/volume.h"
#include "storage/space_int.h"
#include "storage/storage_int.h"
#include "wal/wal_int.h"

#include <cjson/cJSON.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void init_usage(FILE *out)
{
    fputs("usage: respoolctl volume init --volume PATH --size SIZE [options]\n"
          "\n"
          "Creates the layout of a shared volume on a regular file (created and preallocated) or a block\n"
          "device: two superblock copies, one WAL region per instance slot, the free-space map.\n"
          "\n"
          "  --volume PATH         file or block device\n"
          "  --size SIZE           total size, e.g. 8G (default for a block device: the whole device)\n"
          "  --page-size SIZE      4k, 8k (default) or 16k\n"
          "  --max-instances N     instance slots, 1..64 (default 16)\n"
          "  --wal-size SIZE       WAL region per instance, whole MiB, at least 8M (default 256M)\n"
          "  --label TEXT          free text stored in the superblock\n"
          "  --force               destroy an existing volume (never one that is in use)\n"
          "  --quiet               no progress output\n",
          out);
}

int ctl_volume_init(int argc, char **argv)
{
    static const struct option opts[] = {
        {"volume", required_argument, NULL, 'v'}, {"size", required_argument, NULL, 's'},
        {"page-size", required_argument, NULL, 'p'}, {"max-instances", required_argument, NULL, 'm'},
        {"wal-size", required_argument, NULL, 'w'}, {"label", required_argument, NULL, 'l'},
        {"force", no_argument, NULL, 'f'}, {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'}, {0},
    };
    rp_volume_init_opts_t o = {0};
    const char *path = NULL;
    uint64_t v;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'v':
            path = optarg;
            break;
        case 's':
            if (rp_parse_size(optarg, &o.size) != 0)
                return ctl_usage_error("Sizes look like 512M, 8G or 1T.", "invalid --size \"%s\"", optarg);
            break;
        case 'p':
            if (rp_parse_size(optarg, &v) != 0 || v > UINT32_MAX)
                return ctl_usage_error("Use 4k, 8k or 16k.", "invalid --page-size \"%s\"", optarg);
            o.page_size = (uint32_t)v;
            break;
        case 'm': {
            int64_t n;
            if (!rp_parse_i64(optarg, strlen(optarg), &n) || n < 1 || n > RP_VOLUME_MAX_INSTANCES)
                return ctl_usage_error("Give a number from 1 to 64.", "invalid --max-instances \"%s\"", optarg);
            o.max_instances = (uint32_t)n;
            break;
        }
        case 'w':
            if (rp_parse_size(optarg, &o.wal_size) != 0)
                return ctl_usage_error("Sizes look like 64M or 1G.", "invalid --wal-size \"%s\"", optarg);
            break;
        case 'l':
            o.label = optarg;
            break;
        case 'f':
            o.force = true;
            break;
        case 'q':
            o.quiet = true;
            break;
        case 'h':
            init_usage(stdout);
            return CTL_EXIT_OK;
        default:
            init_usage(stderr);
            return CTL_EXIT_USAGE;
        }
    }
    if (optind < argc)
        return ctl_usage_error("Run `respoolctl volume init --help`.", "unexpected argument \"%s\"", argv[optind]);
    if (!path)
        return ctl_usage_error("Pass --volume PATH.", "no volume given");
    rp_log_set_level(RP_LOG_INFO);
    int rc = rp_volume_init(path, &o);
    if (rc) {
        ctl_print_report();
        return rc == RP_EINVAL ? CTL_EXIT_USAGE : CTL_EXIT_FAILED;
    }
    rp_volume_t *vol;
    if (rp_volume_open(path, RP_VOLUME_RDONLY, &vol) != 0) {
        ctl_print_report();
        return CTL_EXIT_FAILED;
    }
    const rp_superblock_t *sb = rp_volume_sb(vol);
    char uuid[40], a[32], b[32], d[32];
    if (!o.quiet)
        printf("initialized volume %s: cluster %s, %s data (%" PRIu64 " pages of %s), %u instance slots with %s of "
               "WAL each\n",
               path, rp_uuid_format(sb->cluster_uuid, uuid), rp_format_size(sb->data_pages * sb->page_size, a, 32),
               sb->data_pages, rp_format_size(sb->page_size, d, 32), sb->max_instances,
               rp_format_size(sb->wal_size, b, 32));
    rp_volume_close(vol);
    return CTL_EXIT_OK;
}

/* ---- check ---------------------------------------------------------------------------------------- */

typedef struct check_ctx {
    bool json, quiet;
    cJSON *problems;
    int worst;             /* CTL_EXIT_* */
    uint64_t pages_checked, pages_new, pages_bad;
} check_ctx_t;

static void problem(check_ctx_t *cx, int severity, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void problem(check_ctx_t *cx, int severity, const char *where, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (severity > cx->worst)
        cx->worst = severity;
    if (cx->json) {
        cJSON *p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, "severity", severity >= CTL_EXIT_CRITICAL ? "error" : "warning");
        cJSON_AddStringToObject(p, "where", where);
        cJSON_AddStringToObject(p, "problem", text);
        cJSON_AddItemToArray(cx->problems, p);
    } else {
        printf("%s: %s: %s\n", severity >= CTL_EXIT_CRITICAL ? "ERROR" : "WARNING", where, text);
    }
}

static void check_superblocks(rp_volume_t *v, check_ctx_t *cx)
{
    unsigned char *block = rp_storage_alloc_aligned(RP_SB_SIZE);
    for (int c = 0; c < 2; c++) {
        uint64_t off = c ? RP_SB_COPY1_OFFSET : RP_SB_COPY0_OFFSET;
        char where[64];
        snprintf(where, sizeof(where), "superblock copy %d (offset %" PRIu64 ")", c, off);
        rp_superblock_t sb;
        int rc = rp_storage_pread(v, v->data_fd, block, RP_SB_SIZE, off);
        if (rc == 0)
            rc = rp_superblock_decode(block, &sb);
        if (rc) {
            const rp_report_t *r = rp_last_error();
            problem(cx, CTL_EXIT_WARNING, where, "%s. %s%sThe other copy is valid and in use; an instance start "
                    "rewrites this one.", r->message, r->detail, r->detail[0] ? " " : "");
        } else if (sb.generation != v->sb.generation) {
            problem(cx, CTL_EXIT_WARNING, where, "generation %" PRIu64 " is older than %" PRIu64
                    " (an update was interrupted); an instance start rewrites it", sb.generation, v->sb.generation);
        }
    }
    free(block);
}

static void check_wal(rp_volume_t *v, check_ctx_t *cx, cJSON *slots)
{
    const rp_superblock_t *sb = &v->sb;
    for (uint32_t s = 0; s < sb->max_instances; s++) {
        char where[64];
        snprintf(where, sizeof(where), "WAL header of slot %u", s);
        rp_wal_header_t h;
        int bad_copy = -1;
        int rc = rp_wal_read_header(v, (int)s, &h, &bad_copy);
        bool running = rp_volume_slot_busy(v, (int)s);
        cJSON *js = cx->json ? cJSON_CreateObject() : NULL;
        if (js) {
            cJSON_AddNumberToObject(js, "slot", s);
            cJSON_AddBoolToObject(js, "running", running);
        }
        if (rc == RP_ENOENT) {
            if (sb->slots[s].state == RP_SLOT_IN_USE && !running)
                problem(cx, CTL_EXIT_WARNING, where, "slot is marked in use but its log was never started");
            if (js)
                cJSON_AddStringToObject(js, "log", "empty");
        } else if (rc) {
            const rp_report_t *r = rp_last_error();
            problem(cx, CTL_EXIT_CRITICAL, where, "%s. %s", r->message, r->detail);
            if (js)
                cJSON_AddStringToObject(js, "log", "damaged");
        } else {
            if (bad_copy >= 0)
                problem(cx, CTL_EXIT_WARNING, where, "copy %c is damaged; copy %c is valid and in use",
                        bad_copy ? 'B' : 'A', bad_copy ? 'A' : 'B');
            const char *state = h.state == RP_WAL_STATE_CLEAN ? "clean" : running ? "running" : "needs recovery";
            uint64_t pending = 0, records = 0;
            const char *end_reason = "";
            bool torn = false;
            if (h.state == RP_WAL_STATE_RUNNING && !running) {
                rp_wal_reader_t *r;
                if (rp_wal_reader_open(v, (int)s, h.redo_pos, h.incarnation, &r) == 0) {
                    const rp_wal_record_t *rec;
                    while (rp_wal_reader_next(r, &rec) == 0)
                        records++;
                    pending = rp_wal_reader_pos(r) - h.redo_pos;
                    torn = rp_wal_reader_end_kind(r) == RP_WAL_END_TORN;
                    static char reason[256];
                    snprintf(reason, sizeof(reason), "%s", rp_wal_reader_end_reason(r));
                    end_reason = reason;
                    rp_wal_reader_close(r);
                }
            }
            if (js) {
                cJSON_AddStringToObject(js, "log", state);
                cJSON_AddNumberToObject(js, "incarnation", h.incarnation);
                cJSON_AddNumberToObject(js, "checkpoints", (double)h.checkpoints);
                cJSON_AddNumberToObject(js, "redo_pos", (double)h.redo_pos);
                cJSON_AddNumberToObject(js, "recovery_records", (double)records);
                cJSON_AddNumberToObject(js, "recovery_bytes", (double)pending);
                cJSON_AddBoolToObject(js, "torn_tail", torn);
            } else if (!cx->quiet) {
                printf("slot %u: log %s, start %u, %" PRIu64 " checkpoints", s, state, h.incarnation, h.checkpoints);
                if (h.state == RP_WAL_STATE_RUNNING && !running)
                    printf(", %" PRIu64 " records (%" PRIu64 " bytes) to replay at the next start; the log ends "
                           "because %s%s", records, pending, end_reason, torn ? " (a torn last write: expected after a crash)" : "");
                printf("\n");
            }
        }
        if (js)
            cJSON_AddItemToArray(slots, js);
    }
}

static void check_pages(rp_volume_t *v, check_ctx_t *cx)
{
    const rp_superblock_t *sb = &v->sb;
    uint32_t ps = sb->page_size;
    const uint32_t chunk = (uint32_t)RP_MAX(1, (4 * RP_MiB) / ps);
    unsigned char *buf = rp_storage_alloc_aligned((size_t)chunk * ps);
    unsigned char *map = rp_storage_alloc_aligned(ps);
    uint64_t bits = rp_space_bits_per_page(ps);
    rp_progress_t prog;
    rp_progress_start(&prog, "checking pages", sb->data_pages * ps, cx->quiet || cx->json);
    rp_page_id_t map_loaded = RP_PAGE_INVALID;
    bool map_ok = false;
    for (rp_page_id_t first = 0; first < sb->data_pages; first += chunk) {
        uint32_t n = (uint32_t)RP_MIN((uint64_t)chunk, sb->data_pages - first);
        if (rp_volume_read_pages_raw(v, first, n, buf) != 0) {
            const rp_report_t *r = rp_last_error();
            problem(cx, CTL_EXIT_CRITICAL, "data pages", "%s", r->message);
            break;
        }
        for (uint32_t i = 0; i < n; i++) {
            rp_page_id_t id = first + i;
            unsigned char *page = buf + (size_t)i * ps;
            rp_page_id_t m = id / bits;
            if (m != map_loaded) {
                /* the bitmap page covering id: a bad bitmap page means every page it covers is checked */
                map_loaded = m;
                map_ok = rp_volume_read_page(v, m, map) == 0 && rp_page_type(map) == RP_PAGE_SPACE_MAP;
            }
            bool allocated = id <= sb->root_page || !map_ok || rp_space_page_get(map, id % bits);
            if (!allocated)
                continue;
            cx->pages_checked++;
            rp_page_verdict_t verdict = rp_page_verify(page, ps, id);
            if (verdict == RP_PAGE_OK_NEW) {
                cx->pages_new++;
                continue;
            }
            if (verdict == RP_PAGE_OK)
                continue;
            cx->pages_bad++;
            rp_storage_report_bad_page(v, id, page, verdict);
            const rp_report_t *r = rp_last_error();
            char where[64];
            snprintf(where, sizeof(where), "page %" PRIu64, id);
            problem(cx, CTL_EXIT_CRITICAL, where, "%s. %s", r->message, r->detail);
        }
        rp_progress_update(&prog, (first + n) * ps);
    }
    rp_progress_finish(&prog);
    free(buf);
    free(map);
}

static void check_usage(FILE *out)
{
    fputs("usage: respoolctl volume check --volume PATH [--json] [--quiet]\n"
          "\n"
          "Verifies both superblock copies, every slot's WAL header (and how much recovery a slot has\n"
          "pending), and the checksum, number and header of every allocated data page. Changes nothing.\n"
          "Exit status: 0 clean, 1 recoverable damage only, 2 damaged pages or metadata, 3 could not check.\n",
          out);
}

int ctl_volume_check(int argc, char **argv)
{
    static const struct option opts[] = {
        {"volume", required_argument, NULL, 'v'}, {"json", no_argument, NULL, 'j'},
        {"quiet", no_argument, NULL, 'q'}, {"help", no_argument, NULL, 'h'}, {0},
    };
    check_ctx_t cx = {0};
    const char *path = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'v':
            path = optarg;
            break;
        case 'j':
            cx.json = true;
            break;
        case 'q':
            cx.quiet = true;
            break;
        case 'h':
            check_usage(stdout);
            return CTL_EXIT_OK;
        default:
            check_usage(stderr);
            return CTL_EXIT_USAGE;
        }
    }
    if (!path)
        return ctl_usage_error("Pass --volume PATH.", "no volume given");
    rp_log_set_level(RP_LOG_ERROR);
    rp_volume_t *v;
    int rc = rp_volume_open(path, RP_VOLUME_RDONLY | RP_VOLUME_NO_REPAIR, &v);
    if (rc) {
        ctl_print_report();
        return rc == RP_ECORRUPT ? CTL_EXIT_CRITICAL : CTL_EXIT_FAILED;
    }
    cJSON *root = NULL, *slots = NULL;
    if (cx.json) {
        root = cJSON_CreateObject();
        cx.problems = cJSON_CreateArray();
        slots = cJSON_CreateArray();
    }
    const rp_superblock_t *sb = &v->sb;
    char uuid[40], a[32];
    if (!cx.json && !cx.quiet)
        printf("volume %s: cluster %s, format %u, %" PRIu64 " pages of %u bytes (%s), %u slots, superblock "
               "generation %" PRIu64 "\n",
               path, rp_uuid_format(sb->cluster_uuid, uuid), sb->format_version, sb->data_pages, sb->page_size,
               rp_format_size(sb->data_pages * sb->page_size, a, 32), sb->max_instances, sb->generation);
    for (uint32_t s = 0; s < sb->max_instances; s++)
        if (rp_volume_slot_busy(v, (int)s))
            problem(&cx, CTL_EXIT_WARNING, "volume", "instance slot %u is running: pages it is writing right now "
                    "may be reported as damaged; check a stopped volume for a definite answer", s);
    check_superblocks(v, &cx);
    check_wal(v, &cx, slots);
    check_pages(v, &cx);
    if (cx.json) {
        cJSON_AddStringToObject(root, "volume", path);
        cJSON_AddStringToObject(root, "cluster_uuid", uuid);
        cJSON_AddNumberToObject(root, "page_size", sb->page_size);
        cJSON_AddNumberToObject(root, "data_pages", (double)sb->data_pages);
        cJSON_AddNumberToObject(root, "data_offset", (double)sb->data_offset);
        cJSON_AddNumberToObject(root, "space_pages", (double)sb->space_pages);
        cJSON_AddNumberToObject(root, "root_page", (double)sb->root_page);
        cJSON_AddNumberToObject(root, "wal_offset", (double)sb->wal_offset);
        cJSON_AddNumberToObject(root, "wal_size", (double)sb->wal_size);
        cJSON_AddNumberToObject(root, "wal_ring_offset", RP_WAL_RING_OFFSET);
        cJSON_AddNumberToObject(root, "pages_checked", (double)cx.pages_checked);
        cJSON_AddNumberToObject(root, "pages_never_written", (double)cx.pages_new);
        cJSON_AddNumberToObject(root, "pages_damaged", (double)cx.pages_bad);
        cJSON_AddItemToObject(root, "slots", slots);
        cJSON_AddItemToObject(root, "problems", cx.problems);
        cJSON_AddStringToObject(root, "verdict", cx.worst == 0 ? "clean" : cx.worst == 1 ? "warnings" : "damaged");
        char *text = cJSON_Print(root);
        puts(text);
        free(text);
        cJSON_Delete(root);
    } else {
        printf("%" PRIu64 " allocated pages checked (%" PRIu64 " never written), %" PRIu64 " damaged: %s\n",
               cx.pages_checked, cx.pages_new, cx.pages_bad,
               cx.worst == 0 ? "volume is clean" : cx.worst == 1 ? "volume is usable, see warnings" : "volume is damaged");
    }
    rp_volume_close(v);
    return cx.worst;
}
