/*
 * cluster_config.c - the cluster file: reading it, validating it, writing it (see respool/cluster.h)
 *
 * The file is INI, read with libinih like every other configuration file of the project. Two
 * properties of Debian's libinih shape the reader:
 *   - it passes no line numbers to the handler, so the line reader counts lines itself (as
 *     src/common/config.c does) and the handler reads the count;
 *   - it treats an indented line as the continuation of the previous value ("  port = 1" under
 *     "host = a" would make host "a port = 1"), and it cuts lines at 199 characters. The line reader
 *     therefore strips indentation (indentation is allowed and means nothing) and refuses an
 *     over-long line instead of letting it be read as two lines.
 * Section headers are seen by the line reader too, so that the messages can name the line of a
 * section (a missing key has no line of its own) and so that a repeated section is an error instead
 * of being merged silently.
 *
 * Every error names the file, the section, the key and the line, says what was expected, and hints at
 * the fix (the key's help text, a "did you mean", or the exact command).
 *
 * Interface:
 *   rp_cluster_config_load()    parse, validate, resolve relative paths, load the secret
 *   rp_cluster_config_write()   validate, write the secret (0600) then the file (0644), atomically
 *   rp_cluster_member()         the member with an id
 *   rp_cm_config_check()        the checks across members (cm_int.h)
 */
#include "cm/cm_int.h"

#include "common/util.h"
#include "respool/error.h"
#include "respool/log.h"

#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SUB "cm"

/* Longest line libinih reads whole (INI_MAX_LINE of the library, newline included). */
#define LINE_MAX_CHARS (INI_MAX_LINE - 1)

enum { CK_NAME, CK_VOLUME, CK_SECRET, CK_PARTITIONS, CK_TIMEOUT, CK_JOIN_TIMEOUT, CK_COUNT };
enum { IK_HOST, IK_PORT, IK_CLUSTER_PORT, IK_DATA_DIR, IK_COUNT };

const rp_cm_key_t rp_cm_cluster_keys[] = {
    [CK_NAME] = {"name", RP_CM_NAME, "respool", 0, 0,
                 "A name for people and logs: letters, digits, '.', '_' and '-', at most 63 characters."},
    [CK_VOLUME] = {"volume", RP_CM_PATH, NULL, 0, 0,
                   "The shared volume every member opens: a file or block device made by `respoolctl cluster "
                   "init` (or `volume init`)."},
    [CK_SECRET] = {"secret-file", RP_CM_PATH, NULL, 0, 0,
                   "The file holding the cluster secret: 64 hexadecimal characters (32 bytes), mode 0600, the "
                   "same on every host."},
    [CK_PARTITIONS] = {"partitions", RP_CM_INT, "1024", 1, 65536,
                       "Directory partitions: a power of two from 1 to 65536, at least the number of members."},
    [CK_TIMEOUT] = {"request-timeout", RP_CM_DURATION, "5s", 10, 600000,
                    "Deadline of one page or lock request between instances, from 10ms to 10min (e.g. 500ms, "
                    "5s)."},
    [CK_JOIN_TIMEOUT] = {"join-timeout", RP_CM_DURATION, "60s", 0, 3600000,
                         "How long a starting member waits for every other member to be reachable before it "
                         "serves anyway, from 0 (do not wait) to 1h."},
    [CK_COUNT] = {0},
};

const rp_cm_key_t rp_cm_instance_keys[] = {
    [IK_HOST] = {"host", RP_CM_HOST, NULL, 0, 0,
                 "Where the member runs: a host name or an IPv4/IPv6 address the other members can reach "
                 "(not 0.0.0.0)."},
    [IK_PORT] = {"port", RP_CM_INT, NULL, 1, 65535, "The TCP port of the member's Redis clients, 1 to 65535."},
    [IK_CLUSTER_PORT] = {"cluster-port", RP_CM_INT, NULL, 1, 65535,
                         "The TCP port on which the member accepts the other instances, 1 to 65535."},
    [IK_DATA_DIR] = {"data-dir", RP_CM_PATH, NULL, 0, 0,
                     "The member's own local data directory (respool.lock, its log); one per member."},
    [IK_COUNT] = {0},
};

/* ---- values ------------------------------------------------------------------------------------- */

static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
            return false;
    return true;
}

/* NULL if h can name a member's host, else why not. */
static const char *host_problem(const char *h)
{
    size_t n = strlen(h);
    if (n == 0)
        return "it is empty";
    if (n >= RP_CLUSTER_HOST_MAX)
        return "it is longer than 255 characters";
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, h, &a4) == 1)
        return a4.s_addr == htonl(INADDR_ANY) ? "0.0.0.0 means every address of a host; the other members need "
                                                "one they can connect to"
                                              : NULL;
    if (h[0] == '[')
        return "an IPv6 address is written without brackets";
    if (strchr(h, ':')) {
        if (inet_pton(AF_INET6, h, &a6) != 1)
            return "it is not a valid IPv6 address";
        return IN6_IS_ADDR_UNSPECIFIED(&a6) ? ":: means every address of a host; the other members need one they "
                                              "can connect to"
                                            : NULL;
    }
    /* a host name: labels of letters, digits and '-', separated by dots (RFC 1123) */
    bool all_digits_and_dots = true;
    size_t label = 0;
    for (size_t i = 0; i < n; i++) {
        char c = h[i];
        if (c == '.') {
            if (label == 0 && i != n - 1)
                return "it has an empty label (two dots, or a leading dot)";
            if (h[i - 1] == '-')
                return "a label ends with '-'";
            label = 0;
            continue;
        }
        if (!isalnum((unsigned char)c) && c != '-')
            return "a host name has only letters, digits, '-' and '.'";
        if (c == '-' && label == 0)
            return "a label starts with '-'";
        if (!isdigit((unsigned char)c))
            all_digits_and_dots = false;
        if (++label > 63)
            return "a label is longer than 63 characters";
    }
    if (h[n - 1] == '-')
        return "it ends with '-'";
    if (all_digits_and_dots)
        return "it is not a valid IPv4 address";
    return NULL;
}

/* A value the writer can put on a line that the reader gives back unchanged. */
static const char *unwritable(const char *v)
{
    if (strpbrk(v, "\n\r"))
        return "it contains a line break";
    if (v[0] == ' ' || v[0] == '\t' || (v[0] && (v[strlen(v) - 1] == ' ' || v[strlen(v) - 1] == '\t')))
        return "it begins or ends with a space";
    for (const char *p = v; (p = strchr(p, ';')) != NULL; p++)
        if (p > v && (p[-1] == ' ' || p[-1] == '\t'))
            return "it contains \" ;\", which starts a comment";
    return NULL;
}

static void format_ms(uint64_t ms, char *buf, size_t size)
{
    if (ms % 60000 == 0 && ms >= 60000)
        snprintf(buf, size, "%" PRIu64 "min", ms / 60000);
    else if (ms % 1000 == 0)
        snprintf(buf, size, "%" PRIu64 "s", ms / 1000);
    else
        snprintf(buf, size, "%" PRIu64 "ms", ms);
}

/* ---- reading ------------------------------------------------------------------------------------ */

typedef struct parse {
    const char *path;
    FILE *file;
    char dir[PATH_MAX];   /* directory of the file: relative paths in it are relative to this */
    int lineno;           /* lines read so far (libinih passes none) */
    int rc;               /* the first error; parsing stops at it */
    rp_cluster_config_t *cfg;
    int cluster_line;     /* line of [cluster], 0 if none */
    int cluster_key_line[CK_COUNT];
    int member_line[RP_VOLUME_MAX_INSTANCES];  /* line of [instance.N] by id, 0 if none */
    int member_key_line[RP_VOLUME_MAX_INSTANCES][IK_COUNT];
    rp_cluster_member_t member[RP_VOLUME_MAX_INSTANCES]; /* by id */
} parse_t;

/* Parses "instance.N" into N; -1 if the name has that form but N is not a canonical decimal number,
 * -2 if the name is something else. */
static int instance_id(const char *section)
{
    if (strncmp(section, "instance.", 9) != 0)
        return -2;
    const char *d = section + 9;
    size_t n = strlen(d);
    if (n == 0 || n > 4 || strspn(d, "0123456789") != n || (d[0] == '0' && n > 1))
        return -1;
    return atoi(d);
}

static const rp_cm_key_t *find_key(const rp_cm_key_t *keys, const char *name, int *index)
{
    for (int i = 0; keys[i].name; i++)
        if (strcmp(keys[i].name, name) == 0) {
            *index = i;
            return &keys[i];
        }
    return NULL;
}

static const char *closest(const rp_cm_key_t *keys, const char *name)
{
    const char *best = NULL;
    size_t best_d = 4;
    for (int i = 0; keys[i].name; i++) {
        size_t d = rp_edit_distance(name, keys[i].name);
        if (d < best_d) {
            best_d = d;
            best = keys[i].name;
        }
    }
    return best;
}

static void list_keys(const rp_cm_key_t *keys, char *buf, size_t size)
{
    buf[0] = '\0';
    for (int i = 0; keys[i].name; i++) {
        size_t n = strlen(buf);
        snprintf(buf + n, size - n, "%s%s", i == 0 ? "" : keys[i + 1].name ? ", " : " and ", keys[i].name);
    }
}

static void on_section(parse_t *p, const char *line)
{
    const char *end = strchr(line, ']');
    if (!end)
        return; /* libinih reports the syntax error */
    char name[128];
    const char *s = line + 1;
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = (size_t)(end - s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (n >= sizeof(name))
        n = sizeof(name) - 1;
    memcpy(name, s, n);
    name[n] = '\0';

    if (strcmp(name, "cluster") == 0) {
        if (p->cluster_line) {
            p->rc = rp_error(RP_ECONFIG, "section [cluster] appears twice in \"%s\"", p->path);
            rp_error_detail("At lines %d and %d.", p->cluster_line, p->lineno);
            rp_error_hint("Merge them into one [cluster] section.");
            return;
        }
        p->cluster_line = p->lineno;
        return;
    }
    int id = instance_id(name);
    if (id == -2) {
        const char *near = rp_edit_distance(name, "cluster") < 3 ? "cluster" : NULL;
        if (!near && strncasecmp(name, "instance", 8) == 0)
            near = "instance.N";
        p->rc = rp_error(RP_ECONFIG, "unknown section [%s] in \"%s\"", name, p->path);
        rp_error_detail("At line %d.", p->lineno);
        if (near)
            rp_error_hint("Did you mean [%s]? The sections are [cluster] and one [instance.N] per member (N = "
                          "instance id, 0 to %d); see docs/cluster.md.", near, RP_VOLUME_MAX_INSTANCES - 1);
        else
            rp_error_hint("The sections are [cluster] and one [instance.N] per member (N = instance id, 0 to %d); "
                          "see docs/cluster.md.", RP_VOLUME_MAX_INSTANCES - 1);
        return;
    }
    if (id == -1 || id >= RP_VOLUME_MAX_INSTANCES) {
        p->rc = rp_error(RP_ECONFIG, "invalid instance id in section [%s] of \"%s\"", name, p->path);
        rp_error_detail("At line %d; %s.", p->lineno,
                        id == -1 ? "the id must be a decimal number without leading zeros"
                                 : "a volume has at most 64 instance slots");
        rp_error_hint("Name each member's section [instance.N] with N its instance id (its volume slot), 0 to %d.",
                      RP_VOLUME_MAX_INSTANCES - 1);
        return;
    }
    if (p->member_line[id]) {
        p->rc = rp_error(RP_ECONFIG, "section [%s] appears twice in \"%s\"", name, p->path);
        rp_error_detail("At lines %d and %d.", p->member_line[id], p->lineno);
        rp_error_hint("Each member has exactly one section; give the other one its own instance id.");
        return;
    }
    p->member_line[id] = p->lineno;
    p->member[id].id = id;
}

static char *read_line(char *str, int num, void *stream)
{
    parse_t *p = stream;
    if (p->rc)
        return NULL; /* stop at the first error: the rest would only repeat it */
    if (!fgets(str, num, p->file))
        return NULL;
    p->lineno++;
    size_t n = strlen(str);
    if (n == (size_t)num - 1 && str[n - 1] != '\n') {
        int c = getc(p->file);
        if (c != EOF) {
            ungetc(c, p->file);
            p->rc = rp_error(RP_ECONFIG, "line %d of \"%s\" is too long", p->lineno, p->path);
            rp_error_detail("A line may have at most %d characters (a limit of the INI reader, libinih).",
                            LINE_MAX_CHARS - 1);
            rp_error_hint("Shorten the path on that line, e.g. with a symbolic link to a shorter directory.");
            return NULL;
        }
    }
    /* Indentation means nothing here; libinih would take an indented line as the continuation of the
     * previous value. */
    size_t skip = strspn(str, " \t");
    memmove(str, str + skip, n - skip + 1);
    if (str[0] == '[')
        on_section(p, str);
    return p->rc ? NULL : str;
}

static int bad_value(parse_t *p, const char *section, const rp_cm_key_t *k, const char *value, const char *expect)
{
    p->rc = rp_error(RP_ECONFIG, "invalid value for \"%s\" in section [%s]: \"%s\"", k->name, section, value);
    rp_error_detail("In \"%s\" line %d; expected %s.", p->path, p->lineno, expect);
    if (strstr(value, " #") || strstr(value, "\t#"))
        rp_error_hint("%s Only ';' starts a comment after a value; a '#' comment must be on a line of its own.",
                      k->help);
    else
        rp_error_hint("%s", k->help);
    return 0;
}

/* Joins a relative path to the file's directory. */
static bool resolve_path(parse_t *p, const char *value, char *out, size_t size)
{
    int n = value[0] == '/' ? snprintf(out, size, "%s", value) : snprintf(out, size, "%s/%s", p->dir, value);
    return n > 0 && (size_t)n < size;
}

static int set_value(parse_t *p, const char *section, const rp_cm_key_t *k, const char *value, void *slot,
                     size_t slot_size)
{
    switch (k->type) {
    case RP_CM_NAME:
        if (!name_ok(value))
            return bad_value(p, section, k, value, "1 to 63 letters, digits, '.', '_' or '-'");
        snprintf(slot, slot_size, "%s", value);
        return 1;
    case RP_CM_PATH:
        if (!value[0])
            return bad_value(p, section, k, value, "a path");
        if (!resolve_path(p, value, slot, slot_size))
            return bad_value(p, section, k, value, "a path shorter than PATH_MAX");
        return 1;
    case RP_CM_HOST: {
        const char *why = host_problem(value);
        if (why) {
            char expect[256];
            snprintf(expect, sizeof(expect), "a host name or an IP address, but %s", why);
            return bad_value(p, section, k, value, expect);
        }
        snprintf(slot, slot_size, "%s", value);
        return 1;
    }
    case RP_CM_INT: {
        int64_t v;
        char expect[96];
        snprintf(expect, sizeof(expect), "an integer from %" PRId64 " to %" PRId64, k->min, k->max);
        if (!rp_parse_i64(value, strlen(value), &v) || v < k->min || v > k->max)
            return bad_value(p, section, k, value, expect);
        /* partitions (uint32_t) and the ports (int) are both 32-bit; the range fits either */
        _Static_assert(sizeof(int) == sizeof(uint32_t), "32-bit int");
        int32_t v32 = (int32_t)v;
        memcpy(slot, &v32, sizeof(v32));
        (void)slot_size;
        return 1;
    }
    case RP_CM_DURATION: {
        uint64_t ms;
        char expect[96], lo[32], hi[32];
        format_ms((uint64_t)k->min, lo, sizeof(lo));
        format_ms((uint64_t)k->max, hi, sizeof(hi));
        snprintf(expect, sizeof(expect), "a duration from %s to %s, such as 500ms or 5s", lo, hi);
        if (rp_parse_duration(value, &ms) != 0 || ms < (uint64_t)k->min || ms > (uint64_t)k->max)
            return bad_value(p, section, k, value, expect);
        *(uint64_t *)slot = ms;
        return 1;
    }
    }
    return 0;
}

static int on_key(void *user, const char *raw_section, const char *name, const char *value)
{
    parse_t *p = user;
    if (p->rc)
        return 0;
    /* libinih passes "[ instance.1 ]" as " instance.1 "; on_section() accepted it trimmed */
    char section[128];
    while (*raw_section == ' ' || *raw_section == '\t')
        raw_section++;
    snprintf(section, sizeof(section), "%s", raw_section);
    for (size_t n = strlen(section); n && (section[n - 1] == ' ' || section[n - 1] == '\t');)
        section[--n] = '\0';
    if (!section[0]) {
        p->rc = rp_error(RP_ECONFIG, "key \"%s\" is outside any section in \"%s\"", name, p->path);
        rp_error_detail("At line %d.", p->lineno);
        rp_error_hint("Put the cluster's keys under [cluster] and each member's under its [instance.N].");
        return 0;
    }
    bool cluster = strcmp(section, "cluster") == 0;
    int id = cluster ? -1 : instance_id(section);
    assert(cluster || (id >= 0 && id < RP_VOLUME_MAX_INSTANCES)); /* on_section() refused any other */
    const rp_cm_key_t *keys = cluster ? rp_cm_cluster_keys : rp_cm_instance_keys;
    const rp_cm_key_t *other = cluster ? rp_cm_instance_keys : rp_cm_cluster_keys;
    int ki;
    const rp_cm_key_t *k = find_key(keys, name, &ki);
    if (!k) {
        char list[256];
        list_keys(keys, list, sizeof(list));
        p->rc = rp_error(RP_ECONFIG, "unknown key \"%s\" in section [%s]", name, section);
        rp_error_detail("In \"%s\" line %d.", p->path, p->lineno);
        int oi;
        const char *near = closest(keys, name);
        if (find_key(other, name, &oi))
            rp_error_hint("\"%s\" belongs in %s; the keys of [%s] are %s.", name,
                          cluster ? "each [instance.N] section" : "the [cluster] section", cluster ? "cluster" : "instance.N",
                          list);
        else if (near)
            rp_error_hint("Did you mean \"%s\"? The keys of [%s] are %s (docs/cluster.md).", near,
                          cluster ? "cluster" : "instance.N", list);
        else
            rp_error_hint("The keys of [%s] are %s (docs/cluster.md).", cluster ? "cluster" : "instance.N", list);
        return 0;
    }
    int *line = cluster ? &p->cluster_key_line[ki] : &p->member_key_line[id][ki];
    if (*line) {
        p->rc = rp_error(RP_ECONFIG, "\"%s\" is set twice in section [%s]", name, section);
        rp_error_detail("In \"%s\" lines %d and %d.", p->path, *line, p->lineno);
        rp_error_hint("Keep one of them.");
        return 0;
    }
    *line = p->lineno;

    rp_cluster_config_t *cfg = p->cfg;
    rp_cluster_member_t *m = cluster ? NULL : &p->member[id];
    void *slot = NULL;
    size_t size = 0;
    if (cluster) {
        switch (ki) {
        case CK_NAME: slot = cfg->name; size = sizeof(cfg->name); break;
        case CK_VOLUME: slot = cfg->volume; size = sizeof(cfg->volume); break;
        case CK_SECRET: slot = cfg->secret_file; size = sizeof(cfg->secret_file); break;
        case CK_PARTITIONS: slot = &cfg->partitions; size = sizeof(cfg->partitions); break;
        case CK_TIMEOUT: slot = &cfg->request_timeout_ms; size = sizeof(cfg->request_timeout_ms); break;
        case CK_JOIN_TIMEOUT: slot = &cfg->join_timeout_ms; size = sizeof(cfg->join_timeout_ms); break;
        }
    } else {
        switch (ki) {
        case IK_HOST: slot = m->host; size = sizeof(m->host); break;
        case IK_PORT: slot = &m->port; size = sizeof(m->port); break;
        case IK_CLUSTER_PORT: slot = &m->cluster_port; size = sizeof(m->cluster_port); break;
        case IK_DATA_DIR: slot = m->data_dir; size = sizeof(m->data_dir); break;
        }
    }
    return set_value(p, section, k, value, slot, size);
}

static int missing_key(const char *path, const char *section, int section_line, const rp_cm_key_t *k)
{
    rp_error(RP_ECONFIG, "section [%s] has no \"%s\"", section, k->name);
    rp_error_detail("In \"%s\", in the section that starts at line %d.", path, section_line);
    rp_error_hint("Add \"%s = ...\": %s", k->name, k->help);
    return RP_ECONFIG;
}

/* ---- the secret --------------------------------------------------------------------------------- */

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static const char *const SECRET_RECIPE =
    "od -An -tx1 -N32 /dev/urandom | tr -d ' \\n' > FILE && chmod 600 FILE (the same file on every host)";

static int load_secret(rp_cluster_config_t *cfg, int line)
{
    const char *f = cfg->secret_file;
    int fd = open(f, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT) {
            rp_error(RP_ENOENT, "secret file \"%s\" does not exist", f);
            rp_error_detail("It is named by \"secret-file\" in section [cluster] of \"%s\" line %d.", cfg->path, line);
            rp_error_hint("Copy the cluster's key file there, or create a new secret for the whole cluster: %s.",
                          SECRET_RECIPE);
            return RP_ENOENT;
        }
        rp_error(e == EACCES ? RP_EPERM : RP_ECONFIG, "could not open secret file \"%s\": %s", f, strerror(e));
        rp_error_detail("It is named by \"secret-file\" in section [cluster] of \"%s\" line %d.", cfg->path, line);
        rp_error_hint("Run the instances as the user that owns the secret file.");
        return e == EACCES ? RP_EPERM : RP_ECONFIG;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        rp_error(RP_ECONFIG, "secret file \"%s\" is not a regular file", f);
        rp_error_detail("It is named by \"secret-file\" in section [cluster] of \"%s\" line %d.", cfg->path, line);
        rp_error_hint("Point secret-file at the cluster's key file.");
        return RP_ECONFIG;
    }
    if (st.st_mode & 077) {
        close(fd);
        rp_error(RP_EPERM, "secret file \"%s\" is accessible by group or others", f);
        rp_error_detail("Its mode is %04o. The secret authenticates the instances to each other; anyone who can read "
                        "it can join the cluster. It is named by \"secret-file\" in [cluster] of \"%s\" line %d.",
                        (unsigned)(st.st_mode & 07777), cfg->path, line);
        rp_error_hint("Run: chmod 600 %s", f);
        return RP_EPERM;
    }
    char text[RP_CLUSTER_SECRET_LEN * 2 + 64];
    ssize_t n = read(fd, text, sizeof(text));
    int e = errno;
    close(fd);
    if (n < 0) {
        rp_error(RP_ECONFIG, "could not read secret file \"%s\": %s", f, strerror(e));
        return RP_ECONFIG;
    }
    while (n > 0 && isspace((unsigned char)text[n - 1]))
        n--;
    int bad_at = -1;
    for (ssize_t i = 0; i < n && bad_at < 0; i++)
        if (hexval((unsigned char)text[i]) < 0)
            bad_at = (int)i;
    if (n != RP_CLUSTER_SECRET_LEN * 2 || bad_at >= 0) {
        explicit_bzero(text, sizeof(text));
        rp_error(RP_ECONFIG, "secret file \"%s\" does not hold 64 hexadecimal characters", f);
        if (bad_at >= 0)
            rp_error_detail("Character %d is not a hexadecimal digit. The secret is 32 random bytes written as 64 hex "
                            "characters (a final newline is allowed).", bad_at + 1);
        else
            rp_error_detail("It holds %s%zd characters. The secret is 32 random bytes written as 64 hex characters "
                            "(a final newline is allowed).", n >= (ssize_t)sizeof(text) ? "at least " : "", n);
        rp_error_hint("Copy the cluster's key file there, or create a new secret for the whole cluster: %s.",
                      SECRET_RECIPE);
        return RP_ECONFIG;
    }
    unsigned char any = 0;
    for (int i = 0; i < RP_CLUSTER_SECRET_LEN; i++) {
        cfg->secret[i] = (unsigned char)(hexval((unsigned char)text[2 * i]) << 4 | hexval((unsigned char)text[2 * i + 1]));
        any |= cfg->secret[i];
    }
    explicit_bzero(text, sizeof(text));
    if (!any) {
        rp_error(RP_ECONFIG, "secret file \"%s\" holds a secret of all zeros", f);
        rp_error_detail("That is not a secret: it looks like a file that was never filled.");
        rp_error_hint("Create a new secret for the whole cluster: %s.", SECRET_RECIPE);
        return RP_ECONFIG;
    }
    return 0;
}

/* ---- checks across members ---------------------------------------------------------------------- */

static void where(const rp_cluster_config_t *cfg, const int *lines, int i, char *buf, size_t size)
{
    if (lines)
        snprintf(buf, size, "[instance.%d] (line %d)", cfg->members[i].id, lines[i]);
    else
        snprintf(buf, size, "[instance.%d]", cfg->members[i].id);
}

int rp_cm_config_check(const rp_cluster_config_t *cfg, const int *lines)
{
    const char *path = cfg->path[0] ? cfg->path : "the cluster configuration";
    if (cfg->nmembers < 1 || cfg->nmembers > RP_VOLUME_MAX_INSTANCES) {
        rp_error(RP_ECONFIG, "\"%s\" has %s", path, cfg->nmembers < 1 ? "no member" : "too many members");
        rp_error_detail("A cluster has 1 to %d members, each in a section [instance.N].", RP_VOLUME_MAX_INSTANCES);
        rp_error_hint("Add a section per member: [instance.0] with host, port, cluster-port and data-dir; "
                      "`respoolctl cluster init` writes a complete file.");
        return RP_ECONFIG;
    }
    for (int i = 0; i < cfg->nmembers; i++) {
        const rp_cluster_member_t *m = &cfg->members[i];
        if (m->id < 0 || m->id >= RP_VOLUME_MAX_INSTANCES || (i > 0 && m->id <= cfg->members[i - 1].id)) {
            rp_error(RP_ECONFIG, "member %d of \"%s\" has instance id %d", i, path, m->id);
            rp_error_detail("Instance ids run from 0 to %d, each used once, in increasing order.",
                            RP_VOLUME_MAX_INSTANCES - 1);
            return RP_ECONFIG;
        }
        const char *why = host_problem(m->host);
        if (why || m->port < 1 || m->port > 65535 || m->cluster_port < 1 || m->cluster_port > 65535 ||
            !m->data_dir[0]) {
            rp_error(RP_ECONFIG, "[instance.%d] of \"%s\" is incomplete or invalid", m->id, path);
            rp_error_detail("host \"%s\"%s%s, port %d, cluster-port %d, data-dir \"%s\".", m->host, why ? ": " : "",
                            why ? why : "", m->port, m->cluster_port, m->data_dir);
            rp_error_hint("Every member needs a host, two ports from 1 to 65535 and a data directory.");
            return RP_ECONFIG;
        }
    }
    bool local[RP_VOLUME_MAX_INSTANCES];
    for (int i = 0; i < cfg->nmembers; i++)
        local[i] = rp_cluster_member_is_local(&cfg->members[i]);
    for (int i = 0; i < cfg->nmembers; i++) {
        const rp_cluster_member_t *a = &cfg->members[i];
        if (a->port == a->cluster_port) {
            char w[96];
            where(cfg, lines, i, w, sizeof(w));
            rp_error(RP_ECONFIG, "port %d is both the port and the cluster-port of [instance.%d]", a->port, a->id);
            rp_error_detail("In \"%s\", %s.", path, w);
            rp_error_hint("Give the member two different ports: one for Redis clients, one for the other instances.");
            return RP_ECONFIG;
        }
        for (int j = i + 1; j < cfg->nmembers; j++) {
            const rp_cluster_member_t *b = &cfg->members[j];
            bool same = strcasecmp(a->host, b->host) == 0 || (local[i] && local[j]);
            if (!same)
                continue;
            const int pa[2] = {a->port, a->cluster_port}, pb[2] = {b->port, b->cluster_port};
            static const char *const kn[2] = {"port", "cluster-port"};
            for (int x = 0; x < 2; x++)
                for (int y = 0; y < 2; y++) {
                    if (pa[x] != pb[y])
                        continue;
                    char wa[96], wb[96];
                    where(cfg, lines, i, wa, sizeof(wa));
                    where(cfg, lines, j, wb, sizeof(wb));
                    rp_error(RP_ECONFIG, "port %d is used twice on host %s", pa[x], a->host);
                    rp_error_detail("In \"%s\": \"%s\" of %s and \"%s\" of %s%s.", path, kn[x], wa, kn[y], wb,
                                    strcasecmp(a->host, b->host) != 0 ? " (both hosts are this host)" : "");
                    rp_error_hint("Every port and cluster-port of the members on one host must be different.");
                    return RP_ECONFIG;
                }
            if (strcmp(a->data_dir, b->data_dir) == 0) {
                char wa[96], wb[96];
                where(cfg, lines, i, wa, sizeof(wa));
                where(cfg, lines, j, wb, sizeof(wb));
                rp_error(RP_ECONFIG, "data directory \"%s\" is shared by two members on host %s", a->data_dir,
                         a->host);
                rp_error_detail("In \"%s\": %s and %s.", path, wa, wb);
                rp_error_hint("Give each member its own data-dir (it holds the member's lock file and log).");
                return RP_ECONFIG;
            }
        }
    }
    uint32_t parts = cfg->partitions;
    if (parts < 1 || parts > 65536 || (parts & (parts - 1)) != 0 || parts < (uint32_t)cfg->nmembers) {
        rp_error(RP_ECONFIG, "\"partitions\" in [cluster] of \"%s\" is %" PRIu32, path, parts);
        rp_error_detail("Partitions must be a power of two from 1 to 65536 and at least the number of members (%d), "
                        "so that every member masters some.", cfg->nmembers);
        rp_error_hint("Use 1024 (the default) unless a cluster has more than 1024 members.");
        return RP_ECONFIG;
    }
    if (cfg->request_timeout_ms < (uint64_t)rp_cm_cluster_keys[CK_TIMEOUT].min ||
        cfg->request_timeout_ms > (uint64_t)rp_cm_cluster_keys[CK_TIMEOUT].max) {
        rp_error(RP_ECONFIG, "\"request-timeout\" in [cluster] of \"%s\" is %" PRIu64 " ms", path,
                 cfg->request_timeout_ms);
        rp_error_hint("%s", rp_cm_cluster_keys[CK_TIMEOUT].help);
        return RP_ECONFIG;
    }
    if (cfg->join_timeout_ms > (uint64_t)rp_cm_cluster_keys[CK_JOIN_TIMEOUT].max) {
        rp_error(RP_ECONFIG, "\"join-timeout\" in [cluster] of \"%s\" is %" PRIu64 " ms", path, cfg->join_timeout_ms);
        rp_error_hint("%s", rp_cm_cluster_keys[CK_JOIN_TIMEOUT].help);
        return RP_ECONFIG;
    }
    return 0;
}

/* ---- load --------------------------------------------------------------------------------------- */

static void file_dir(const char *path, char *dir, size_t size)
{
    char cwd[PATH_MAX] = "/";
    const char *slash = strrchr(path, '/');
    if (path[0] != '/' && !getcwd(cwd, sizeof(cwd)))
        snprintf(cwd, sizeof(cwd), ".");
    if (!slash)
        snprintf(dir, size, "%s", cwd);
    else if (slash == path)
        snprintf(dir, size, "/");
    else if (path[0] == '/')
        snprintf(dir, size, "%.*s", (int)(slash - path), path);
    else
        snprintf(dir, size, "%s/%.*s", cwd, (int)(slash - path), path);
}

int rp_cluster_config_load(const char *path, rp_cluster_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    FILE *f = fopen(path, "r");
    if (!f) {
        int e = errno;
        int code = e == ENOENT ? RP_ENOENT : e == EACCES ? RP_EPERM : RP_ECONFIG;
        rp_error(code, "could not open cluster configuration \"%s\": %s", path, strerror(e));
        rp_error_hint(e == ENOENT ? "Check the path given with --cluster-config / --config; `respoolctl cluster init` "
                                    "writes one."
                                  : "Check the file's permissions.");
        return code;
    }
    parse_t *p = rp_xcalloc(1, sizeof(*p));
    p->path = path;
    p->file = f;
    p->cfg = cfg;
    file_dir(path, p->dir, sizeof(p->dir));
    if (path[0] == '/')
        snprintf(cfg->path, sizeof(cfg->path), "%s", path);
    else
        snprintf(cfg->path, sizeof(cfg->path), "%s/%s", p->dir, strrchr(path, '/') ? strrchr(path, '/') + 1 : path);
    int syntax_line = ini_parse_stream(read_line, p, on_key, p);
    fclose(f);
    int rc = p->rc;
    if (!rc && syntax_line != 0) {
        rc = rp_error(RP_ECONFIG, "syntax error in \"%s\" at line %d", path, syntax_line);
        rp_error_detail("Lines must be \"key = value\", \"[section]\", empty, or comments starting with ';' or '#'.");
        rp_error_hint("See docs/cluster.md for the format; `respoolctl cluster init` writes a complete file.");
    }
    if (!rc && !p->cluster_line) {
        rc = rp_error(RP_ECONFIG, "\"%s\" has no [cluster] section", path);
        rp_error_detail("The [cluster] section names the volume and the secret file of the cluster.");
        rp_error_hint("Add it (see docs/cluster.md), or write a complete file with `respoolctl cluster init`.");
    }
    /* [cluster]: required keys, then defaults */
    for (int k = 0; !rc && k < CK_COUNT; k++) {
        if (p->cluster_key_line[k])
            continue;
        const rp_cm_key_t *key = &rp_cm_cluster_keys[k];
        if (!key->default_value) {
            rc = missing_key(path, "cluster", p->cluster_line, key);
            break;
        }
        uint64_t ms;
        switch (k) {
        case CK_NAME:
            snprintf(cfg->name, sizeof(cfg->name), "%s", key->default_value);
            break;
        case CK_PARTITIONS:
            cfg->partitions = (uint32_t)strtoul(key->default_value, NULL, 10);
            break;
        case CK_TIMEOUT:
            rp_parse_duration(key->default_value, &ms);
            cfg->request_timeout_ms = ms;
            break;
        case CK_JOIN_TIMEOUT:
            rp_parse_duration(key->default_value, &ms);
            cfg->join_timeout_ms = ms;
            break;
        }
    }
    /* members, in id order */
    int lines[RP_VOLUME_MAX_INSTANCES];
    for (int id = 0; !rc && id < RP_VOLUME_MAX_INSTANCES; id++) {
        if (!p->member_line[id])
            continue;
        char section[32];
        snprintf(section, sizeof(section), "instance.%d", id);
        for (int k = 0; k < IK_COUNT; k++)
            if (!p->member_key_line[id][k]) {
                rc = missing_key(path, section, p->member_line[id], &rp_cm_instance_keys[k]);
                break;
            }
        if (rc)
            break;
        lines[cfg->nmembers] = p->member_line[id];
        cfg->members[cfg->nmembers++] = p->member[id];
    }
    if (!rc)
        rc = rp_cm_config_check(cfg, lines);
    if (!rc)
        rc = load_secret(cfg, p->cluster_key_line[CK_SECRET]);
    free(p);
    if (rc)
        explicit_bzero(cfg->secret, sizeof(cfg->secret));
    return rc;
}

const rp_cluster_member_t *rp_cluster_member(const rp_cluster_config_t *cfg, int id)
{
    for (int i = 0; i < cfg->nmembers; i++)
        if (cfg->members[i].id == id)
            return &cfg->members[i];
    return NULL;
}

/* ---- write -------------------------------------------------------------------------------------- */

/* Writes text to path through a temporary file in the same directory: the file is either the old one or
 * the complete new one, never half written. The mode is set explicitly (the umask does not apply). */
static int write_atomically(const char *path, const char *text, size_t len, mode_t mode)
{
    char tmp[PATH_MAX + 32];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0) {
        int e = errno;
        rp_error(rp_error_errno(e), "could not create \"%s\": %s", tmp, strerror(e));
        rp_error_hint("Check that the directory exists and is writable.");
        return rp_error_errno(e);
    }
    int rc = 0;
    if (fchmod(fd, mode) != 0)
        rc = rp_error(RP_ESYS, "could not set the mode of \"%s\": %s", tmp, strerror(errno));
    for (size_t off = 0; !rc && off < len;) {
        ssize_t n = write(fd, text + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            rc = rp_error(rp_error_errno(errno), "could not write \"%s\": %s", tmp, strerror(errno));
        else
            off += (size_t)n;
    }
    if (!rc && fsync(fd) != 0)
        rc = rp_error(RP_EIO, "could not sync \"%s\": %s", tmp, strerror(errno));
    close(fd);
    if (!rc && rename(tmp, path) != 0)
        rc = rp_error(rp_error_errno(errno), "could not rename \"%s\" to \"%s\": %s", tmp, path, strerror(errno));
    if (rc) {
        unlink(tmp);
        return rc;
    }
    char dir[PATH_MAX];
    file_dir(path, dir, sizeof(dir));
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        if (fsync(dfd) != 0)
            rp_warn(SUB, "could not sync directory \"%s\": %s", dir, strerror(errno));
        close(dfd);
    }
    return 0;
}

static int check_writable(const char *what, const char *value, const char *path)
{
    const char *why = unwritable(value);
    size_t n = strlen(value) + 20; /* "cluster-port   = " and the newline */
    if (!why && n > (size_t)LINE_MAX_CHARS)
        why = "the line would be longer than the INI reader accepts";
    if (!why)
        return 0;
    rp_error(RP_ECONFIG, "cannot write %s \"%s\" into \"%s\"", what, value, path);
    rp_error_detail("%c%s.", toupper((unsigned char)why[0]), why + 1);
    rp_error_hint("Choose a shorter or simpler path (a symbolic link to the directory works).");
    return RP_ECONFIG;
}

int rp_cluster_config_write(const char *path, const rp_cluster_config_t *cfg)
{
    rp_cluster_config_t *copy = rp_xmalloc(sizeof(*copy));
    *copy = *cfg;
    snprintf(copy->path, sizeof(copy->path), "%s", path);
    int rc = rp_cm_config_check(copy, NULL);
    explicit_bzero(copy->secret, sizeof(copy->secret));
    free(copy);
    if (rc)
        return rc;
    if (!name_ok(cfg->name)) {
        rp_error(RP_ECONFIG, "invalid cluster name \"%s\"", cfg->name);
        rp_error_hint("%s", rp_cm_cluster_keys[CK_NAME].help);
        return RP_ECONFIG;
    }
    if (!cfg->volume[0] || !cfg->secret_file[0])
        return rp_error(RP_ECONFIG, "the cluster configuration names no %s", !cfg->volume[0] ? "volume" : "secret file");
    if ((rc = check_writable("the volume path", cfg->volume, path)) != 0 ||
        (rc = check_writable("the secret file path", cfg->secret_file, path)) != 0)
        return rc;
    for (int i = 0; i < cfg->nmembers; i++)
        if ((rc = check_writable("the data directory", cfg->members[i].data_dir, path)) != 0)
            return rc;

    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!out)
        return rp_error(RP_ENOMEM, "out of memory");
    char when[64], timeout[32], join_timeout[32];
    time_t now = time(NULL);
    struct tm tm;
    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", gmtime_r(&now, &tm));
    format_ms(cfg->request_timeout_ms, timeout, sizeof(timeout));
    format_ms(cfg->join_timeout_ms, join_timeout, sizeof(join_timeout));
    fprintf(out,
            "; respool cluster configuration, written %s.\n"
            "; Format: docs/cluster.md. Every member reads this file (respoold --cluster-config FILE\n"
            "; --instance N); each host needs the same file and the same secret file.\n"
            "\n"
            "[cluster]\n"
            "name            = %s\n"
            "volume          = %s\n"
            "secret-file     = %s\n"
            "partitions      = %" PRIu32 "\n"
            "request-timeout = %s\n"
            "join-timeout    = %s\n",
            when, cfg->name, cfg->volume, cfg->secret_file, cfg->partitions, timeout, join_timeout);
    for (int i = 0; i < cfg->nmembers; i++) {
        const rp_cluster_member_t *m = &cfg->members[i];
        fprintf(out,
                "\n[instance.%d]\n"
                "host         = %s\n"
                "port         = %d\n"
                "cluster-port = %d\n"
                "data-dir     = %s\n",
                m->id, m->host, m->port, m->cluster_port, m->data_dir);
    }
    fclose(out);

    /* The secret first: a configuration on disk never names a secret that is not there yet. */
    char hex[RP_CLUSTER_SECRET_LEN * 2 + 2];
    for (int i = 0; i < RP_CLUSTER_SECRET_LEN; i++)
        snprintf(hex + 2 * i, 3, "%02x", cfg->secret[i]);
    hex[RP_CLUSTER_SECRET_LEN * 2] = '\n';
    hex[RP_CLUSTER_SECRET_LEN * 2 + 1] = '\0';
    rc = write_atomically(cfg->secret_file, hex, RP_CLUSTER_SECRET_LEN * 2 + 1, 0600);
    explicit_bzero(hex, sizeof(hex));
    if (!rc)
        rc = write_atomically(path, text, len, 0644);
    free(text);
    return rc;
}
