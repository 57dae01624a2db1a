/*
 * tls.c - what ue-collector needs to serve HTTPS: the certificate chain and its private key,
 * read whole into memory (libmicrohttpd takes PEM text). The key file must be private, as
 * the API keys file must.
 */
#include "collector.h"

#include <stdlib.h>
#include <string.h>

#define PEM_MAX (1 << 20) /* a chain of a few certificates is a few KB */

/* The whole of @p path as a string, or NULL (said on stderr). @p private: refuse a file open to
 * group or others. */
static char *read_pem(const char *path, int private)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        return NULL;
    }
    char *text = NULL;
    if (!private || !file_private(f, path)) {
        text = malloc(PEM_MAX + 1);
        size_t n = text ? fread(text, 1, PEM_MAX + 1, f) : 0;
        if (text && (n == 0 || n > PEM_MAX || !strstr(text, "-----BEGIN "))) {
            fprintf(stderr, "ue-collector: %s: %s\n", path,
                    n > PEM_MAX ? "larger than 1 MiB" : "not a PEM file");
            free(text);
            text = NULL;
        } else if (text) {
            text[n] = '\0';
        }
    }
    fclose(f);
    return text;
}

int tls_load(tls_files_t *t, const char *cert_path, const char *key_path)
{
    memset(t, 0, sizeof(*t));
    if (!cert_path && !key_path)
        return 0;
    if (!cert_path || !key_path) {
        fprintf(stderr, "ue-collector: HTTPS needs both --tls-cert and --tls-key\n");
        return -1;
    }
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        fprintf(stderr, "ue-collector: this libmicrohttpd was built without TLS\n");
        return -1;
    }
    t->cert = read_pem(cert_path, 0);
    t->key = t->cert ? read_pem(key_path, 1) : NULL;
    if (!t->key) {
        tls_free(t);
        return -1;
    }
    return 0;
}

void tls_free(tls_files_t *t)
{
    free(t->cert);
    if (t->key) /* the private key leaves no copy behind in freed memory */
        explicit_bzero(t->key, strlen(t->key));
    free(t->key);
    t->cert = t->key = NULL;
}
