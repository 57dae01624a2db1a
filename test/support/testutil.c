/*
 * testutil.c - see testutil.h.
 */
#include "testutil.h"

#include <execinfo.h>
#include <ftw.h>
#include <signal.h>
#include <sys/wait.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

char *tu_tempdir(const char *prefix)
{
    const char *tmp = getenv("TMPDIR");
    char *path;
    if (asprintf(&path, "%s/%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", prefix) < 0)
        abort();
    if (!mkdtemp(path))
        abort();
    return path;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void tu_rmrf(const char *path)
{
    if (path)
        nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Runs in the crashing thread; the rest of the process is in an unknown state, so it only
 * forks, waits and writes. */
static void print_stacks(int sig)
{
    static const char banner[] = "\n=== crashed: every thread's stack ===\n";
    char pid[16];
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    (void)!write(2, banner, sizeof(banner) - 1);
    pid_t gdb = fork();
    if (gdb == 0) {
        dup2(2, 1);
        execlp("gdb", "gdb", "-q", "-batch", "-p", pid, "-ex", "thread apply all bt", (char *)NULL);
        _exit(127);
    }
    int status = 127 << 8;
    if (gdb > 0)
        waitpid(gdb, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        void *frames[64];
        backtrace_symbols_fd(frames, backtrace(frames, 64), 2);
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

void tu_trace_crashes(void)
{
    static const int fatal[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
    for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
        signal(fatal[i], print_stacks);
}

ue_conf_t *tu_conf(const char *const *kv)
{
    ue_conf_t *conf = ue_conf_new();
    char errstr[512];
    for (; kv && *kv; kv++) {
        char key[256];
        const char *eq = strchr(*kv, '=');
        if (!eq) {
            fprintf(stderr, "tu_conf: \"%s\" is not key=value\n", *kv);
            abort();
        }
        snprintf(key, sizeof(key), "%.*s", (int)(eq - *kv), *kv);
        if (ue_conf_set(conf, key, eq + 1, errstr, sizeof(errstr)) != UE_CONF_OK) {
            fprintf(stderr, "tu_conf: %s\n", errstr);
            abort();
        }
    }
    return conf;
}

int tu_wait_until(int (*cond)(void *arg), void *arg, int timeout_ms)
{
    struct timespec start, now, pause = {0, 2 * 1000 * 1000};
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        if (cond(arg))
            return 1;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long elapsed = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (elapsed >= timeout_ms)
            return cond(arg);
        nanosleep(&pause, NULL); /* polling interval of a condition, not a synchronisation */
    }
}

void tu_log_quiet(int level, const char *message, void *opaque)
{
    (void)level;
    (void)message;
    (void)opaque;
}

void tu_dr_cb(const uint8_t *event_id, const char *type, ue_outcome_t outcome, ue_err_t reason,
              const char *reason_str, void *opaque)
{
    tu_dr_t *dr = opaque;
    (void)event_id;
    (void)type;
    (void)reason_str;
    if ((unsigned)outcome < 4)
        atomic_fetch_add(&dr->outcome[outcome], 1);
    if (outcome == UE_OUTCOME_DROPPED && reason == UE_ERR_SHUTDOWN)
        atomic_fetch_add(&dr->shutdown, 1);
    if (outcome == UE_OUTCOME_DROPPED && reason == UE_ERR_QUEUE_FULL)
        atomic_fetch_add(&dr->queue_full, 1);
}

int64_t tu_dr_get(tu_dr_t *dr, ue_outcome_t outcome)
{
    return atomic_load(&dr->outcome[outcome]);
}

ue_client_t *tu_client(const char *const *kv, ue_delivery_cb_t *cb, void *opaque)
{
    char errstr[512];
    ue_conf_t *conf = tu_conf(kv);
    ue_conf_set_log_cb(conf, tu_log_quiet, NULL);
    ue_conf_set_delivery_cb(conf, cb, opaque);
    ue_client_t *c = ue_client_new(conf, errstr, sizeof(errstr));
    if (!c) {
        fprintf(stderr, "tu_client: %s\n", errstr);
        abort();
    }
    return c;
}
