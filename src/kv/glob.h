/*
 * glob.h - Redis-compatible glob matching for SCAN MATCH and CONFIG GET
 *
 * The pattern language of Redis' stringmatchlen():
 *   *        any run of bytes, also empty
 *   ?        exactly one byte
 *   [abc]    one of the bytes listed; [^abc] one byte not listed; [a-z] a range (either order);
 *            inside brackets \x stands for x; a class left open at the end of the pattern is closed
 *            there
 *   \x       the byte x itself (a backslash at the very end is a literal backslash)
 * Matching is binary-safe (lengths, not NUL terminators).
 *
 * Unlike a naive recursive matcher, this one backtracks only to the most recent '*', so its cost is
 * O(pattern * string) in the worst case: "a*a*a*a*...b" against a long run of 'a' cannot stall a
 * worker thread (Redis fixed the same problem after CVE-2022-36021).
 *
 * Interface:
 *   kv_glob_match()   does string match pattern?
 */
#ifndef RP_KV_GLOB_H
#define RP_KV_GLOB_H

#include <stdbool.h>
#include <stddef.h>

bool kv_glob_match(const char *pattern, size_t plen, const char *str, size_t slen, bool nocase);

#endif
