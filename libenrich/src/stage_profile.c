/*
 * stage_profile.c - the "profile" stage: joins each event with its user's profile.
 *
 * The table maps user id -> UserProfile (proto/enriched.proto), filled by enr__profile_put()
 * from the compacted profile topic (key user id, value UserProfile, empty value: deleted) or
 * by enr_pipeline_put_profile(). The topic is the source of truth, so the stage writes no
 * changelog: a restart reads the topic again.
 *
 * process() sets out.profile to the table's message for the event's user id (borrowed: valid
 * until the next enr__profile_put(), which runs on the same thread between events). An event
 * without a user id, or whose user has no profile, is kept without one.
 *
 * A value that does not decode, has no user id (neither key nor field), or holds invalid UTF-8
 * (it would make every enriched event of that user unreadable downstream) is refused.
 */
#include "event.h"
#include "htab.h"
#include "stage.h"
#include "uc_pbdecode.h"
#include "uc_validate.h"

#include <stdlib.h>
#include <string.h>

typedef struct profile {
    enr__hnode_t node; /* first member: hash of the key */
    Userevents__UserProfile *p;
    size_t key_len;
    char key[];
} profile_t;

typedef struct profiles {
    enr__htab_t table;
} profiles_t;

static profile_t *find(const profiles_t *ps, const char *key, size_t len, uint64_t h)
{
    for (enr__hnode_t *n = enr__htab_chain(&ps->table, h); n; n = n->next) {
        profile_t *pr = (profile_t *)n;
        if (n->hash == h && pr->key_len == len && !memcmp(pr->key, key, len))
            return pr;
    }
    return NULL;
}

static int str_ok(const char *s)
{
    return !s || uc__utf8_valid(s, strlen(s));
}

/* Recursion bounded by the decoder: uc__pb_unpack() refused a profile nested deeper. */
static int value_ok(const Userevents__Value *v)
{
    if (!v)
        return 1;
    switch (v->kind_case) {
    case USEREVENTS__VALUE__KIND_STRING_VALUE: return str_ok(v->string_value);
    case USEREVENTS__VALUE__KIND_LIST_VALUE:
        for (size_t i = 0; v->list_value && i < v->list_value->n_values; i++)
            if (!value_ok(v->list_value->values[i]))
                return 0;
        return 1;
    case USEREVENTS__VALUE__KIND_MAP_VALUE:
        for (size_t i = 0; v->map_value && i < v->map_value->n_fields; i++)
            if (!str_ok(v->map_value->fields[i]->key) ||
                !value_ok(v->map_value->fields[i]->value))
                return 0;
        return 1;
    default: return 1;
    }
}

static int profile_ok(const Userevents__UserProfile *p)
{
    if (!str_ok(p->user_id) || !str_ok(p->name) || !str_ok(p->email) || !str_ok(p->plan) ||
        !str_ok(p->country))
        return 0;
    for (size_t i = 0; i < p->n_traits; i++)
        if (!str_ok(p->traits[i]->key) || !value_ok(p->traits[i]->value))
            return 0;
    return 1;
}

static void profile_delete(profiles_t *ps, const char *key)
{
    size_t len = strlen(key);
    profile_t *pr = find(ps, key, len, enr__hash64(key, len));
    if (!pr)
        return;
    enr__htab_remove(&ps->table, &pr->node);
    userevents__user_profile__free_unpacked(pr->p, NULL);
    free(pr);
}

/* Stores @p p (owned from now on) under @p key. 0, or -1 when out of memory (p freed). */
static int profile_store(profiles_t *ps, const char *key, Userevents__UserProfile *p)
{
    size_t len = strlen(key);
    uint64_t h = enr__hash64(key, len);
    profile_t *pr = find(ps, key, len, h);
    if (pr) {
        userevents__user_profile__free_unpacked(pr->p, NULL);
        pr->p = p;
        return 0;
    }
    if (!(pr = malloc(sizeof(*pr) + len + 1))) {
        userevents__user_profile__free_unpacked(p, NULL);
        return -1;
    }
    pr->node.hash = h;
    pr->p = p;
    pr->key_len = len;
    memcpy(pr->key, key, len + 1);
    enr__htab_insert(&ps->table, &pr->node);
    return 0;
}

int enr__profile_put(void *profile_state, const char *user_id, const void *value, size_t len,
                     char *reason, size_t reason_size)
{
    profiles_t *ps = profile_state;
    if (!ps) {
        uc__errstr(reason, reason_size, "no profile stage");
        return -1;
    }
    if (!value || len == 0) {
        if (!user_id || !*user_id) {
            uc__errstr(reason, reason_size, "a deletion without a user id");
            return -1;
        }
        profile_delete(ps, user_id);
        return 0;
    }
    int err;
    Userevents__UserProfile *p = (Userevents__UserProfile *)uc__pb_unpack(
        &userevents__user_profile__descriptor, NULL, len, value, UC__PB_MAX_DEPTH, &err);
    if (!p) {
        uc__errstr(reason, reason_size, "not a userevents.UserProfile: %s", uc__pb_strerror(err));
        return -1;
    }
    const char *key = user_id && *user_id ? user_id : p->user_id;
    const char *bad = NULL;
    if (!key || !*key)
        bad = "no user id (neither key nor field)";
    else if (!profile_ok(p) || !str_ok(key))
        bad = "invalid UTF-8";
    if (bad) {
        uc__errstr(reason, reason_size, "profile refused: %s", bad);
        userevents__user_profile__free_unpacked(p, NULL);
        return -1;
    }
    if (!*p->user_id) { /* keyed by the topic only: the output still names its user */
        char *copy = strdup(key);
        if (!copy) {
            userevents__user_profile__free_unpacked(p, NULL);
            uc__errstr(reason, reason_size, "out of memory");
            return -1;
        }
        p->user_id = copy; /* freed by free_unpacked, which frees every non-default string */
        key = copy;
    }
    if (profile_store(ps, key, p)) {
        uc__errstr(reason, reason_size, "out of memory");
        return -1;
    }
    return 0;
}

int64_t enr__profile_count(void *profile_state)
{
    profiles_t *ps = profile_state;
    return ps ? (int64_t)ps->table.count : 0;
}

static enr_verdict_t profile_process(void *state, enr_event_t *e, enr_ctx_t *ctx, void *opaque)
{
    (void)ctx, (void)opaque;
    profiles_t *ps = state;
    const char *user = e->ev->user_id;
    if (!ps || !user || !*user)
        return ENR_KEEP;
    size_t len = strlen(user);
    profile_t *pr = find(ps, user, len, enr__hash64(user, len));
    if (pr)
        e->out.profile = pr->p;
    return ENR_KEEP;
}

static int profile_init(void **state, void *opaque, char *errstr, size_t errstr_size)
{
    (void)opaque;
    profiles_t *ps = calloc(1, sizeof(*ps));
    if (!ps || enr__htab_init(&ps->table)) {
        free(ps);
        uc__errstr(errstr, errstr_size, "out of memory");
        return -1;
    }
    *state = ps;
    return 0;
}

static void profile_destroy(void *state, void *opaque)
{
    (void)opaque;
    profiles_t *ps = state;
    if (!ps)
        return;
    size_t slot = 0;
    enr__hnode_t *n = enr__htab_next(&ps->table, &slot, NULL), *next;
    for (; n; n = next) {
        next = enr__htab_next(&ps->table, &slot, n);
        userevents__user_profile__free_unpacked(((profile_t *)n)->p, NULL);
        free(n);
    }
    enr__htab_free(&ps->table);
    free(ps);
}

enr_stage_t *enr__stage_profile_new(const enr__settings_t *s)
{
    enr_stage_t *st = enr_stage_new("profile", profile_process, (void *)s);
    if (!st)
        return NULL;
    enr_stage_set_init(st, profile_init);
    enr_stage_set_destroy(st, profile_destroy);
    return st;
}
