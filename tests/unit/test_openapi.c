/* The OpenAPI document (docs/openapi.json, compiled into the binary and served
 * at /api/v1/openapi.json) describes exactly the router's routes: every route
 * has its path and method in the document, and the document has nothing the
 * router does not answer. */
#include "api.h"

#include <criterion/criterion.h>
#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

static json_t *document(void)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/docs/openapi.json", MTR_SOURCE_DIR);
    json_error_t e;
    json_t *doc = json_load_file(path, 0, &e);
    cr_assert(doc, "%s: %s", path, e.text);
    return doc;
}

static void lower(const char *in, char *out, size_t len)
{
    size_t i = 0;
    for (; in[i] && i + 1 < len; i++)
        out[i] = (char)tolower((unsigned char)in[i]);
    out[i] = '\0';
}

Test(openapi, the_served_document_is_the_one_in_the_repository)
{
    json_t *doc = document(), *served = json_loadb(api_openapi_json, api_openapi_json_len, 0, NULL);
    cr_assert(served, "the compiled-in document parses");
    cr_expect(json_equal(doc, served), "rebuild: the binary holds another docs/openapi.json");
    cr_expect_str_eq(json_string_value(json_object_get(doc, "openapi")), "3.1.0");
    json_decref(doc);
    json_decref(served);
}

Test(openapi, every_route_is_documented)
{
    struct api_route_info routes[64];
    size_t n = api_route_list(routes, 64);
    json_t *doc = document(), *paths = json_object_get(doc, "paths");
    cr_assert(n > 20 && n <= 64);
    for (size_t i = 0; i < n; i++) {
        char method[16];
        lower(routes[i].method, method, sizeof method);
        json_t *op = json_object_get(json_object_get(paths, routes[i].path), method);
        cr_expect(json_is_object(op), "%s %s is not in docs/openapi.json", routes[i].method,
                  routes[i].path);
        cr_expect(json_is_object(json_object_get(op, "responses")), "%s %s has no responses",
                  routes[i].method, routes[i].path);
    }
    json_decref(doc);
}

Test(openapi, every_documented_operation_is_routed)
{
    static const char *const methods[] = {"get", "post", "put", "patch", "delete", "head"};
    struct api_route_info routes[64];
    size_t n = api_route_list(routes, 64), documented = 0;
    json_t *doc = document(), *item;
    const char *path;
    json_object_foreach(json_object_get(doc, "paths"), path, item)
    {
        for (size_t m = 0; m < sizeof methods / sizeof *methods; m++) {
            if (!json_object_get(item, methods[m]))
                continue;
            documented++;
            int found = 0;
            for (size_t i = 0; i < n; i++) {
                char method[16];
                lower(routes[i].method, method, sizeof method);
                found |= strcmp(routes[i].path, path) == 0 && strcmp(method, methods[m]) == 0;
            }
            cr_expect(found, "docs/openapi.json has %s %s, which no route answers", methods[m],
                      path);
        }
    }
    cr_expect_eq(documented, n, "%zu operations documented, %zu routes", documented, n);
    json_decref(doc);
}
