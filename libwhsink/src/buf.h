/*
 * buf.h - a growable byte buffer with a sticky out-of-memory flag, so a writer appends many
 * pieces and checks once at the end (the serializers of rows, SQL and request bodies).
 */
#ifndef WHS_BUF_H
#define WHS_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct whs__buf {
    char *data; /* NUL-terminated whenever len < cap */
    size_t len;
    size_t cap;
    int oom; /* set once an append failed; later appends do nothing */
} whs__buf_t;

/* Makes room for @p extra more bytes (plus a NUL). Returns 0 or -1 (and sets oom). */
int whs__buf_reserve(whs__buf_t *b, size_t extra);

void whs__buf_append_slow(whs__buf_t *b, const void *data, size_t len);

/* Appends @p len bytes; inline while they fit (the serializers append a few bytes at a time). */
static inline void whs__buf_append(whs__buf_t *b, const void *data, size_t len)
{
    if (b->oom || b->len + len + 1 > b->cap) {
        whs__buf_append_slow(b, data, len);
        return;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void whs__buf_puts(whs__buf_t *b, const char *s);
void whs__buf_printf(whs__buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static inline void whs__buf_putc(whs__buf_t *b, char c)
{
    if (b->len + 2 > b->cap && whs__buf_reserve(b, 1))
        return;
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
}

/* Empties the buffer, keeping its memory; clears the oom flag. */
void whs__buf_reset(whs__buf_t *b);

/* Frees the memory; the buffer is empty and usable again. */
void whs__buf_free(whs__buf_t *b);

#endif
