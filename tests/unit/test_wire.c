/* The wire format of SPEC section 5 in C: HMAC-SHA256 against the reference
 * vectors, canonical JSON that equals the bytes the SDK accepts (and differs
 * from the ones it rejects), ECMAScript number formatting, JSON.stringify's
 * string escaping, and the verify envelope. */
#include "jsonw.h"
#include "payload.h"
#include "sign.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static json_t *vectors(void)
{
    json_error_t je;
    json_t *v = json_load_file(MTR_SOURCE_DIR "/tests/vectors/signature-vectors.json", 0, &je);
    cr_assert_not_null(v, "%s", je.text);
    return v;
}

static char *canonical(const char *text)
{
    struct jsonw w;
    char err[256];
    jsonw_init(&w);
    cr_assert_eq(jsonw_canonical(&w, text, strlen(text), err, sizeof err), 0, "%s", err);
    return jsonw_take(&w, NULL);
}

Test(wire, challenges_hash_like_the_sdk)
{
    cr_assert_eq(sign_init(), 0);
    json_t *v = vectors();
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(v, "challenges"), i, c)
    {
        const char *amt = json_string_value(json_object_get(c, "amt"));
        const char *ch = json_string_value(json_object_get(c, "challenge"));
        char out[HEX_SHA256_LEN + 1];
        hmac_sha256_hex(amt, strlen(amt), ch, strlen(ch), out);
        cr_expect_str_eq(out, json_string_value(json_object_get(c, "response")));
    }
    /* the reversed key and message of a third-party crate must not come out */
    char out[HEX_SHA256_LEN + 1];
    hmac_sha256_hex("amt", 3, "challenge", 9, out);
    cr_expect_str_neq(out, "7ab7c12606f7e43a826cb6bd4dc45462fb90f5dc9ff83f796f90cc63aec14023");
    json_decref(v);
}

Test(wire, payload_vectors_sign_and_canonicalise)
{
    cr_assert_eq(sign_init(), 0);
    json_t *v = vectors();
    size_t i;
    json_t *p;
    int accepted = 0, rejected = 0;
    json_array_foreach(json_object_get(v, "payloads"), i, p)
    {
        const char *amt = json_string_value(json_object_get(p, "amt"));
        const char *body = json_string_value(json_object_get(p, "body"));
        const char *name = json_string_value(json_object_get(p, "name"));
        char sig[HEX_SHA256_LEN + 1];
        hmac_sha256_hex(amt, strlen(amt), body, strlen(body), sig);
        cr_expect_str_eq(sig, json_string_value(json_object_get(p, "signature")), "%s", name);
        struct signer signer;
        char keyed[HEX_SHA256_LEN + 1];
        signer_init(&signer, amt, strlen(amt));
        signer_hex(&signer, body, strlen(body), keyed);
        signer_hex(&signer, body, strlen(body), keyed); /* reusable: the keyed state is copied */
        signer_free(&signer);
        cr_expect_str_eq(keyed, sig, "%s: the pre-keyed signer agrees", name);
        char *c = canonical(body);
        if (json_is_true(json_object_get(p, "sdk_verifies"))) {
            cr_expect_str_eq(c, body, "%s: the writer must produce the accepted bytes", name);
            accepted++;
        } else {
            cr_expect_str_neq(c, body, "%s: the writer must not produce rejected bytes", name);
            rejected++;
        }
        free(c);
    }
    cr_expect(accepted >= 4 && rejected >= 6);
    json_decref(v);
}

Test(wire, numbers_as_javascript_writes_them)
{
    static const struct {
        double d;
        const char *js;
    } rows[] = {
        {0.58, "0.58"},
        {12.0, "12"},
        {0.00001, "0.00001"},
        {0.000001, "0.000001"},
        {1e-7, "1e-7"},
        {-0.0, "0"},
        {1e21, "1e+21"},
        {1e20, "100000000000000000000"},
        {123456789012.0, "123456789012"},
        {0.1 + 0.2, "0.30000000000000004"},
        {5e-324, "5e-324"},
        {1.7976931348623157e308, "1.7976931348623157e+308"},
        {-37829.5, "-37829.5"},
        {1.5e-7, "1.5e-7"},
        {9007199254740993.0, "9007199254740992"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
        char buf[40];
        js_number(rows[i].d, buf);
        cr_expect_str_eq(buf, rows[i].js, "%.17g", rows[i].d);
    }
}

Test(wire, strings_as_json_stringify_writes_them)
{
    char *c = canonical("[\"a/b\",\"Citro\\u00ebn \\u00eb-C4\",\"tab\\there\",\"\\u0001\\u001f\","
                        "\"quote\\\"back\\\\\",\"\\u2028\"]");
    cr_expect_str_eq(c, "[\"a/b\",\"Citroën ë-C4\",\"tab\\there\",\"\\u0001\\u001f\","
                        "\"quote\\\"back\\\\\",\"\u2028\"]");
    free(c);
    struct jsonw w;
    char err[128];
    jsonw_init(&w);
    cr_expect_eq(jsonw_canonical(&w, "{\"a\":1,\"a\":2}", 13, err, sizeof err), -1,
                 "duplicate keys would not survive JSON.parse");
    jsonw_free(&w);
}

Test(wire, verify_envelope)
{
    size_t len;
    char *b = payload_verify("5a8e5e38-1e12-4011-a36d-56f120053f9e", "c2a7", &len);
    cr_expect_str_eq(b,
                     "{\"version\":\"2.0\",\"webhookId\":\"5a8e5e38-1e12-4011-a36d-56f120053f9e\","
                     "\"eventName\":\"verify\",\"payload\":{\"challenge\":\"c2a7\"}}");
    cr_expect_eq(len, strlen(b));
    free(b);
}

Test(wire, delivery_ids_are_deterministic)
{
    char a[UUID_LEN + 1], b[UUID_LEN + 1], c[UUID_LEN + 1];
    const char *p1[] = {"wh", "1898610300", "callback", "v1"};
    const char *p2[] = {"wh", "1898610300", "callback", "v2"};
    uuid_derive(a, p1, 4);
    uuid_derive(b, p1, 4);
    uuid_derive(c, p2, 4);
    cr_expect_str_eq(a, b);
    cr_expect_str_neq(a, c);
    cr_expect_eq(strlen(a), 36);
    cr_expect_eq(a[14], '8', "version 8 (RFC 9562)");
}

Test(wire, ordered_delivery_ids_sort_by_tick_then_key)
{
    const char *p1[] = {"wh", "1898610300", "callback", "v1"};
    const char *p2[] = {"wh", "1898610300", "callback", "v2"};
    char a[UUID_LEN + 1], b[UUID_LEN + 1], c[UUID_LEN + 1];
    uuid_derive_ordered(a, 1898610300, 7, p1, 4);
    uuid_derive_ordered(b, 1898610300, 7, p1, 4);
    uuid_derive_ordered(c, 1898610300, 7, p2, 4);
    cr_expect_str_eq(a, b, "deterministic");
    cr_expect_str_neq(a, c, "the parts' hash tells same-key ids apart");
    cr_expect_eq(strncmp(a, "00712a7e-7c", 11), 0, "the tick leads (0x712a7e7c): %s", a);
    cr_expect_eq(a[14], '8', "version 8 (RFC 9562)");
    cr_expect(strchr("89ab", a[19]) != NULL, "RFC 9562 variant");
    /* 2000 random (tick, key) pairs: text order is (tick, key) order */
    uint64_t x = 88172645463325252u;
    int64_t ticks[2000];
    uint32_t keys[2000];
    char ids[2000][UUID_LEN + 1];
    for (int i = 0; i < 2000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        ticks[i] = 1898610300 + (int64_t)(x % 3) * 3600;
        keys[i] = (uint32_t)(x >> 32);
        uuid_derive_ordered(ids[i], ticks[i], keys[i], p1, 4);
    }
    for (int i = 1; i < 2000; i++) {
        int by_order =
            ticks[i - 1] < ticks[i] || (ticks[i - 1] == ticks[i] && keys[i - 1] < keys[i]);
        int by_text = strcmp(ids[i - 1], ids[i]) < 0;
        if (ticks[i - 1] != ticks[i] || keys[i - 1] != keys[i])
            cr_expect_eq(by_order, by_text, "%s vs %s", ids[i - 1], ids[i]);
    }
}

Test(wire, canonical_rewrites_what_javascript_would)
{
    static const struct {
        const char *in, *out;
    } rows[] = {
        {" { \"a\" : [ 1 , 2.50 , -0 , 1e5 ] } ", "{\"a\":[1,2.5,0,100000]}"},
        {"[0.000001,0.0000001,123000,1.0,-1.5E-7,1e21,12345678901234567890]",
         "[0.000001,1e-7,123000,1,-1.5e-7,1e+21,12345678901234567000]"},
        {"[\"a\\/b\",\"\\u00e9\\u00E9\",\"\\ud83d\\ude00\",\"\\udc00\",\"\\u001F\\u0008\"]",
         "[\"a/b\",\"éé\",\"😀\",\"\\udc00\",\"\\u001f\\b\"]"},
        {"{\"nested\":{\"t\":true,\"f\":false,\"n\":null,\"s\":\"\"}}",
         "{\"nested\":{\"t\":true,\"f\":false,\"n\":null,\"s\":\"\"}}"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
        char *c = canonical(rows[i].in);
        cr_expect_str_eq(c, rows[i].out, "%s", rows[i].in);
        free(c);
    }
}

Test(wire, canonical_refuses_what_json_parse_would_not_round_trip)
{
    const char *bad[] = {"[1,]", "{\"a\":1,\"a\":1}", "\"\x01\"", "\"\xff\"",  "[01]",
                         "[1.]", "{\"a\" 1}",         "[1] x",    "\"\\x41\"", "tru",
                         "",     "\"\xed\xa0\x80\""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct jsonw w;
        char err[128];
        jsonw_init(&w);
        cr_expect_eq(jsonw_canonical(&w, bad[i], strlen(bad[i]), err, sizeof err), -1,
                     "accepted #%zu", i);
        cr_expect(strstr(err, "malformed JSON at byte") != NULL, "%s", err);
        jsonw_free(&w);
    }
}
