/*
 * gen_corpus.c - writes the seed corpora of the fuzz targets: valid spool frames made with
 * ue__frame_encode from records holding real encoded events, the usual damage (torn tail,
 * corrupt middle frame, bad CRC), and valid encoded events. Valid inputs get the fuzzer past
 * the magic, the length checks and the CRC from its first execution.
 *
 * For the other targets: EnrichedEvent records (whs_map), request bodies with their choice
 * byte (collector_body: JSON and protobuf batches, identity, gzip and zstd), and every key of
 * the three property tables at its default (conf). Text seeds (URLs, user agents) are kept in
 * test/fuzz/corpus/ as they are.
 *
 *   gen_corpus OUTDIR     writes OUTDIR/<target without fuzz_>/<seed>
 *
 * run.sh regenerates them on every run.
 */
#include "collector.pb-c.h"
#include "deep_pb.h"
#include "fuzz_util.h"
#include "uc_props.h"
#include "userevents.pb-c.h"
#include "whs_testevents.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

/* The property tables (each library's conf.c; internal names, reachable from tests). */
extern const uc__prop_t ue__conf_props[], enr__conf_props[], whs__conf_props[];

static const char *outdir;

static void save(const char *target, const char *name, const uint8_t *buf, size_t len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", outdir, target);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        perror(path);
        exit(1);
    }
    snprintf(path, sizeof(path), "%s/%s/%s", outdir, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

/* Concatenates a prefix and a body into a fresh seed. */
static void save2(const char *target, const char *name, const uint8_t *pre, size_t pre_len,
                  const uint8_t *body, size_t len)
{
    uint8_t *buf = malloc(pre_len + len + 1);
    memcpy(buf, pre, pre_len);
    memcpy(buf + pre_len, body, len);
    save(target, name, buf, pre_len + len);
    free(buf);
}

/* An event as the SDK encodes it: nested properties and a context, when @p full. */
static size_t make_event(int i, int full, uint8_t *out, size_t cap)
{
    Userevents__Event e = USEREVENTS__EVENT__INIT;
    Userevents__Context c = USEREVENTS__CONTEXT__INIT;
    Userevents__Value v[6], *list_items[2];
    Userevents__ListValue list = USEREVENTS__LIST_VALUE__INIT;
    Userevents__MapValue map = USEREVENTS__MAP_VALUE__INIT;
    Userevents__MapValue__FieldsEntry fe = USEREVENTS__MAP_VALUE__FIELDS_ENTRY__INIT, *fep = &fe;
    Userevents__Event__PropertiesEntry pe[4], *pep[4];
    uint8_t id[16];

    for (int k = 0; k < 6; k++)
        userevents__value__init(&v[k]);
    for (int k = 0; k < 16; k++)
        id[k] = (uint8_t)(0x10 * i + k);
    e.event_id.data = id;
    e.event_id.len = 16;
    e.type = i % 2 ? "click" : "page_view";
    e.user_id = "user-42";
    e.anonymous_id = "anon-7";
    e.session_id = "sess-1";
    e.timestamp_ms = 1700000000000 + i;
    e.schema_version = 1;
    if (full) {
        v[0].kind_case = USEREVENTS__VALUE__KIND_STRING_VALUE;
        v[0].string_value = "/home";
        v[1].kind_case = USEREVENTS__VALUE__KIND_INT_VALUE;
        v[1].int_value = -3;
        v[2].kind_case = USEREVENTS__VALUE__KIND_DOUBLE_VALUE;
        v[2].double_value = 2.5;
        v[3].kind_case = USEREVENTS__VALUE__KIND_BOOL_VALUE;
        v[3].bool_value = 1;
        list_items[0] = &v[1];
        list_items[1] = &v[3];
        list.n_values = 2;
        list.values = list_items;
        v[4].kind_case = USEREVENTS__VALUE__KIND_LIST_VALUE;
        v[4].list_value = &list;
        fe.key = "nested";
        fe.value = &v[2];
        map.n_fields = 1;
        map.fields = &fep;
        v[5].kind_case = USEREVENTS__VALUE__KIND_MAP_VALUE;
        v[5].map_value = &map;
        const char *keys[4] = {"path", "count", "tags", "extra"};
        Userevents__Value *vals[4] = {&v[0], &v[1], &v[4], &v[5]};
        for (int k = 0; k < 4; k++) {
            userevents__event__properties_entry__init(&pe[k]);
            pe[k].key = (char *)keys[k];
            pe[k].value = vals[k];
            pep[k] = &pe[k];
        }
        e.n_properties = 4;
        e.properties = pep;
        c.app_name = "shop";
        c.app_version = "1.2.3";
        c.os_name = "linux";
        c.screen_width = 1920;
        c.screen_height = 1080;
        c.library_name = "userevents";
        e.context = &c;
    }
    size_t n = userevents__event__get_packed_size(&e);
    if (n > cap)
        abort();
    return userevents__event__pack(&e, out);
}

/* Serializes @p n records (events i0.., alternately full) into @p out; returns the length. */
static size_t make_records(int i0, int n, uint8_t *out)
{
    size_t off = 0;
    for (int i = i0; i < i0 + n; i++) {
        uint8_t ev[1024];
        size_t ev_len = make_event(i, i % 2, ev, sizeof(ev));
        const char *type = i % 2 ? "click" : "page_view";
        ue__record_t *r =
            ue__record_new(type, strlen(type), i % 3 ? "user-42" : "", i % 3 ? 7 : 0, ev_len);
        r->schema_version = 1;
        memcpy(r->event_id, ev + 2, 16); /* field 1 tag and length, then the id */
        memcpy(ue__record_payload(r), ev, ev_len);
        ue__record_spool_write(r, out + off);
        off += ue__record_spool_size(r);
        free(r);
    }
    return off;
}

/* Appends a frame of @p n records with sequence numbers from @p seq; returns its length. */
static size_t add_frame(ZSTD_CCtx *cctx, fuzz_buf_t *img, int i0, int n, uint64_t seq)
{
    uint8_t raw[16384];
    size_t raw_len = make_records(i0, n, raw);
    fuzz_buf_reserve(img, ue__frame_bound(raw_len));
    size_t len = ue__frame_encode(cctx, 3, raw, raw_len, (uint32_t)n, seq, img->p + img->len,
                                  img->cap - img->len);
    if (!len)
        abort();
    img->len += len;
    return len;
}

/* Appends one fuzz_build_image() chunk describing @p n records. */
static void add_chunk(fuzz_buf_t *d, uint8_t ctl, int i0, int n)
{
    uint8_t raw[16384];
    size_t raw_len = make_records(i0, n, raw);
    uint8_t hdr[4] = {ctl, (uint8_t)n, (uint8_t)raw_len, (uint8_t)(raw_len >> 8)};
    fuzz_buf_reserve(d, sizeof(hdr) + raw_len);
    memcpy(d->p + d->len, hdr, 4);
    memcpy(d->p + d->len + 4, raw, raw_len);
    d->len += 4 + raw_len;
}

static void spool_seeds(ZSTD_CCtx *cctx)
{
    fuzz_buf_t one = {0}, three = {0}, desc = {0}, raw = {0};
    size_t lens[3];

    add_frame(cctx, &one, 0, 3, 1);
    lens[0] = add_frame(cctx, &three, 0, 2, 1);
    lens[1] = add_frame(cctx, &three, 2, 3, 3);
    lens[2] = add_frame(cctx, &three, 5, 1, 6);
    add_chunk(&desc, 0, 0, 2);
    add_chunk(&desc, 0, 2, 1);
    add_chunk(&desc, 5, 3, 3); /* a gap of 5 seqs: a frame dropped by a cap */
    fuzz_buf_reserve(&raw, 16384);
    raw.len = make_records(0, 4, raw.p);

    uint8_t m0 = 0, m1 = 1, m2 = 2, m3 = 3, m6 = 6;
    uint8_t h_plain[4] = {0, 0, 0, 0}; /* spool_dir: flags, acks, torn/name, split point */
    save2("spool_frames", "m0_one_frame", &m0, 1, one.p, one.len);
    save2("spool_frames", "m0_three_frames", &m0, 1, three.p, three.len);
    save2("spool_frames", "m0_torn_tail", &m0, 1, three.p, three.len - lens[2] / 2);
    uint8_t *bad = malloc(three.len);
    memcpy(bad, three.p, three.len);
    bad[lens[0] + UE__FRAME_HDR + 3] ^= 0x20; /* a bit flip in the middle frame's payload */
    save2("spool_frames", "m0_corrupt_middle", &m0, 1, bad, three.len);
    save2("spool_frames", "m1_corrupt_middle", &m1, 1, bad, three.len);
    save2("spool_dir", "corrupt_middle", h_plain, 4, bad, three.len);
    bad[lens[0] + 24] ^= 1; /* and only a bad CRC */
    bad[lens[0] + UE__FRAME_HDR + 3] ^= 0x20;
    save2("spool_frames", "m1_bad_crc", &m1, 1, bad, three.len);
    save2("spool_frames", "m2_chunks", &m2, 1, desc.p, desc.len);
    save2("spool_frames", "m6_chunks_near_max", &m6, 1, desc.p, desc.len);
    save2("spool_frames", "m3_records", &m3, 1, raw.p, raw.len);

    /* spool_dir: flags, ack entries, torn/name, split point, then image and acks. */
    save2("spool_dir", "plain", h_plain, 4, three.p, three.len);
    save2("spool_dir", "torn_tail", h_plain, 4, three.p, three.len - lens[2] / 2);
    uint8_t h_split[4] = {4, 0, 0, 128};
    save2("spool_dir", "split", h_split, 4, three.p, three.len);
    uint8_t h_caps[4] = {4 | 32, 0, 0, 160}; /* CAPS: the first segment is dropped */
    save2("spool_dir", "split_caps", h_caps, 4, three.p, three.len);
    uint64_t acks[3] = {2, 3, 6};
    fuzz_buf_t d = {0};
    fuzz_buf_reserve(&d, three.len + sizeof(acks) + 4);
    memcpy(d.p, three.p, three.len);
    memcpy(d.p + three.len, acks, sizeof(acks));
    memcpy(d.p + three.len + sizeof(acks), "\x05\x00\x00\x00", 4); /* a torn ack */
    uint8_t h_acks[4] = {0, 3, 4, 0};
    save2("spool_dir", "acks", h_acks, 4, d.p, three.len + sizeof(acks) + 4);
    uint8_t compact[4] = {1, 0, 4, 0}; /* offsets 1 and 4 from the name */
    memcpy(d.p + three.len, compact, 4);
    uint8_t h_compact[4] = {2, 2, 0, 0};
    save2("spool_dir", "acks_compact", h_compact, 4, d.p, three.len + 4);
    uint8_t h_build[4] = {16 | 2, 2, 0, 0};
    fuzz_buf_reserve(&desc, 4);
    memcpy(desc.p + desc.len, compact, 4);
    save2("spool_dir", "build_acks", h_build, 4, desc.p, desc.len + 4);

    /* A last frame far beyond what a segment may span: the scan keeps it, the spool ignores it. */
    fuzz_buf_t far = {0};
    add_chunk(&far, 0, 0, 2);
    add_chunk(&far, 63, 2, 1);
    fuzz_buf_reserve(&far, 2);
    memcpy(far.p + far.len, "\x00\x00", 2); /* acks the first record */
    uint8_t h_far[4] = {16 | 2, 1, 0, 0};
    save2("spool_dir", "build_far_frame", h_far, 4, far.p, far.len + 2);
    fuzz_buf_free(&far);

    free(bad);
    fuzz_buf_free(&d);
    fuzz_buf_free(&one);
    fuzz_buf_free(&three);
    fuzz_buf_free(&desc);
    fuzz_buf_free(&raw);
}

static void event_seeds(void)
{
    uint8_t ev[1024];
    size_t n = make_event(1, 0, ev, sizeof(ev));
    save("event_decode", "minimal", ev, n);
    n = make_event(2, 1, ev, sizeof(ev));
    save("event_decode", "full", ev, n);

    /* As sent: the transport appends sent_at (field 7) to the encoded event. */
    ue__record_t *r = ue__record_new("t", 1, "", 0, n);
    memcpy(ue__record_payload(r), ev, n);
    size_t stamped = ue__record_stamp_sent_at(r, 1700000000123);
    save("event_decode", "full_sent_at", ue__record_payload(r), stamped);
    free(r);
}

/*
 * fuzz_pb_nesting reads every input both as wire data and as a recipe (depth, type, one op
 * byte per level): raw messages nested at, just past and far past the limit, and recipes.
 */
static void nesting_seeds(void)
{
    static const struct {
        const char *name;
        uint8_t *(*make)(int lists, size_t *len);
        int lists;
    } raw[] = {
        {"event_at_limit", dp_event, 14},       {"event_past_limit", dp_event, 15},
        {"event_6000", dp_event, 6000},         {"enriched_at_limit", dp_enriched, 14},
        {"profile_past_limit", dp_profile, 15}, {"batch_6000", dp_batch, 6000},
    };
    for (size_t i = 0; i < sizeof(raw) / sizeof(raw[0]); i++) {
        size_t len;
        uint8_t *buf = raw[i].make(raw[i].lists, &len);
        save("pb_nesting", raw[i].name, buf, len);
        free(buf);
    }
    /* recipes: 14 lists in an Event; 15 levels of maps in a profile; 6,000 mixed levels */
    save("pb_nesting", "recipe_lists_14", (const uint8_t *)"\x00\x0e\x00\x00", 4);
    save("pb_nesting", "recipe_maps_15", (const uint8_t *)"\x00\x0f\x02\x01", 4);
    save("pb_nesting", "recipe_mixed_6000", (const uint8_t *)"\x17\x70\x03\x00\x01\x06", 6);
}

/* fuzz_whs_map: records as the sink reads them, from the libwhsink tests' stream. */
static void whs_map_seeds(void)
{
    static const wt_opts_t opts[] = {
        {.nonce = 1},
        {.nonce = 2, .extra_key = "plan", .extra_val = "team"},
        {.nonce = 3, .bad_city = "K\xf6ln"}, /* Latin-1: repaired or dead-lettered */
        {.nonce = 4, .step_ms = 86400000},   /* a day apart: another dt */
    };
    for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
        char name[32];
        size_t len;
        uint8_t *buf = wt_event(i * 7 + 1, &opts[i], &len);
        snprintf(name, sizeof(name), "record_%zu", i);
        save("whs_map", name, buf, len);
        free(buf);
    }
}

/* Compresses @p in with gzip (@p encoding 1) or zstd (2) into @p out; returns the size. */
static size_t squeeze(int encoding, const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
    if (encoding == 2)
        return ZSTD_compress(out, cap, in, len, 3);
    z_stream zs = {0};
    deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
    zs.next_in = (Bytef *)in, zs.avail_in = (uInt)len;
    zs.next_out = out, zs.avail_out = (uInt)cap;
    deflate(&zs, Z_FINISH);
    size_t n = zs.total_out;
    deflateEnd(&zs);
    return n;
}

/* Saves @p body as collector_body seeds: plain, compressed by the harness (bit 3) and
 * compressed here (the decoder reads real gzip and zstd streams). @p json: bit 2. */
static void body_seeds(const char *name, const uint8_t *body, size_t len, int json)
{
    uint8_t ctl, *packed = malloc(len + 1024);
    char seed[64];
    for (int enc = 0; enc < 3; enc++) {
        ctl = (uint8_t)(enc | json << 2 | (enc ? 8 : 0));
        snprintf(seed, sizeof(seed), "%s_%s", name,
                 enc == 0   ? "identity"
                 : enc == 1 ? "gzip"
                            : "zstd");
        save2("collector_body", seed, &ctl, 1, body, len);
        if (!enc)
            continue;
        ctl = (uint8_t)(enc | json << 2);
        size_t n = squeeze(enc, body, len, packed, len + 1024);
        snprintf(seed, sizeof(seed), "%s_%s_raw", name, enc == 1 ? "gzip" : "zstd");
        save2("collector_body", seed, &ctl, 1, packed, n);
    }
    free(packed);
}

static void collector_body_seeds(void)
{
    static const char json[] =
        "{\"batch\":[{\"type\":\"click\",\"event_id\":\"01890a5d-ac96-774b-bcce-b302099a8057\","
        "\"user_id\":\"u1\",\"session_id\":\"s1\",\"timestamp\":\"2026-09-21T14:13:20.250Z\","
        "\"sent_at\":1790000000300,\"properties\":{\"button\":\"buy\",\"amount\":19.9,\"n\":3,"
        "\"ok\":true,\"tags\":[\"a\",{\"b\":1}]},\"context\":{\"app\":{\"name\":\"web\"},"
        "\"locale\":\"en-GB\",\"screen.width\":1280,\"ip\":\"198.51.100.4\"}},"
        "{\"type\":\"page_view\",\"anonymous_id\":\"a-9\",\"timestamp\":1790000000000}]}";
    body_seeds("json_batch", (const uint8_t *)json, sizeof(json) - 1, 1);
    static const char timed[] = "[{\"type\":\"t\",\"user_id\":\"u\",\"timestamp\":4000000000000}]";
    body_seeds("json_future", (const uint8_t *)timed, sizeof(timed) - 1, 1);

    /* Three SDK events, stamped near the harness's receive time so that the collector's
     * checks go past the timestamp: the minimal one, one with every kind of property the
     * collector takes and a context, and the full one (nested properties: refused). */
    uint8_t ev[3][1024], *out;
    ProtobufCBinaryData items[3];
    for (int i = 0; i < 3; i++) {
        size_t n = make_event(i + 1, i == 2, ev[i], sizeof(ev[i]));
        Userevents__Event *e = userevents__event__unpack(NULL, n, ev[i]);
        Userevents__Context c = USEREVENTS__CONTEXT__INIT;
        Userevents__Value v[4];
        Userevents__Event__PropertiesEntry pe[4], *pep[4];
        Userevents__Event saved = *e; /* what free_unpacked must see again */
        e->timestamp_ms = 1790000000000 - 1000 * (i + 1);
        if (i == 1) {
            static const char *const keys[] = {"s", "i", "d", "b"};
            for (int k = 0; k < 4; k++) {
                userevents__value__init(&v[k]);
                userevents__event__properties_entry__init(&pe[k]);
                pe[k].key = (char *)keys[k];
                pe[k].value = &v[k];
                pep[k] = &pe[k];
            }
            v[0].kind_case = USEREVENTS__VALUE__KIND_STRING_VALUE, v[0].string_value = "x";
            v[1].kind_case = USEREVENTS__VALUE__KIND_INT_VALUE, v[1].int_value = -3;
            v[2].kind_case = USEREVENTS__VALUE__KIND_DOUBLE_VALUE, v[2].double_value = 0.5;
            v[3].kind_case = USEREVENTS__VALUE__KIND_BOOL_VALUE, v[3].bool_value = 1;
            e->n_properties = 4;
            e->properties = pep;
            c.app_name = "app", c.os_name = "Android", c.locale = "de-DE", c.ip = "192.0.2.1";
            c.user_agent = "Mozilla/5.0 (Linux; Android 13)";
            c.screen_width = 1080, c.screen_height = 2400;
            e->context = &c;
        }
        items[i].len = userevents__event__pack(e, ev[i]);
        items[i].data = ev[i];
        *e = saved;
        userevents__event__free_unpacked(e, NULL);
    }
    Userevents__EventBatch b = USEREVENTS__EVENT_BATCH__INIT;
    b.n_events = 2; /* the third alone below */
    b.events = items;
    size_t len = userevents__event_batch__get_packed_size(&b);
    out = malloc(len);
    userevents__event_batch__pack(&b, out);
    body_seeds("pb_batch", out, len, 0);
    uint8_t tiny = 0x10; /* identity, protobuf, the tiny caps: events over 256 bytes */
    save2("collector_body", "pb_batch_tiny_caps", &tiny, 1, out, len);
    free(out);
    b.n_events = 1;
    b.events = &items[2];
    len = userevents__event_batch__get_packed_size(&b);
    out = malloc(len);
    userevents__event_batch__pack(&b, out);
    body_seeds("pb_nested", out, len, 0);
    free(out);
}

/* fuzz_conf: every key of each property table at its default, one file per library. */
static void conf_seeds(void)
{
    static const struct {
        const char *name;
        const uc__prop_t *props;
    } tables[] = {{"sdk_defaults", ue__conf_props},
                  {"enrich_defaults", enr__conf_props},
                  {"sink_defaults", whs__conf_props}};
    for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++) {
        fuzz_buf_t text = {0};
        if (fuzz_buf_reserve(&text, 64))
            exit(1);
        text.len = (size_t)snprintf((char *)text.p, 64, "# dumped and copied too\n");
        for (const uc__prop_t *p = tables[t].props; p->name; p++) {
            size_t n = strlen(p->name) + strlen(p->def) + 2;
            if (fuzz_buf_reserve(&text, n + 1))
                exit(1);
            text.len +=
                (size_t)snprintf((char *)text.p + text.len, n + 1, "%s=%s\n", p->name, p->def);
        }
        save("conf", tables[t].name, text.p, text.len);
        fuzz_buf_free(&text);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
        return 2;
    }
    outdir = argv[1];
    if (mkdir(outdir, 0755) != 0 && errno != EEXIST) {
        perror(outdir);
        return 1;
    }
    ZSTD_CCtx *cctx = ZSTD_createCCtx();
    spool_seeds(cctx);
    event_seeds();
    nesting_seeds();
    whs_map_seeds();
    collector_body_seeds();
    conf_seeds();
    ZSTD_freeCCtx(cctx);
    return 0;
}
