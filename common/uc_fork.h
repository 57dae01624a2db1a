/*
 * uc_fork.h - fork detection without a system call on the hot path.
 *
 * A pthread_atfork() child handler bumps a process-wide generation counter. Objects record the
 * generation they were created in; a mismatch means "I was made by the parent": the child
 * must not touch the parent's threads or locks (they may be held forever), nor reuse its
 * random state (two processes would produce the same ids).
 */
#ifndef UC_FORK_H
#define UC_FORK_H

#include <stdint.h>

/* The current fork generation: 0 in the first process, +1 in each child after fork(). */
uint32_t uc__fork_generation(void);

#endif
