/*
 * fake_db.h - an in-memory key-value store with db.h's interface, for testing the commands without a
 * volume (see fake_db.c)
 */
#ifndef RP_TEST_FAKE_DB_H
#define RP_TEST_FAKE_DB_H

#include "kv/db.h"

#include <stdio.h>

kv_db_t *fake_db_create(void);
void fake_db_destroy(kv_db_t *db);
/* The last WAL position handed out (the test plays the WAL writer with it). */
uint64_t fake_db_pos(kv_db_t *db);
/* The next store call fails with rc and a report whose message is `message`. */
void fake_db_fail_next(kv_db_t *db, int rc, const char *message);

#endif
