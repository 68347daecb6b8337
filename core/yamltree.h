/* A YAML document as a small tree of maps, sequences and scalars, each node
 * carrying its 1-based line and column, built with libyaml's event parser.
 * Scalars are interpolated from the environment as they are read. The builder
 * refuses what a pipeline file never needs and an attacker could abuse:
 * anchors and aliases, documents over 1 MiB, nesting deeper than 64, more than
 * 4096 keys in a mapping, duplicate keys, non-scalar keys, several documents. */
#ifndef MTR_YAMLTREE_H
#define MTR_YAMLTREE_H

#include <stddef.h>
#include "diag.h"

#define YAML_MAX_BYTES (1u << 20)
#define YAML_MAX_DEPTH 64
#define YAML_MAX_KEYS 4096

enum ynode_kind {
    YNODE_SCALAR,
    YNODE_MAP,
    YNODE_SEQ,
};

struct ynode;

struct ypair {
    struct ynode *key;
    struct ynode *value;
};

struct ynode {
    enum ynode_kind kind;
    int line, col;
    int plain;            /* scalar written without quotes */
    char *value;          /* scalar text after interpolation, NUL-terminated */
    struct ypair *pairs;  /* YNODE_MAP */
    struct ynode **items; /* YNODE_SEQ */
    size_t n;             /* number of pairs or items */
    char *path;           /* built from JSON: where it is ("cadence.every"); else NULL */
};

/* Parses the file at path. On success *root is owned by the caller (free with
 * ynode_free); it is NULL for an empty document. On failure d holds
 * "path:line:col: message". */
int yaml_load_file(const char *path, struct ynode **root, struct diag *d);

/* Parses a buffer, naming it `name` in messages. */
int yaml_load_buffer(const char *name, const char *buf, size_t len, struct ynode **root,
                     struct diag *d);

void ynode_free(struct ynode *n);

/* Builds the same tree from a JSON value (jansson's json_t), for webhooks
 * defined through the API: object keys in camelCase become the snake_case
 * names of the pipeline file (callbackUri -> callback_uri), numbers and
 * booleans become plain scalars, and each node remembers its JSON path for
 * messages. Refuses null, depth over YAML_MAX_DEPTH and non-integer numbers.
 * *root is owned by the caller (ynode_free). */
struct json_t;
int ynode_from_json(const struct json_t *json, const char *name, struct ynode **root,
                    struct diag *d);

/* An error about node n: "file:line:col: message" for a node read from a
 * file, "file: path: message" (and d->field = path) for one built from JSON.
 * Returns -1. */
int ynode_at(struct diag *d, const char *file, const struct ynode *n, const char *fmt, ...)
    MTR_PRINTF(4, 5);

/* The value under key in a map node, or NULL. */
struct ynode *ynode_get(const struct ynode *map, const char *key);
/* The key node of a map entry (for positions), or NULL. */
struct ynode *ynode_key(const struct ynode *map, const char *key);

const char *ynode_kind_name(enum ynode_kind k);

#endif
