/* The admin API of SPEC section 6 without its transport: a request (method,
 * raw target, Authorization header, body) in, a response (status, headers,
 * JSON) out. Routes are a table; each handler validates its input, calls one
 * operation (ops.h) and encodes what it returns. admin.c puts this behind
 * libmicrohttpd; the fuzz target and the OpenAPI test call it directly.
 *
 * Safe to call from several threads at once: each call borrows one of a few
 * ops contexts (each with its own connection to the store). */
#ifndef MTR_API_H
#define MTR_API_H

#include <stddef.h>
#include "config.h"
#include "engine.h"

#define API_MAX_BODY (1u << 20)
#define API_CONTEXTS 4

struct api_request {
    const char *method;
    const char *target;        /* the raw request target: path and query, as received */
    const char *authorization; /* the header's value, or NULL */
    const char *body;
    size_t body_len;
    int body_too_large; /* the body passed API_MAX_BODY and was not kept */
};

struct api_response {
    int status;
    char *body; /* owned (api_response_free) */
    size_t body_len;
    const char *content_type;
    char request_id[40];       /* sc-request-id of a /v2.0 answer, or "" */
    int www_authenticate;      /* a 401 that names the Bearer scheme */
    char allow[48];            /* a 405's Allow header, or "" */
    const char *cache_control; /* NULL: no-store */
    const char *csp;           /* Content-Security-Policy; NULL: nothing may load */
};

struct api;

/* Opens API_CONTEXTS ops contexts on c's store for a running engine e (NULL:
 * verify, test, status and metrics answer 503). Returns NULL with d set. */
struct api *api_create(struct config *c, struct clock *clk, struct engine *e, struct diag *d);
void api_destroy(struct api *a);

/* Answers one request; rs is always filled. */
void api_handle(struct api *a, const struct api_request *rq, struct api_response *rs);
void api_response_free(struct api_response *rs);

/* The route table, for the OpenAPI test: method and path template. */
struct api_route_info {
    const char *method;
    const char *path;
};
size_t api_route_list(struct api_route_info *out, size_t max);

/* Files compiled in (cmake/embed.cmake): the OpenAPI 3.1 document served at
 * /api/v1/openapi.json and the dashboard's page, script and style. */
extern const char api_openapi_json[];
extern const size_t api_openapi_json_len;
extern const char web_index_html[], web_app_js[], web_app_css[];
extern const size_t web_index_html_len, web_app_js_len, web_app_css_len;

#endif
