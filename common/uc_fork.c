/*
 * uc_fork.c - the fork generation counter (see uc_fork.h).
 */
#include "uc_fork.h"

#include <pthread.h>
#include <stdatomic.h>

static _Atomic uint32_t fork_generation;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void on_fork_child(void)
{
    atomic_fetch_add_explicit(&fork_generation, 1, memory_order_relaxed);
}

static void install_atfork(void)
{
    pthread_atfork(NULL, NULL, on_fork_child);
}

uint32_t uc__fork_generation(void)
{
    pthread_once(&atfork_once, install_atfork);
    return atomic_load_explicit(&fork_generation, memory_order_relaxed);
}
