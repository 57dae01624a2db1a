/*
 * test_enr_geoip.c - the "geoip" stage against a small MaxMind DB written at test time by
 * test/fixtures/make_mmdb.pl (skipped, saying why, when MaxMind::DB::Writer is missing):
 * IPv4, IPv6 and IPv4-mapped lookups, fields read when present and empty when not, an
 * address not found, bad addresses ignored, and a clear error for a database that is not.
 */
#include "enr_stagetest.h"
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

typedef struct fixture {
    char *dir;
    char *mmdb; /* NULL: the writer is not installed */
    enr_conf_t *conf;
    st_sink_t sink;
    st_event_t ev;
} fixture_t;

/* test/fixtures/, found from this file's path (tests run from the repository root). */
static void fixture_path(char *out, size_t size, const char *name)
{
    const char *file = __FILE__;
    const char *unit = strstr(file, "test/unit/");
    int prefix = unit ? (int)(unit - file) : 0;
    snprintf(out, size, "%.*stest/fixtures/%s", prefix, file, name);
}

static int setup_group(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    char script[512], cmd[2048];
    *state = f;
    if (!f || !(f->dir = tu_tempdir("enr-geoip")))
        return -1;
    fixture_path(script, sizeof(script), "make_mmdb.pl");
    if (access(script, R_OK)) {
        fprintf(stderr, "%s not found: run the tests from the repository root\n", script);
        return -1;
    }
    if (asprintf(&f->mmdb, "%s/test.mmdb", f->dir) < 0)
        return -1;
    snprintf(cmd, sizeof(cmd), "perl '%s' '%s'", script, f->mmdb);
    int rc = system(cmd);
    if (!WIFEXITED(rc) || WEXITSTATUS(rc) != 0) {
        if (!WIFEXITED(rc) || WEXITSTATUS(rc) != 77) {
            fprintf(stderr, "%s failed (exit %d)\n", cmd, WIFEXITED(rc) ? WEXITSTATUS(rc) : -1);
            return -1;
        }
        fprintf(stderr, "geoip tests skipped: install libmaxmind-db-writer-perl (setup.sh does)\n");
        free(f->mmdb);
        f->mmdb = NULL;
    }
    return 0;
}

static int teardown_group(void **state)
{
    fixture_t *f = *state;
    if (!f)
        return 0;
    if (f->dir)
        tu_rmrf(f->dir);
    free(f->dir);
    free(f->mmdb);
    free(f);
    return 0;
}

static int setup(void **state)
{
    fixture_t *f = *state;
    f->conf = enr_conf_new();
    st_sink_init(&f->sink);
    st_event_init(&f->ev);
    return f->conf ? 0 : -1;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    st_event_free(&f->ev);
    st_sink_free(&f->sink);
    enr_conf_destroy(f->conf);
    return 0;
}

/* Starts the stage on the fixture database (skips the test without it). */
static void start(fixture_t *f, st_stage_t *st)
{
    char errstr[512] = "";
    if (!f->mmdb)
        skip();
    assert_int_equal(enr_conf_set(f->conf, "geoip.database", f->mmdb, errstr, sizeof(errstr)),
                     ENR_CONF_OK);
    int rc = st_stage_start(st, enr__stage_geoip_new(&f->conf->s), &f->sink, &f->conf->s, errstr,
                            sizeof(errstr));
    if (rc)
        fail_msg("init: %s", errstr);
    assert_string_equal(st->def->name, "geoip");
}

static const Userevents__Geo *lookup(fixture_t *f, st_stage_t *st, const char *ip)
{
    f->ev.context.ip = (char *)ip;
    enr_event_t *e = st_event_ready(&f->ev, 0);
    assert_int_equal(st_process(st, e), ENR_KEEP);
    if (e->out.geo)
        assert_ptr_equal(e->out.geo, &e->geo);
    return e->out.geo;
}

static void test_geoip_reads_every_field_for_ipv4(void **state)
{
    fixture_t *f = *state;
    st_stage_t st;
    start(f, &st);
    const Userevents__Geo *g = lookup(f, &st, "81.2.69.142");
    assert_non_null(g);
    assert_true(g->found);
    assert_string_equal(g->country_code, "GB");
    assert_string_equal(g->country, "United Kingdom");
    assert_string_equal(g->region, "England");
    assert_string_equal(g->city, "London");
    assert_float_equal(g->latitude, 51.5142, 1e-9);
    assert_float_equal(g->longitude, -0.0931, 1e-9);
    assert_int_equal(g->asn, 20712);
    assert_string_equal(g->as_org, "Andrews & Arnold Ltd");
    st_stage_stop(&st);
}

static void test_geoip_reads_ipv6_and_ipv4_mapped_addresses(void **state)
{
    fixture_t *f = *state;
    st_stage_t st;
    start(f, &st);
    const Userevents__Geo *g = lookup(f, &st, "2001:db8:1::42");
    assert_non_null(g);
    assert_true(g->found);
    assert_string_equal(g->country_code, "DE");
    assert_string_equal(g->region, "Bavaria");
    assert_string_equal(g->city, "Munich");
    assert_int_equal(g->asn, 3320);
    assert_string_equal(g->as_org, "Deutsche Telekom AG");
    g = lookup(f, &st, "::ffff:81.2.69.1");
    assert_non_null(g);
    assert_true(g->found);
    assert_string_equal(g->city, "London");
    st_stage_stop(&st);
}

static void test_geoip_leaves_absent_fields_empty(void **state)
{
    fixture_t *f = *state;
    st_stage_t st;
    start(f, &st);
    const Userevents__Geo *g = lookup(f, &st, "192.0.2.10"); /* no ASN; UTF-8 region */
    assert_true(g && g->found);
    assert_string_equal(g->country_code, "FR");
    assert_string_equal(g->region, "\xc3\x8ele-de-France");
    assert_string_equal(g->city, "Paris");
    assert_int_equal(g->asn, 0);
    assert_string_equal(g->as_org, "");
    g = lookup(f, &st, "198.51.100.7"); /* registered_country only */
    assert_true(g && g->found);
    assert_string_equal(g->country_code, "US");
    assert_string_equal(g->country, "United States");
    assert_string_equal(g->city, "");
    assert_string_equal(g->region, "");
    assert_float_equal(g->latitude, 0, 0);
    g = lookup(f, &st, "2001:db8:2::1"); /* ASN only */
    assert_true(g && g->found);
    assert_int_equal(g->asn, 64496);
    assert_string_equal(g->as_org, "Example AS (RFC 5398)");
    assert_string_equal(g->country_code, "");
    st_stage_stop(&st);
}

static void test_geoip_marks_an_address_not_in_the_database(void **state)
{
    fixture_t *f = *state;
    st_stage_t st;
    start(f, &st);
    const Userevents__Geo *g = lookup(f, &st, "8.8.8.8");
    assert_non_null(g);
    assert_false(g->found);
    assert_string_equal(g->country_code, "");
    g = lookup(f, &st, "2001:db8:3::1");
    assert_non_null(g);
    assert_false(g->found);
    st_stage_stop(&st);
}

static void test_geoip_ignores_what_is_not_an_address(void **state)
{
    fixture_t *f = *state;
    st_stage_t st;
    start(f, &st);
    const char *bad[] = {"",
                         "not an ip",
                         "999.1.1.1",
                         "81.2.69.142:443",
                         "81.2.69",
                         "fe80::1%eth0",
                         "::ffff:999.1.1.1",
                         " 81.2.69.142",
                         "2001:db8:1::42::1",
                         "81.2.69.142\n",
                         "2001:0db8:0001:0000:0000:0000:0000:0042:ffff:ffff"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (lookup(f, &st, bad[i]))
            fail_msg("\"%s\" gave a geo", bad[i]);
    char big[70000];
    memset(big, '1', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_null(lookup(f, &st, big));
    assert_null(lookup(f, &st, NULL));
    f->ev.ev.context = NULL;
    assert_null(lookup(f, &st, NULL));
    f->ev.ev.context = &f->ev.context;
    st_stage_stop(&st);
}

/* Lookups served from the record cache answer like the first ones, in any order. */
static void test_geoip_repeated_lookups_give_the_same_answers(void **state)
{
    fixture_t *f = *state;
    st_stage_t st;
    start(f, &st);
    static const struct {
        const char *ip, *city, *cc;
        uint32_t asn;
    } want[] = {
        {"81.2.69.142", "London", "GB", 20712}, {"192.0.2.200", "Paris", "FR", 0},
        {"198.51.100.1", "", "US", 0},          {"2001:db8:1::1", "Munich", "DE", 3320},
        {"2001:db8:2::ff", "", "", 64496},      {"::ffff:81.2.69.7", "London", "GB", 20712},
    };
    for (int i = 0; i < 3000; i++) {
        size_t k = (size_t)(i * 7 + i / 5) % (sizeof(want) / sizeof(want[0]));
        const Userevents__Geo *g = lookup(f, &st, want[k].ip);
        assert_true(g && g->found);
        assert_string_equal(g->city, want[k].city);
        assert_string_equal(g->country_code, want[k].cc);
        assert_int_equal(g->asn, want[k].asn);
    }
    st_stage_stop(&st);
}

static void test_geoip_off_when_no_database_is_configured(void **state)
{
    fixture_t *f = *state;
    st_stage_t st;
    char errstr[256] = "";
    assert_int_equal(st_stage_start(&st, enr__stage_geoip_new(&f->conf->s), &f->sink, &f->conf->s,
                                    errstr, sizeof(errstr)),
                     0);
    assert_null(lookup(f, &st, "81.2.69.142"));
    st_stage_stop(&st);
}

static void test_geoip_init_fails_clearly_for_a_bad_database(void **state)
{
    fixture_t *f = *state;
    st_stage_t st;
    char errstr[512] = "", path[600];
    assert_int_equal(enr_conf_set(f->conf, "geoip.database", "/nonexistent/GeoLite2-City.mmdb",
                                  errstr, sizeof(errstr)),
                     ENR_CONF_OK);
    assert_int_not_equal(st_stage_start(&st, enr__stage_geoip_new(&f->conf->s), &f->sink,
                                        &f->conf->s, errstr, sizeof(errstr)),
                         0);
    assert_non_null(strstr(errstr, "/nonexistent/GeoLite2-City.mmdb"));
    assert_non_null(strstr(errstr, "No such file"));
    st_stage_stop(&st);

    snprintf(path, sizeof(path), "%s/not.mmdb", f->dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("this is not a MaxMind DB file\n", fp);
    fclose(fp);
    assert_int_equal(enr_conf_set(f->conf, "geoip.database", path, errstr, sizeof(errstr)),
                     ENR_CONF_OK);
    errstr[0] = '\0';
    assert_int_not_equal(st_stage_start(&st, enr__stage_geoip_new(&f->conf->s), &f->sink,
                                        &f->conf->s, errstr, sizeof(errstr)),
                         0);
    assert_non_null(strstr(errstr, "geoip.database"));
    assert_non_null(strstr(errstr, "not.mmdb"));
    st_stage_stop(&st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_geoip_reads_every_field_for_ipv4, setup, teardown),
        cmocka_unit_test_setup_teardown(test_geoip_reads_ipv6_and_ipv4_mapped_addresses, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_geoip_leaves_absent_fields_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_geoip_marks_an_address_not_in_the_database, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_geoip_ignores_what_is_not_an_address, setup, teardown),
        cmocka_unit_test_setup_teardown(test_geoip_repeated_lookups_give_the_same_answers, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_geoip_off_when_no_database_is_configured, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_geoip_init_fails_clearly_for_a_bad_database, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, setup_group, teardown_group);
}
