/* Payloads of SPEC section 5: the scheduled envelope around vehicle entries,
 * the verify challenge, error elements for data that could not be fetched,
 * and the headers every delivery carries. All bytes come out of jsonw, so
 * Smartcar's SDKs (which re-serialise the parsed body) verify them. */
#ifndef MTR_PAYLOAD_H
#define MTR_PAYLOAD_H

#include <stddef.h>
#include <metronome/metronome.h>
#include "sign.h"

/* One vehicle entry {"vehicleId","requestId","data"} with its data array
 * canonicalised. Returns a malloc'd string, or NULL with a message in err
 * when data is not a JSON array. */
char *payload_vehicle(const char *vehicle_id, const char *request_id, const char *data,
                      size_t data_len, size_t *len, char *err, size_t errlen);

/* A data array with one error element per endpoint (the standard error body
 * of reference section 6), for data still missing when its tick's slots run
 * out. Returns a malloc'd string. */
char *payload_error_data(const char *const *endpoints, size_t n, int code, const char *type,
                         const char *error_code, const char *description, const char *request_id,
                         size_t *len);

/* The envelope around n vehicle entries. Returns a malloc'd string. */
char *payload_scheduled(const char *webhook_id, const char *mode, char *const *entries,
                        const size_t *lens, size_t n, size_t *len);

/* {"version":"2.0","webhookId":...,"eventName":"verify","payload":{"challenge":...}} */
char *payload_verify(const char *webhook_id, const char *challenge, size_t *len);

/* The headers of a delivery: Content-Type, SC-Signature (HMAC of body keyed
 * with the management token), User-Agent and Metronome-Delivery-Id. */
struct payload_headers {
    char signature[HEX_SHA256_LEN + 1];
    char user_agent[64];
    struct mtr_header h[4];
};
void payload_headers(struct payload_headers *ph, struct signer *signer, const char *body,
                     size_t len, const char *delivery_id);

#define DELIVERY_ID_HEADER "Metronome-Delivery-Id"

/* Checks a receiver's answer to the verify challenge: JSON {"challenge":
 * expected}. Returns 0, or -1 with the reason in why. The answer is the
 * receiver's, so anything may be in it (tests/fuzz/fuzz_response.c). */
int payload_check_challenge(const char *response, size_t len, const char *expected, char *why,
                            size_t n);

#endif
