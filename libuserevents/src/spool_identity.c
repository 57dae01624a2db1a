/*
 * spool_identity.c - the device's anonymous id, kept beside the spool (file "anonymous_id") so
 * that one device stays one anonymous user across process restarts, as its unsent events do.
 * Opened relative to the spool directory and never through a symbolic link, like every spool
 * file; written whole under a temporary name and renamed, so a crash leaves the old id or the
 * new one, never half of one.
 */
#include "spool_internal.h"
#include "uc_uuid7.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ID_FILE "anonymous_id"
#define ID_TMP "anonymous_id.tmp"
#define ID_LEN 36

/* 1 when @p s (@p len bytes) is a UUID in its text form, optionally followed by a newline. */
static int uuid_text(const char *s, size_t len)
{
    if (len == ID_LEN + 1 && s[ID_LEN] == '\n')
        len--;
    if (len != ID_LEN)
        return 0;
    for (size_t i = 0; i < ID_LEN; i++) {
        int dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
            return 0;
    }
    return 1;
}

/* The id the file holds into @p id: 1, or 0 when there is none (or not a valid one). */
static int read_id(const ue__spool_t *sp, char id[ID_LEN + 1])
{
    int fd = ue__spool_openat(sp, ID_FILE, O_RDONLY | O_NONBLOCK);
    if (fd < 0)
        return 0;
    char buf[ID_LEN + 2];
    struct stat st;
    ssize_t n = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? read(fd, buf, sizeof(buf)) : -1;
    close(fd);
    if (n < 0 || !uuid_text(buf, (size_t)n)) {
        uc__log(sp->log, UC_LOG_WARNING, "spool: %s/%s is not an anonymous id; making a new one",
                sp->dir, ID_FILE);
        return 0;
    }
    memcpy(id, buf, ID_LEN);
    id[ID_LEN] = '\0';
    return 1;
}

static int write_id(const ue__spool_t *sp, const char *id)
{
    int fd = ue__spool_openat(sp, ID_TMP, O_WRONLY | O_CREAT | O_TRUNC);
    if (fd < 0)
        return -1;
    char line[ID_LEN + 1];
    memcpy(line, id, ID_LEN);
    line[ID_LEN] = '\n';
    int ok = write(fd, line, sizeof(line)) == (ssize_t)sizeof(line) && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok || renameat(sp->dir_fd, ID_TMP, sp->dir_fd, ID_FILE) != 0) {
        int saved = errno;
        unlinkat(sp->dir_fd, ID_TMP, 0);
        errno = saved;
        return -1;
    }
    return 0;
}

int ue__spool_anonymous_id(ue__spool_t *sp, char id[37])
{
    if (read_id(sp, id))
        return 0;
    char made[ID_LEN + 1];
    uint8_t raw[16];
    uc__random_bytes(raw, sizeof(raw));
    raw[6] = (raw[6] & 0x0f) | 0x40; /* a random (v4) UUID */
    raw[8] = (raw[8] & 0x3f) | 0x80;
    uc__uuid_format(raw, made);
    if (write_id(sp, made)) {
        uc__log(sp->log, UC_LOG_WARNING,
                "spool: cannot keep the anonymous id in %s/%s: %s; it lasts this process only",
                sp->dir, ID_FILE, strerror(errno));
        return -1;
    }
    memcpy(id, made, ID_LEN + 1);
    return 0;
}
