/*
 * malloc_arenas.h - the daemons' bound on glibc's malloc arenas.
 *
 * glibc gives threads that allocate at once arenas of their own (up to 8 per core), and memory
 * freed into an arena stays with it. librdkafka decodes fetches on a thread per broker, so each
 * broker thread's arena kept its own peak: enrichd catching up 1M events from 3 brokers peaked
 * at 171-173 MB with glibc's default, 125-144 MB with two arenas; whsinkd loading them 108-112
 * and 88-90 MB, at the same speed. Allocation is not contended enough in these daemons for more
 * arenas to pay off.
 */
#ifndef UE_EXAMPLES_MALLOC_ARENAS_H
#define UE_EXAMPLES_MALLOC_ARENAS_H

/* Limits the process to two malloc arenas, unless MALLOC_ARENA_MAX in the environment says
 * otherwise (glibc reads it; it wins). Call first thing in main(), before any thread starts. */
void malloc_arenas_limit(void);

#endif
