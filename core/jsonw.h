/* A JSON writer that produces exactly the bytes JavaScript's JSON.stringify
 * produces for the same value: compact, member order kept, '/' not escaped,
 * non-ASCII as raw UTF-8, control characters as \b \f \n \r \t or \u00xx,
 * and numbers in ECMAScript's shortest round-trip form (0.58, 12, 0.00001,
 * 1e-7, never -0). Smartcar's Node SDK verifies a payload by re-serialising
 * the parsed body, so these are the only bytes it accepts. */
#ifndef MTR_JSONW_H
#define MTR_JSONW_H

#include <stddef.h>
#include <stdint.h>

struct jsonw {
    char *buf;
    size_t len, cap;
    int failed; /* out of memory, or a value JSON cannot hold */
};

void jsonw_init(struct jsonw *w);
void jsonw_free(struct jsonw *w);
/* Hands the buffer (NUL-terminated) to the caller; the writer is reset. */
char *jsonw_take(struct jsonw *w, size_t *len);

void jsonw_raw(struct jsonw *w, const char *s, size_t n);
void jsonw_lit(struct jsonw *w, const char *s); /* raw NUL-terminated */
void jsonw_string(struct jsonw *w, const char *s, size_t n);
void jsonw_str(struct jsonw *w, const char *s); /* NUL-terminated string */
void jsonw_number(struct jsonw *w, double d);
void jsonw_int(struct jsonw *w, int64_t v);

/* Formats d as ECMAScript Number::toString does; buf holds at least 32. */
size_t js_number(double d, char *buf);

/* Validates text and writes it canonically in one pass: whitespace dropped,
 * strings re-escaped as JSON.stringify does, numbers as JavaScript writes the
 * double they denote (copied as they are when already in that form),
 * duplicate keys and invalid UTF-8 refused. Returns 0, or -1 with a message
 * in err (and nothing written). */
int jsonw_canonical(struct jsonw *w, const char *text, size_t len, char *err, size_t errlen);

#endif
