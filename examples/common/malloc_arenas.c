/*
 * malloc_arenas.c - see malloc_arenas.h.
 */
#include "malloc_arenas.h"

#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

void malloc_arenas_limit(void)
{
#ifdef __GLIBC__
    if (!getenv("MALLOC_ARENA_MAX"))
        mallopt(M_ARENA_MAX, 2);
#endif
}
