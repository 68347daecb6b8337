/* Payloads: envelope, entries, error elements and headers. */
#include "payload.h"
#include "jsonw.h"

#include <jansson.h>

#include <stdio.h>
#include <string.h>

#ifndef METRONOME_VERSION
#define METRONOME_VERSION "0.0.0"
#endif

char *payload_vehicle(const char *vehicle_id, const char *request_id, const char *data,
                      size_t data_len, size_t *len, char *err, size_t errlen)
{
    struct jsonw w;
    jsonw_init(&w);
    jsonw_lit(&w, "{\"vehicleId\":");
    jsonw_str(&w, vehicle_id);
    jsonw_lit(&w, ",\"requestId\":");
    jsonw_str(&w, request_id);
    jsonw_lit(&w, ",\"data\":");
    size_t mark = w.len;
    if (jsonw_canonical(&w, data, data_len, err, errlen) != 0) {
        jsonw_free(&w);
        return NULL;
    }
    if (w.buf[mark] != '[') {
        snprintf(err, errlen, "data is not a JSON array of endpoint results");
        jsonw_free(&w);
        return NULL;
    }
    jsonw_lit(&w, "}");
    return jsonw_take(&w, len);
}

char *payload_error_data(const char *const *endpoints, size_t n, int code, const char *type,
                         const char *error_code, const char *description, const char *request_id,
                         size_t *len)
{
    struct jsonw w;
    jsonw_init(&w);
    jsonw_lit(&w, "[");
    for (size_t i = 0; i < n; i++) {
        jsonw_lit(&w, i ? ",{\"path\":" : "{\"path\":");
        jsonw_str(&w, endpoints[i]);
        jsonw_lit(&w, ",\"code\":");
        jsonw_int(&w, code);
        jsonw_lit(&w, ",\"body\":{\"type\":");
        jsonw_str(&w, type);
        jsonw_lit(&w, ",\"code\":");
        jsonw_str(&w, error_code);
        jsonw_lit(&w, ",\"description\":");
        jsonw_str(&w, description);
        jsonw_lit(&w, ",\"docURL\":null,\"statusCode\":");
        jsonw_int(&w, code);
        jsonw_lit(&w, ",\"requestId\":");
        jsonw_str(&w, request_id);
        jsonw_lit(&w, ",\"resolution\":{\"type\":\"RETRY_LATER\"}},"
                      "\"headers\":{\"content-type\":\"application/json\"}}");
    }
    jsonw_lit(&w, "]");
    return jsonw_take(&w, len);
}

char *payload_scheduled(const char *webhook_id, const char *mode, char *const *entries,
                        const size_t *lens, size_t n, size_t *len)
{
    struct jsonw w;
    jsonw_init(&w);
    jsonw_lit(&w, "{\"version\":\"2.0\",\"webhookId\":");
    jsonw_str(&w, webhook_id);
    jsonw_lit(&w, ",\"eventName\":\"scheduled\",\"mode\":");
    jsonw_str(&w, mode);
    jsonw_lit(&w, ",\"payload\":{\"vehicles\":[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            jsonw_raw(&w, ",", 1);
        jsonw_raw(&w, entries[i], lens[i]);
    }
    jsonw_lit(&w, "]}}");
    return jsonw_take(&w, len);
}

char *payload_verify(const char *webhook_id, const char *challenge, size_t *len)
{
    struct jsonw w;
    jsonw_init(&w);
    jsonw_lit(&w, "{\"version\":\"2.0\",\"webhookId\":");
    jsonw_str(&w, webhook_id);
    jsonw_lit(&w, ",\"eventName\":\"verify\",\"payload\":{\"challenge\":");
    jsonw_str(&w, challenge);
    jsonw_lit(&w, "}}");
    return jsonw_take(&w, len);
}

void payload_headers(struct payload_headers *ph, struct signer *signer, const char *body,
                     size_t len, const char *delivery_id)
{
    signer_hex(signer, body, len, ph->signature);
    snprintf(ph->user_agent, sizeof ph->user_agent, "metronome/%s", METRONOME_VERSION);
    ph->h[0] = (struct mtr_header){"Content-Type", "application/json"};
    ph->h[1] = (struct mtr_header){"SC-Signature", ph->signature};
    ph->h[2] = (struct mtr_header){"User-Agent", ph->user_agent};
    ph->h[3] = (struct mtr_header){DELIVERY_ID_HEADER, delivery_id};
}

int payload_check_challenge(const char *response, size_t len, const char *expected, char *why,
                            size_t n)
{
    json_error_t je;
    json_t *v = response ? json_loadb(response, len, JSON_REJECT_DUPLICATES, &je) : NULL;
    const char *got = json_string_value(json_object_get(v, "challenge"));
    int ok = got && strcmp(got, expected) == 0;
    if (!ok)
        snprintf(why, n, "%s",
                 !v     ? "the answer is not JSON {\"challenge\": \"<hmac>\"}"
                 : !got ? "the answer has no \"challenge\" string"
                        : "the challenge answer is wrong (HMAC-SHA256 of the "
                          "challenge keyed with the management token)");
    json_decref(v);
    return ok ? 0 : -1;
}
