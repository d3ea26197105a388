/*
 * test_storage.c - volume layout, superblock copies and failover, page checksums, slot interlock
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "respool/error.h"
#include "respool/log.h"
#include "respool/volume.h"
#include "storage/space_int.h"
#include "testutil.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void test_plan_validates_every_option(void **state)
{
    (void)state;
    rp_superblock_t sb;
    rp_volume_init_opts_t o = {.size = 1ULL << 30, .wal_size = 16 << 20, .max_instances = 4};
    assert_int_equal(rp_volume_plan(&o, 0, &sb), 0);
    assert_int_equal(sb.page_size, 8192);
    assert_int_equal(sb.wal_offset, RP_VOLUME_HEADER_SIZE);
    assert_int_equal(sb.data_offset, RP_VOLUME_HEADER_SIZE + 4 * (16 << 20));
    assert_int_equal(sb.data_pages, ((1ULL << 30) - sb.data_offset) / 8192);
    assert_int_equal(sb.space_pages, 2); /* 122752 pages, 65280 bits per bitmap page */
    assert_int_equal(sb.root_page, 2);

    rp_volume_init_opts_t bad = o;
    bad.page_size = 6000;
    assert_int_equal(rp_volume_plan(&bad, 0, &sb), RP_EINVAL);
    assert_non_null(strstr(rp_last_error()->message, "page size"));
    bad = o;
    bad.wal_size = 3 << 20;
    assert_int_equal(rp_volume_plan(&bad, 0, &sb), RP_EINVAL);
    bad = o;
    bad.max_instances = 65;
    assert_int_equal(rp_volume_plan(&bad, 0, &sb), RP_EINVAL);
    bad = o;
    bad.size = 32 << 20; /* four 16 MiB WAL regions do not fit */
    assert_int_equal(rp_volume_plan(&bad, 0, &sb), RP_EINVAL);
    assert_non_null(strstr(rp_last_error()->hint, "at least"));
    bad = o;
    bad.size = 0;
    assert_int_equal(rp_volume_plan(&bad, 0, &sb), RP_EINVAL);
    /* a block device of 512 MiB: --size larger than it is refused */
    assert_int_equal(rp_volume_plan(&o, 512 << 20, &sb), RP_EINVAL);
}

static void test_superblock_roundtrip_and_corruption(void **state)
{
    (void)state;
    rp_superblock_t sb, back;
    rp_volume_init_opts_t o = {.size = 1ULL << 30, .wal_size = 16 << 20, .max_instances = 4, .label = "t"};
    assert_int_equal(rp_volume_plan(&o, 0, &sb), 0);
    sb.generation = 7;
    sb.slots[2].state = RP_SLOT_IN_USE;
    strcpy(sb.slots[2].name, "host-a");
    unsigned char block[RP_SB_SIZE];
    rp_superblock_encode(&sb, block);
    assert_int_equal(rp_superblock_decode(block, &back), 0);
    assert_int_equal(back.generation, 7);
    assert_int_equal(back.data_pages, sb.data_pages);
    assert_string_equal(back.slots[2].name, "host-a");
    assert_string_equal(back.label, "t");

    for (int i = 0; i < RP_SB_SIZE; i += 97) {
        unsigned char copy[RP_SB_SIZE];
        memcpy(copy, block, sizeof(copy));
        copy[i] ^= 0x40;
        assert_int_not_equal(rp_superblock_decode(copy, &back), 0);
    }
    /* a valid checksum over an impossible layout is still refused */
    sb.data_offset += 8192;
    rp_superblock_encode(&sb, block);
    assert_int_equal(rp_superblock_decode(block, &back), RP_ECORRUPT);
    assert_non_null(strstr(rp_last_error()->message, "impossible layout"));
}

static void test_init_refuses_existing_volume_without_force(void **state)
{
    (void)state;
    rp_test_env_t env;
    rp_test_env_create(&env, 64 << 20, 8 << 20, 2);
    rp_volume_init_opts_t o = {.size = 64 << 20, .wal_size = 8 << 20, .max_instances = 2, .quiet = true};
    assert_int_equal(rp_volume_init(env.volume, &o), RP_EEXIST);
    assert_non_null(strstr(rp_last_error()->hint, "--force"));
    o.force = true;
    assert_int_equal(rp_volume_init(env.volume, &o), 0);
    /* not while it is in use */
    rp_volume_t *v;
    assert_int_equal(rp_volume_open(env.volume, 0, &v), 0);
    assert_int_equal(rp_volume_claim_slot(v, 0), 0);
    assert_int_equal(rp_volume_init(env.volume, &o), RP_EBUSY);
    assert_non_null(strstr(rp_last_error()->message, "in use"));
    rp_volume_close(v);
    rp_test_env_destroy(&env);
}

static void test_superblock_failover_and_repair(void **state)
{
    (void)state;
    rp_test_env_t env;
    rp_test_env_create(&env, 64 << 20, 8 << 20, 2);
    rp_volume_t *v;
    unsigned char block[RP_SB_SIZE];
    rp_superblock_t sb;

    /* damage copy 0: open uses copy 1 and rewrites copy 0 */
    rp_test_damage(env.volume, RP_SB_COPY0_OFFSET + 100, 16, 0xab);
    rp_test_read(env.volume, RP_SB_COPY0_OFFSET, block, sizeof(block));
    assert_int_not_equal(rp_superblock_decode(block, &sb), 0);
    assert_int_equal(rp_volume_open(env.volume, 0, &v), 0);
    assert_int_equal(rp_volume_sb(v)->generation, 1);
    rp_volume_close(v);
    rp_test_read(env.volume, RP_SB_COPY0_OFFSET, block, sizeof(block));
    assert_int_equal(rp_superblock_decode(block, &sb), 0);

    /* damage copy 1 and open read-only: used, but not repaired */
    rp_test_damage(env.volume, RP_SB_COPY1_OFFSET + 8, 4, 0x00);
    assert_int_equal(rp_volume_open(env.volume, RP_VOLUME_RDONLY, &v), 0);
    rp_volume_close(v);
    rp_test_read(env.volume, RP_SB_COPY1_OFFSET, block, sizeof(block));
    assert_int_not_equal(rp_superblock_decode(block, &sb), 0);

    /* an interrupted update: copy 0 newer than copy 1 -> the newer one wins */
    assert_int_equal(rp_volume_open(env.volume, 0, &v), 0); /* repairs copy 1 */
    assert_int_equal(rp_volume_claim_slot(v, 1), 0);        /* generation 2 on both copies */
    assert_int_equal(rp_volume_sb(v)->generation, 2);
    rp_volume_close(v);
    rp_test_read(env.volume, RP_SB_COPY0_OFFSET, block, sizeof(block));
    assert_int_equal(rp_superblock_decode(block, &sb), 0);
    sb.generation = 3;
    sb.label[0] = 'Z';
    rp_superblock_encode(&sb, block);
    int fd = open(env.volume, O_WRONLY);
    assert_int_equal(pwrite(fd, block, sizeof(block), RP_SB_COPY0_OFFSET), (ssize_t)sizeof(block));
    close(fd);
    assert_int_equal(rp_volume_open(env.volume, RP_VOLUME_NO_REPAIR, &v), 0);
    assert_int_equal(rp_volume_sb(v)->generation, 3);
    assert_int_equal(rp_volume_sb(v)->label[0], 'Z');
    assert_int_equal(rp_volume_sb(v)->slots[1].state, RP_SLOT_IN_USE);
    rp_volume_close(v);

    /* both damaged: refused, and the report names both copies */
    rp_test_damage(env.volume, RP_SB_COPY0_OFFSET + 50, 8, 0x11);
    rp_test_damage(env.volume, RP_SB_COPY1_OFFSET + 50, 8, 0x11);
    assert_int_equal(rp_volume_open(env.volume, 0, &v), RP_ECORRUPT);
    assert_non_null(strstr(rp_last_error()->message, "no valid superblock"));
    assert_non_null(strstr(rp_last_error()->detail, "Copy 1 (offset 65536)"));
    rp_test_env_destroy(&env);
}

static void test_page_checksum_errors_name_the_location(void **state)
{
    (void)state;
    rp_test_env_t env;
    rp_test_env_create(&env, 64 << 20, 8 << 20, 2);
    rp_volume_t *v;
    assert_int_equal(rp_volume_open(env.volume, 0, &v), 0);
    const rp_superblock_t *sb = rp_volume_sb(v);
    unsigned char *page = aligned_alloc(RP_IO_ALIGN, sb->page_size);
    rp_page_init(page, sb->page_size, 10, RP_PAGE_ENGINE_MIN);
    memset(page + 100, 0x5a, 1000);
    assert_int_equal(rp_volume_write_page(v, 10, page), 0);
    memset(page, 0, sb->page_size);
    assert_int_equal(rp_volume_read_page(v, 10, page), 0);
    assert_int_equal(page[500], 0x5a);

    /* flip one byte on the volume */
    uint64_t off = rp_volume_page_offset(sb, 10);
    rp_test_damage(env.volume, off + 700, 1, 0x00);
    assert_int_equal(rp_volume_read_page(v, 10, page), RP_ECORRUPT);
    const rp_report_t *r = rp_last_error();
    assert_non_null(strstr(r->message, "page 10"));
    assert_non_null(strstr(r->message, env.volume));
    assert_non_null(strstr(r->message, "expected 0x"));
    assert_non_null(strstr(r->message, "found 0x"));
    assert_non_null(strstr(r->detail, "byte offset"));

    /* a valid page written to the wrong place */
    rp_page_init(page, sb->page_size, 11, RP_PAGE_ENGINE_MIN);
    assert_int_equal(rp_volume_write_page(v, 11, page), 0);
    unsigned char *copy = aligned_alloc(RP_IO_ALIGN, sb->page_size);
    rp_test_read(env.volume, rp_volume_page_offset(sb, 11), copy, sb->page_size);
    int fd = open(env.volume, O_WRONLY);
    assert_int_equal(pwrite(fd, copy, sb->page_size, (off_t)rp_volume_page_offset(sb, 12)), (ssize_t)sb->page_size);
    close(fd);
    assert_int_equal(rp_volume_read_page(v, 12, page), RP_ECORRUPT);
    assert_non_null(strstr(rp_last_error()->message, "holds the content of page 11"));

    /* a never-written page reads as zeros and is valid */
    assert_int_equal(rp_volume_read_page(v, 20, page), 0);
    assert_true(rp_page_is_new(page, sb->page_size));
    /* out of range */
    assert_int_equal(rp_volume_read_page(v, sb->data_pages, page), RP_EINVAL);
    free(page);
    free(copy);
    rp_volume_close(v);
    rp_test_env_destroy(&env);
}

static void test_slot_interlock(void **state)
{
    (void)state;
    rp_test_env_t env;
    rp_test_env_create(&env, 64 << 20, 8 << 20, 2);
    rp_volume_t *a, *b;
    assert_int_equal(rp_volume_open(env.volume, 0, &a), 0);
    assert_int_equal(rp_volume_open(env.volume, 0, &b), 0);
    assert_int_equal(rp_volume_claim_slot(a, 0), 0);
    assert_true(rp_volume_slot_busy(b, 0));
    assert_int_equal(rp_volume_claim_slot(b, 0), RP_EBUSY);
    assert_non_null(strstr(rp_last_error()->hint, "another --instance"));
    assert_int_equal(rp_volume_claim_slot(b, 1), 0);
    assert_int_equal(rp_volume_claim_slot(b, 5), RP_EINVAL);
    rp_volume_close(a); /* the kernel drops the lock with the descriptor */
    rp_volume_t *c;
    assert_int_equal(rp_volume_open(env.volume, 0, &c), 0);
    assert_int_equal(rp_volume_claim_slot(c, 0), 0);
    assert_int_equal(rp_volume_sb(c)->slots[0].state, RP_SLOT_IN_USE);
    assert_int_equal(rp_volume_sb(c)->slots[1].state, RP_SLOT_IN_USE);
    rp_volume_close(b);
    rp_volume_close(c);
    rp_test_env_destroy(&env);
}

static void test_space_map_after_init(void **state)
{
    (void)state;
    rp_test_env_t env;
    rp_test_env_create(&env, 600ULL << 20, 8 << 20, 2);
    rp_volume_t *v;
    assert_int_equal(rp_volume_open(env.volume, 0, &v), 0);
    const rp_superblock_t *sb = rp_volume_sb(v);
    assert_int_equal(sb->space_pages, 2); /* 8 KiB pages: 65280 pages per bitmap page */
    unsigned char *page = aligned_alloc(RP_IO_ALIGN, sb->page_size);
    assert_int_equal(rp_volume_read_page(v, 0, page), 0);
    assert_int_equal(rp_page_type(page), RP_PAGE_SPACE_MAP);
    assert_true(rp_space_page_get(page, 0));
    assert_true(rp_space_page_get(page, 1));
    assert_true(rp_space_page_get(page, 2)); /* root page */
    assert_false(rp_space_page_get(page, 3));
    assert_int_equal(rp_volume_read_page(v, 1, page), 0);
    assert_false(rp_space_page_get(page, 0));
    free(page);
    rp_volume_close(v);
    rp_test_env_destroy(&env);
}

int main(void)
{
    rp_log_set_level(RP_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_validates_every_option),
        cmocka_unit_test(test_superblock_roundtrip_and_corruption),
        cmocka_unit_test(test_init_refuses_existing_volume_without_force),
        cmocka_unit_test(test_superblock_failover_and_repair),
        cmocka_unit_test(test_page_checksum_errors_name_the_location),
        cmocka_unit_test(test_slot_interlock),
        cmocka_unit_test(test_space_map_after_init),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
