/*
 * stage_geoip.c - the "geoip" stage: the event's context.ip looked up in a MaxMind DB
 * (geoip.database: GeoIP2/GeoLite2 City or Country, or an ASN database, or one with both).
 *
 * Read when present: country.iso_code and country.names.en (else registered_country's),
 * subdivisions[0].names.en (region), city.names.en, location.latitude/longitude,
 * autonomous_system_number and autonomous_system_organization.
 *
 * What the event gets:
 *   geoip.database empty          nothing: the stage passes events through untouched
 *   no ip, or not an IPv4/IPv6     nothing (bad input from a client is not an error)
 *   address not in the database   out.geo with found = false
 *   address found                 out.geo with found = true and the fields present
 * A database that cannot be opened fails init with the path and libmaxminddb's reason.
 *
 * The file is memory-mapped once; a lookup parses the address with inet_pton (no resolver,
 * no allocation). Addresses of one network (and networks with equal data) share one data
 * record, so the fields read from a record are kept in a direct-mapped cache keyed by its
 * offset (references into the mapped file, checked once): a hit skips libmaxminddb's path
 * walks. The strings are then copied into the event's arena.
 */
#include "event.h"
#include "htab.h"
#include "stage.h"
#include "uc_validate.h"

#include <arpa/inet.h>
#include <errno.h>
#include <maxminddb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_SLOTS 1024 /* a power of two */

/* A string inside the mapped database: valid UTF-8, not NUL-terminated. */
typedef struct ref {
    const char *p;
    uint32_t len;
} ref_t;

/* The fields of one data record. */
typedef struct record {
    uint32_t offset1; /* the record's offset + 1; 0: empty slot */
    ref_t country_code, country, region, city, as_org;
    double latitude, longitude;
    uint32_t asn;
} record_t;

typedef struct geoip {
    MMDB_s db;
    record_t cache[CACHE_SLOTS];
} geoip_t;

static const char *const COUNTRY_ISO[] = {"country", "iso_code", NULL};
static const char *const COUNTRY_NAME[] = {"country", "names", "en", NULL};
static const char *const REG_COUNTRY_ISO[] = {"registered_country", "iso_code", NULL};
static const char *const REG_COUNTRY_NAME[] = {"registered_country", "names", "en", NULL};
static const char *const REGION[] = {"subdivisions", "0", "names", "en", NULL};
static const char *const CITY[] = {"city", "names", "en", NULL};
static const char *const LATITUDE[] = {"location", "latitude", NULL};
static const char *const LONGITUDE[] = {"location", "longitude", NULL};
static const char *const ASN[] = {"autonomous_system_number", NULL};
static const char *const AS_ORG[] = {"autonomous_system_organization", NULL};

/* The string at @p path; empty when absent, not a string or not valid UTF-8. */
static ref_t get_ref(MMDB_entry_s *entry, const char *const *path)
{
    MMDB_entry_data_s d;
    ref_t r = {"", 0};
    if (MMDB_aget_value(entry, &d, path) == MMDB_SUCCESS && d.has_data &&
        d.type == MMDB_DATA_TYPE_UTF8_STRING && uc__utf8_valid(d.utf8_string, d.data_size)) {
        r.p = d.utf8_string;
        r.len = d.data_size;
    }
    return r;
}

static double get_double(MMDB_entry_s *entry, const char *const *path)
{
    MMDB_entry_data_s d;
    if (MMDB_aget_value(entry, &d, path) != MMDB_SUCCESS || !d.has_data)
        return 0;
    if (d.type == MMDB_DATA_TYPE_DOUBLE)
        return d.double_value;
    return d.type == MMDB_DATA_TYPE_FLOAT ? d.float_value : 0;
}

static uint32_t get_uint32(MMDB_entry_s *entry, const char *const *path)
{
    MMDB_entry_data_s d;
    if (MMDB_aget_value(entry, &d, path) != MMDB_SUCCESS || !d.has_data)
        return 0;
    switch (d.type) {
    case MMDB_DATA_TYPE_UINT16: return d.uint16;
    case MMDB_DATA_TYPE_UINT32: return d.uint32;
    case MMDB_DATA_TYPE_UINT64: return d.uint64 > UINT32_MAX ? 0 : (uint32_t)d.uint64;
    case MMDB_DATA_TYPE_INT32: return d.int32 < 0 ? 0 : (uint32_t)d.int32;
    default: return 0;
    }
}

static void read_record(MMDB_entry_s *entry, record_t *r)
{
    r->offset1 = entry->offset + 1;
    r->country_code = get_ref(entry, COUNTRY_ISO);
    r->country = get_ref(entry, COUNTRY_NAME);
    if (!r->country_code.len && !r->country.len) {
        r->country_code = get_ref(entry, REG_COUNTRY_ISO);
        r->country = get_ref(entry, REG_COUNTRY_NAME);
    }
    r->region = get_ref(entry, REGION);
    r->city = get_ref(entry, CITY);
    r->latitude = get_double(entry, LATITUDE);
    r->longitude = get_double(entry, LONGITUDE);
    r->asn = get_uint32(entry, ASN);
    r->as_org = get_ref(entry, AS_ORG);
}

/* The fields of @p entry's record, from the cache or read into it. */
static const record_t *record_of(geoip_t *g, MMDB_entry_s *entry)
{
    record_t *r = &g->cache[enr__mix64(entry->offset) & (CACHE_SLOTS - 1)];
    if (r->offset1 != entry->offset + 1)
        read_record(entry, r);
    return r;
}

/* @p r as a NUL-terminated string in the event's arena ("" when out of memory). */
static char *copy(enr_event_t *e, ref_t r)
{
    char *s = r.len ? uc__arena_alloc(e->arena, (size_t)r.len + 1) : NULL;
    if (!s)
        return (char *)"";
    memcpy(s, r.p, r.len);
    s[r.len] = '\0';
    return s;
}

static void fill(enr_event_t *e, const record_t *r)
{
    Userevents__Geo *g = &e->geo;
    g->country_code = copy(e, r->country_code);
    g->country = copy(e, r->country);
    g->region = copy(e, r->region);
    g->city = copy(e, r->city);
    g->latitude = r->latitude;
    g->longitude = r->longitude;
    g->asn = r->asn;
    g->as_org = copy(e, r->as_org);
}

/* Parses @p ip as IPv4 or IPv6 into @p sa; 0, or -1 when it is neither. */
static int parse_ip(const char *ip, struct sockaddr_storage *sa)
{
    char buf[INET6_ADDRSTRLEN + 1];
    size_t len = strnlen(ip, sizeof(buf));
    if (len == 0 || len == sizeof(buf))
        return -1;
    memcpy(buf, ip, len + 1);
    memset(sa, 0, sizeof(*sa));
    if (strchr(buf, ':')) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)sa;
        in6->sin6_family = AF_INET6;
        return inet_pton(AF_INET6, buf, &in6->sin6_addr) == 1 ? 0 : -1;
    }
    struct sockaddr_in *in4 = (struct sockaddr_in *)sa;
    in4->sin_family = AF_INET;
    return inet_pton(AF_INET, buf, &in4->sin_addr) == 1 ? 0 : -1;
}

static enr_verdict_t geoip_process(void *state, enr_event_t *e, enr_ctx_t *ctx, void *opaque)
{
    (void)ctx, (void)opaque;
    geoip_t *g = state;
    const char *ip = e->ev->context ? e->ev->context->ip : NULL;
    struct sockaddr_storage sa;
    int mmdb_error;
    if (!g || !ip || parse_ip(ip, &sa))
        return ENR_KEEP;
    MMDB_lookup_result_s res = MMDB_lookup_sockaddr(&g->db, (struct sockaddr *)&sa, &mmdb_error);
    if (mmdb_error != MMDB_SUCCESS)
        return ENR_KEEP; /* e.g. an IPv6 address in an IPv4-only database */
    e->geo.found = res.found_entry;
    if (res.found_entry)
        fill(e, record_of(g, &res.entry));
    e->out.geo = &e->geo;
    return ENR_KEEP;
}

static int geoip_init(void **state, void *opaque, char *errstr, size_t errstr_size)
{
    const enr__settings_t *s = opaque;
    const char *path = s ? s->geoip_database : NULL;
    *state = NULL;
    if (!path || !*path)
        return 0; /* geo-IP off */
    geoip_t *g = calloc(1, sizeof(*g));
    if (!g) {
        uc__errstr(errstr, errstr_size, "out of memory");
        return -1;
    }
    errno = 0;
    int rc = MMDB_open(path, MMDB_MODE_MMAP, &g->db);
    if (rc != MMDB_SUCCESS) {
        if ((rc == MMDB_FILE_OPEN_ERROR || rc == MMDB_IO_ERROR) && errno)
            uc__errstr(errstr, errstr_size, "geoip.database \"%s\": %s: %s", path,
                       MMDB_strerror(rc), strerror(errno));
        else
            uc__errstr(errstr, errstr_size, "geoip.database \"%s\": %s", path, MMDB_strerror(rc));
        free(g);
        return -1;
    }
    *state = g;
    return 0;
}

static void geoip_destroy(void *state, void *opaque)
{
    (void)opaque;
    geoip_t *g = state;
    if (!g)
        return;
    MMDB_close(&g->db);
    free(g);
}

enr_stage_t *enr__stage_geoip_new(const enr__settings_t *s)
{
    enr_stage_t *st = enr_stage_new("geoip", geoip_process, (void *)s);
    if (!st)
        return NULL;
    enr_stage_set_init(st, geoip_init);
    enr_stage_set_destroy(st, geoip_destroy);
    return st;
}
