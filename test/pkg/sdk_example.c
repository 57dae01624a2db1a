/*
 * sdk_example.c - the README's "The SDK in C" example as a whole program, built against an
 * installed userevents (pkg-config --cflags --libs libuserevents libenrich libwhsink) by
 * test/pkg/install.sh and test/pkg/deb.sh.
 *
 * It needs no broker: the bootstrap server is a closed port, so the event goes to the spool
 * (a directory given as argv[1]) and stays there; ue_client_destroy() gives up after
 * shutdown.timeout.ms (1 s) and leaves it for the next process, as the README says. It also
 * checks what an installed copy must get right: the header and the library agree on the
 * version, configuration reads back, and the other two libraries link and load.
 */
#include <enrich.h>
#include <userevents.h>
#include <whsink.h>

#include <stdio.h>
#include <string.h>

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "sdk_example: " __VA_ARGS__);                                          \
            fputc('\n', stderr);                                                                   \
            return 1;                                                                              \
        }                                                                                          \
    } while (0)

static int check_versions(void)
{
    CHECK(ue_version() == UE_VERSION, "libuserevents %s is not its header's (0x%08x)",
          ue_version_str(), UE_VERSION);
    CHECK(enr_version() == ENR_VERSION && whs_version() == WHS_VERSION,
          "libenrich %s / libwhsink %s are not their headers'", enr_version_str(),
          whs_version_str());
    CHECK(!strcmp(ue_version_str(), enr_version_str()) &&
              !strcmp(ue_version_str(), whs_version_str()),
          "versions differ: %s %s %s", ue_version_str(), enr_version_str(), whs_version_str());
    printf("libuserevents %s, libenrich %s, libwhsink %s\n", ue_version_str(), enr_version_str(),
           whs_version_str());
    return 0;
}

int main(int argc, char **argv)
{
    char errstr[512], value[64];
    size_t value_size = sizeof(value);
    CHECK(argc == 2, "usage: sdk_example SPOOL_DIR");
    if (check_versions())
        return 1;

    /* The README's example, with a closed port for the broker and a short shutdown. */
    ue_conf_t *conf = ue_conf_new();
    CHECK(ue_conf_set(conf, "kafka.bootstrap.servers", "127.0.0.1:1", errstr, sizeof(errstr)) ==
                  UE_CONF_OK &&
              ue_conf_set(conf, "spool.dir", argv[1], errstr, sizeof(errstr)) == UE_CONF_OK &&
              ue_conf_set(conf, "context.app.name", "shop", errstr, sizeof(errstr)) == UE_CONF_OK &&
              ue_conf_set(conf, "shutdown.timeout.ms", "1000", errstr, sizeof(errstr)) ==
                  UE_CONF_OK,
          "ue_conf_set: %s", errstr);
    CHECK(ue_conf_set(conf, "no.such.key", "1", errstr, sizeof(errstr)) == UE_CONF_UNKNOWN,
          "an unknown key was accepted");
    CHECK(ue_conf_get(conf, "context.app.name", value, &value_size) == UE_CONF_OK &&
              !strcmp(value, "shop"),
          "ue_conf_get(context.app.name) did not read back \"shop\"");
    ue_client_t *ue = ue_client_new(conf, errstr, sizeof(errstr)); /* takes conf */
    if (!ue) {
        fprintf(stderr, "%s\n", errstr);
        return 1;
    }

    ue_identify(ue, "user-42");
    ue_event_t *ev = ue_event_new("purchase");
    ue_event_prop_string(ev, "sku", "A-113");
    ue_event_prop_double(ev, "amount", 19.90);
    ue_err_t err = ue_track(ue, ev); /* never blocks on I/O */
    ue_event_destroy(ev);
    CHECK(err == UE_OK, "ue_track: %s", ue_err2str(err));

    err = ue_flush_spooled(ue, 5000); /* safe on disk: the broker is not needed for that */
    CHECK(err == UE_OK, "ue_flush_spooled: %s", ue_err2str(err));
    int64_t spooled = ue_stat(ue, UE_STAT_SPOOLED), delivered = ue_stat(ue, UE_STAT_DELIVERED);
    ue_client_destroy(ue); /* flushes; the rest waits in the spool */
    CHECK(spooled == 1 && delivered == 0, "expected 1 event spooled, 0 delivered; got %lld, %lld",
          (long long)spooled, (long long)delivered);
    printf("tracked 1 event with no broker: spooled in %s\n", argv[1]);
    return 0;
}
