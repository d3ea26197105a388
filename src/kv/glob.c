/*
 * glob.c - Redis-compatible glob matching (see glob.h)
 *
 * The classic two-pointer algorithm: walk pattern and string together; at a '*' remember where the
 * star was and which string position it is currently assumed to end at; on a mismatch, let the last
 * star swallow one more byte and retry from just after it. Every construct other than '*' matches
 * exactly one byte, which is what makes backtracking to the last star alone sufficient.
 */
#include "kv/glob.h"

static unsigned char fold(unsigned char c, bool nocase)
{
    return (nocase && c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}

/*
 * Matches one byte c against the single-byte construct at pattern[*pi] (not '*'). Returns true on a
 * match and advances *pi past the construct; on a mismatch *pi is left as it was.
 */
static bool match_one(const char *pattern, size_t plen, size_t *pi, unsigned char c, bool nocase)
{
    size_t i = *pi;
    unsigned char pc = (unsigned char)pattern[i];
    if (pc == '?') {
        *pi = i + 1;
        return true;
    }
    if (pc == '\\' && i + 1 < plen) {
        if (fold((unsigned char)pattern[i + 1], nocase) != fold(c, nocase))
            return false;
        *pi = i + 2;
        return true;
    }
    if (pc != '[') {
        if (fold(pc, nocase) != fold(c, nocase))
            return false;
        *pi = i + 1;
        return true;
    }
    /* a character class */
    i++;
    bool negate = false, hit = false;
    if (i < plen && pattern[i] == '^') {
        negate = true;
        i++;
    }
    for (;;) {
        if (i >= plen)
            break; /* open class: closed by the end of the pattern */
        unsigned char a = (unsigned char)pattern[i];
        if (a == '\\' && i + 1 < plen) {
            /* Redis compares an escaped byte in a class exactly, even when matching without case */
            if ((unsigned char)pattern[i + 1] == c)
                hit = true;
            i += 2;
        } else if (a == ']') {
            i++;
            break;
        } else if (i + 2 < plen && pattern[i + 1] == '-') {
            /* a range; like Redis, the byte after '-' is taken as the upper end even if it is ']' */
            unsigned char lo = fold(a, nocase), hi = fold((unsigned char)pattern[i + 2], nocase);
            if (lo > hi) {
                unsigned char t = lo;
                lo = hi;
                hi = t;
            }
            unsigned char fc = fold(c, nocase);
            if (fc >= lo && fc <= hi)
                hit = true;
            i += 3;
        } else {
            if (fold(a, nocase) == fold(c, nocase))
                hit = true;
            i++;
        }
    }
    if (negate)
        hit = !hit;
    if (!hit)
        return false;
    *pi = i;
    return true;
}

bool kv_glob_match(const char *pattern, size_t plen, const char *str, size_t slen, bool nocase)
{
    size_t pi = 0, si = 0;
    size_t star_pi = (size_t)-1, star_si = 0; /* after the last '*', and where its match ends */
    while (si < slen) {
        if (pi < plen && pattern[pi] == '*') {
            while (pi < plen && pattern[pi] == '*')
                pi++;
            if (pi == plen)
                return true; /* a trailing star matches the rest */
            star_pi = pi;
            star_si = si;
            continue;
        }
        if (pi < plen && match_one(pattern, plen, &pi, (unsigned char)str[si], nocase)) {
            si++;
            continue;
        }
        if (star_pi == (size_t)-1)
            return false;
        /* let the last star take one more byte */
        pi = star_pi;
        si = ++star_si;
    }
    while (pi < plen && pattern[pi] == '*')
        pi++;
    return pi == plen;
}
