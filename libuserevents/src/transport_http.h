/*
 * transport_http.h - the HTTP transport: records as zstd-compressed userevents.EventBatch
 * requests (proto/collector.proto) to a collector (examples/ue-collector), which publishes
 * them to Kafka. Selected by "transport=http"; configured by the "http.*" keys.
 */
#ifndef UE_TRANSPORT_HTTP_H
#define UE_TRANSPORT_HTTP_H

#include "conf.h"
#include "transport.h"
#include "uc_log.h"

/*
 * Creates the transport from the http.* settings of @p s (read now, not kept). NULL with
 * @p errstr on failure.
 */
ue__transport_t *ue__transport_http_new(const ue__settings_t *s, const uc__logger_t *log,
                                        ue__result_fn *on_result, ue__retry_fn *on_retry,
                                        void *owner, char *errstr, size_t errstr_size);

/* 0 when @p url (may be NULL) is an http:// or https:// URL libcurl can parse, else -1. */
int ue__http_url_valid(const char *url, char *errstr, size_t errstr_size);

#endif
