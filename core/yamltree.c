/* YAML tree builder: libyaml events -> ynode tree, with positions, limits and
 * interpolation. Recursive descent over the event stream; depth is bounded
 * so a hostile file cannot exhaust the stack. */
#include "yamltree.h"

#include <jansson.h>
#include <stdarg.h>
#include "interp.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

struct builder {
    yaml_parser_t parser;
    const char *name;
    const char *buf;
    size_t len;
    struct diag *d;
};

void ynode_free(struct ynode *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->n; i++) {
        if (n->kind == YNODE_MAP) {
            ynode_free(n->pairs[i].key);
            ynode_free(n->pairs[i].value);
        } else if (n->kind == YNODE_SEQ) {
            ynode_free(n->items[i]);
        }
    }
    free(n->pairs);
    free(n->items);
    free(n->value);
    free(n->path);
    free(n);
}

int ynode_at(struct diag *d, const char *file, const struct ynode *n, const char *fmt, ...)
{
    char msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n && n->path) {
        diag_set(d, "%s: %s: %s", file, n->path[0] ? n->path : "(the body)", msg);
        snprintf(d->field, sizeof d->field, "%s", n->path);
        return -1;
    }
    return diag_at(d, file, n ? n->line : 1, n ? n->col : 1, "%s", msg);
}

/* ---- from JSON ---------------------------------------------------------------------- */

static char *snake_case(const char *key)
{
    size_t n = strlen(key), k = 0;
    char *out = malloc(2 * n + 1);
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        char ch = key[i];
        if (ch >= 'A' && ch <= 'Z') {
            if (k)
                out[k++] = '_';
            ch = (char)(ch - 'A' + 'a');
        }
        out[k++] = ch;
    }
    out[k] = '\0';
    return out;
}

static char *child_path(const char *parent, const char *key, size_t index)
{
    char buf[512];
    if (key)
        snprintf(buf, sizeof buf, "%s%s%s", parent, *parent ? "." : "", key);
    else
        snprintf(buf, sizeof buf, "%s[%zu]", parent, index);
    return strdup(buf);
}

static int from_json(const json_t *j, char *path, int depth, struct ynode **out, struct diag *d,
                     const char *name)
{
    struct ynode *n = calloc(1, sizeof *n);
    char num[32];
    if (!n) {
        free(path);
        return diag_set(d, "out of memory");
    }
    n->path = path;
    *out = n;
    if (depth > YAML_MAX_DEPTH)
        return ynode_at(d, name, n, "nesting deeper than %d levels", YAML_MAX_DEPTH);
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *v;
        n->kind = YNODE_MAP;
        if (json_object_size(j) > YAML_MAX_KEYS)
            return ynode_at(d, name, n, "more than %d keys", YAML_MAX_KEYS);
        n->pairs = calloc(json_object_size(j) + 1, sizeof *n->pairs);
        if (!n->pairs)
            return diag_set(d, "out of memory");
        json_object_foreach((json_t *)j, key, v)
        {
            struct ypair *p = &n->pairs[n->n++];
            if (!(p->key = calloc(1, sizeof *p->key)) || !(p->key->value = snake_case(key)) ||
                !(p->key->path = child_path(path, key, 0)))
                return diag_set(d, "out of memory");
            char *cp = child_path(path, key, 0);
            if (!cp || from_json(v, cp, depth + 1, &p->value, d, name) != 0)
                return cp ? -1 : diag_set(d, "out of memory");
        }
        return 0;
    }
    case JSON_ARRAY:
        n->kind = YNODE_SEQ;
        n->items = calloc(json_array_size(j) + 1, sizeof *n->items);
        if (!n->items)
            return diag_set(d, "out of memory");
        for (size_t i = 0; i < json_array_size(j); i++) {
            char *cp = child_path(path, NULL, i);
            n->n++;
            if (!cp || from_json(json_array_get(j, i), cp, depth + 1, &n->items[i], d, name) != 0)
                return cp ? -1 : diag_set(d, "out of memory");
        }
        return 0;
    case JSON_STRING:
        n->kind = YNODE_SCALAR;
        n->value = strndup(json_string_value(j), json_string_length(j));
        return n->value ? 0 : diag_set(d, "out of memory");
    case JSON_INTEGER:
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(j));
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        snprintf(num, sizeof num, "%s", json_is_true(j) ? "true" : "false");
        break;
    case JSON_REAL:
        return ynode_at(d, name, n, "want a whole number or a string, not %g", json_real_value(j));
    case JSON_NULL:
        return ynode_at(d, name, n, "null is not a value here; leave the field out instead");
    }
    n->kind = YNODE_SCALAR;
    n->plain = 1;
    n->value = strdup(num);
    return n->value ? 0 : diag_set(d, "out of memory");
}

int ynode_from_json(const struct json_t *json, const char *name, struct ynode **root,
                    struct diag *d)
{
    char *path = strdup("");
    *root = NULL;
    if (!path)
        return diag_set(d, "out of memory");
    if (from_json(json, path, 0, root, d, name) != 0) {
        ynode_free(*root);
        *root = NULL;
        return -1;
    }
    return 0;
}

const char *ynode_kind_name(enum ynode_kind k)
{
    switch (k) {
    case YNODE_SCALAR:
        return "a scalar";
    case YNODE_MAP:
        return "a mapping";
    case YNODE_SEQ:
        return "a list";
    }
    return "?";
}

static struct ynode *node_new(enum ynode_kind kind, yaml_mark_t mark)
{
    struct ynode *n = calloc(1, sizeof *n);
    if (n) {
        n->kind = kind;
        n->line = (int)mark.line + 1;
        n->col = (int)mark.column + 1;
    }
    return n;
}

/* Whether the lines up to the error hold "${" in a flow collection: a common
 * slip, since YAML reads the "{" of ${VAR} as the start of a mapping. */
static int flow_interpolation(const struct builder *b, yaml_mark_t m)
{
    size_t end = m.index < b->len ? m.index : b->len;
    size_t start = end;
    for (int lines = 0; start > 0 && lines < 2; start--)
        if (b->buf[start - 1] == '\n')
            lines++;
    for (size_t i = start; i < end && i + 1 < b->len; i++)
        if (b->buf[i] == '$' && b->buf[i + 1] == '{')
            return 1;
    return 0;
}

static int syntax_error(struct builder *b)
{
    yaml_parser_t *p = &b->parser;
    yaml_mark_t m = p->problem_mark;
    if (p->problem_offset < b->len && b->buf[p->problem_offset] == '\t')
        return diag_at(b->d, b->name, (int)m.line + 1, (int)m.column + 1,
                       "tab character: YAML indentation must use spaces");
    if (m.index < b->len && b->buf[m.index] == '\t')
        return diag_at(b->d, b->name, (int)m.line + 1, (int)m.column + 1,
                       "tab character: YAML indentation must use spaces");
    if (p->error == YAML_READER_ERROR)
        return diag_at(b->d, b->name, 0, 0, "invalid YAML: %s at byte %zu",
                       p->problem ? p->problem : "unreadable input", p->problem_offset);
    if (p->error == YAML_MEMORY_ERROR)
        return diag_set(b->d, "%s: out of memory while parsing", b->name);
    return diag_at(b->d, b->name, (int)m.line + 1, (int)m.column + 1, "invalid YAML: %s%s%s%s",
                   p->problem ? p->problem : "syntax error", p->context ? " " : "",
                   p->context ? p->context : "",
                   flow_interpolation(b, m) ? " (inside [ ] or { }, quote a value with ${VAR})"
                                            : "");
}

static int next_event(struct builder *b, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&b->parser, ev))
        return syntax_error(b);
    return 0;
}

static int build_node(struct builder *b, yaml_event_t *ev, int depth, struct ynode **out);

static int make_scalar(struct builder *b, yaml_event_t *ev, struct ynode **out)
{
    struct ynode *n = node_new(YNODE_SCALAR, ev->start_mark);
    if (!n)
        return diag_set(b->d, "out of memory");
    const char *text = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    if (strlen(text) != len) {
        ynode_free(n);
        return diag_at(b->d, b->name, (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1,
                       "NUL character in a value");
    }
    n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    char err[512];
    if (interp_expand(text, &n->value, err, sizeof err) != 0) {
        ynode_free(n);
        return diag_at(b->d, b->name, (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1,
                       "%s", err);
    }
    *out = n;
    return 0;
}

static int grow(void **arr, size_t elem, size_t n)
{
    /* capacity is 4, 8, 16 ...: grow when n reaches it */
    if (n != 0 && (n < 4 || (n & (n - 1))))
        return 0;
    void *p = realloc(*arr, elem * (n ? n * 2 : 4));
    if (!p)
        return -1;
    *arr = p;
    return 0;
}

static int find_key(const struct ynode *map, const char *key)
{
    for (size_t i = 0; i < map->n; i++)
        if (strcmp(map->pairs[i].key->value, key) == 0)
            return (int)i;
    return -1;
}

static int build_map(struct builder *b, struct ynode *map, int depth)
{
    for (;;) {
        yaml_event_t ev;
        if (next_event(b, &ev) != 0)
            return -1;
        if (ev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&ev);
            return 0;
        }
        struct ynode *key = NULL, *value = NULL;
        int rc = build_node(b, &ev, depth + 1, &key);
        yaml_event_delete(&ev);
        if (rc != 0)
            return -1;
        if (key->kind != YNODE_SCALAR) {
            diag_at(b->d, b->name, key->line, key->col, "a mapping key must be a plain name");
            ynode_free(key);
            return -1;
        }
        if (map->n >= YAML_MAX_KEYS) {
            diag_at(b->d, b->name, key->line, key->col, "more than %d keys in one mapping",
                    YAML_MAX_KEYS);
            ynode_free(key);
            return -1;
        }
        int prev = find_key(map, key->value);
        if (prev >= 0) {
            diag_at(b->d, b->name, key->line, key->col, "duplicate key '%s' (first at line %d)",
                    key->value, map->pairs[prev].key->line);
            ynode_free(key);
            return -1;
        }
        if (next_event(b, &ev) != 0 || build_node(b, &ev, depth + 1, &value) != 0) {
            if (ev.type != YAML_NO_EVENT)
                yaml_event_delete(&ev);
            ynode_free(key);
            return -1;
        }
        yaml_event_delete(&ev);
        if (grow((void **)&map->pairs, sizeof *map->pairs, map->n) != 0) {
            ynode_free(key);
            ynode_free(value);
            return diag_set(b->d, "out of memory");
        }
        map->pairs[map->n].key = key;
        map->pairs[map->n].value = value;
        map->n++;
    }
}

static int build_seq(struct builder *b, struct ynode *seq, int depth)
{
    for (;;) {
        yaml_event_t ev;
        if (next_event(b, &ev) != 0)
            return -1;
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            return 0;
        }
        struct ynode *item = NULL;
        int rc = build_node(b, &ev, depth + 1, &item);
        yaml_event_delete(&ev);
        if (rc != 0)
            return -1;
        if (grow((void **)&seq->items, sizeof *seq->items, seq->n) != 0) {
            ynode_free(item);
            return diag_set(b->d, "out of memory");
        }
        seq->items[seq->n++] = item;
    }
}

static int refuse_anchor(struct builder *b, yaml_event_t *ev, const yaml_char_t *anchor)
{
    if (!anchor)
        return 0;
    return diag_at(b->d, b->name, (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1,
                   "YAML anchors and aliases are not supported ('%s'); write the value out or "
                   "use ${VAR}",
                   (const char *)anchor);
}

/* Builds the node that starts with ev (which the caller deletes). */
static int build_node(struct builder *b, yaml_event_t *ev, int depth, struct ynode **out)
{
    int line = (int)ev->start_mark.line + 1, col = (int)ev->start_mark.column + 1;
    if (depth > YAML_MAX_DEPTH)
        return diag_at(b->d, b->name, line, col, "nesting deeper than %d levels", YAML_MAX_DEPTH);
    switch (ev->type) {
    case YAML_ALIAS_EVENT:
        return refuse_anchor(b, ev, ev->data.alias.anchor);
    case YAML_SCALAR_EVENT:
        if (refuse_anchor(b, ev, ev->data.scalar.anchor))
            return -1;
        return make_scalar(b, ev, out);
    case YAML_MAPPING_START_EVENT:
    case YAML_SEQUENCE_START_EVENT: {
        int is_map = ev->type == YAML_MAPPING_START_EVENT;
        if (refuse_anchor(b, ev,
                          is_map ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor))
            return -1;
        struct ynode *n = node_new(is_map ? YNODE_MAP : YNODE_SEQ, ev->start_mark);
        if (!n)
            return diag_set(b->d, "out of memory");
        if ((is_map ? build_map(b, n, depth) : build_seq(b, n, depth)) != 0) {
            ynode_free(n);
            return -1;
        }
        *out = n;
        return 0;
    }
    default:
        return diag_at(b->d, b->name, line, col, "unexpected YAML event");
    }
}

/* Expects `type`; returns 0, or -1 with a diagnostic. */
static int expect_event(struct builder *b, yaml_event_type_t type, yaml_event_t *ev)
{
    if (next_event(b, ev) != 0)
        return -1;
    if (ev->type != type) {
        int line = (int)ev->start_mark.line + 1, col = (int)ev->start_mark.column + 1;
        yaml_event_delete(ev);
        return diag_at(b->d, b->name, line, col, "a pipeline file holds exactly one YAML document");
    }
    return 0;
}

static int build_document(struct builder *b, struct ynode **root)
{
    yaml_event_t ev;
    if (expect_event(b, YAML_STREAM_START_EVENT, &ev) != 0)
        return -1;
    yaml_event_delete(&ev);
    if (next_event(b, &ev) != 0)
        return -1;
    if (ev.type == YAML_STREAM_END_EVENT) {
        yaml_event_delete(&ev);
        *root = NULL;
        return 0;
    }
    yaml_event_delete(&ev); /* DOCUMENT-START */
    if (next_event(b, &ev) != 0)
        return -1;
    int rc = build_node(b, &ev, 1, root);
    yaml_event_delete(&ev);
    if (rc != 0)
        return -1;
    if (expect_event(b, YAML_DOCUMENT_END_EVENT, &ev) != 0 ||
        (yaml_event_delete(&ev), expect_event(b, YAML_STREAM_END_EVENT, &ev) != 0)) {
        ynode_free(*root);
        *root = NULL;
        return -1;
    }
    yaml_event_delete(&ev);
    return 0;
}

int yaml_load_buffer(const char *name, const char *buf, size_t len, struct ynode **root,
                     struct diag *d)
{
    struct builder b = {.name = name, .buf = buf, .len = len, .d = d};
    *root = NULL;
    if (len > YAML_MAX_BYTES)
        return diag_at(d, name, 1, 1,
                       "file is too large (%zu bytes; a pipeline file is at most %u bytes)", len,
                       YAML_MAX_BYTES);
    if (!yaml_parser_initialize(&b.parser))
        return diag_set(d, "out of memory");
    yaml_parser_set_input_string(&b.parser, (const unsigned char *)buf, len);
    int rc = build_document(&b, root);
    yaml_parser_delete(&b.parser);
    return rc;
}

int yaml_load_file(const char *path, struct ynode **root, struct diag *d)
{
    FILE *f = fopen(path, "rb");
    *root = NULL;
    if (!f)
        return diag_set(d, "%s: cannot open: %s", path, strerror(errno));
    char *buf = malloc(YAML_MAX_BYTES + 1);
    if (!buf) {
        fclose(f);
        return diag_set(d, "out of memory");
    }
    size_t len = fread(buf, 1, YAML_MAX_BYTES + 1, f);
    int read_error = ferror(f);
    fclose(f);
    int rc;
    if (read_error)
        rc = diag_set(d, "%s: cannot read", path);
    else if (len > YAML_MAX_BYTES)
        rc = diag_at(d, path, 1, 1, "file is too large (a pipeline file is at most %u bytes)",
                     YAML_MAX_BYTES);
    else
        rc = yaml_load_buffer(path, buf, len, root, d);
    free(buf);
    return rc;
}

struct ynode *ynode_get(const struct ynode *map, const char *key)
{
    if (!map || map->kind != YNODE_MAP)
        return NULL;
    int i = find_key(map, key);
    return i < 0 ? NULL : map->pairs[i].value;
}

struct ynode *ynode_key(const struct ynode *map, const char *key)
{
    if (!map || map->kind != YNODE_MAP)
        return NULL;
    int i = find_key(map, key);
    return i < 0 ? NULL : map->pairs[i].key;
}
