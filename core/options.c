/* Declared options: parsing and range checks per type, defaults, and the
 * "did you mean" suggestions in messages. A secret's value is never written
 * into a message. */
#include "options.h"
#include "scalar.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *option_type_name(uint32_t type)
{
    switch (type) {
    case MTR_OPT_STRING:
        return "string";
    case MTR_OPT_INT:
        return "int";
    case MTR_OPT_BOOL:
        return "bool";
    case MTR_OPT_DURATION:
        return "duration";
    case MTR_OPT_SIZE:
        return "size";
    case MTR_OPT_ENUM:
        return "enum";
    case MTR_OPT_SECRET:
        return "secret";
    case MTR_OPT_LIST:
        return "list";
    }
    return NULL;
}

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return (size_t)-1;
    size_t row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

const char *suggest_closest(const char *word, const char *const *candidates, size_t n)
{
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    for (size_t i = 0; i < n; i++) {
        size_t d = edit_distance(word, candidates[i]);
        if (d < best_d) {
            best_d = d;
            best = candidates[i];
        }
    }
    size_t limit = strlen(word) / 3 + 1;
    return best_d <= limit && best_d > 0 ? best : NULL;
}

static size_t count_choices(const char *const *choices)
{
    size_t n = 0;
    while (choices && choices[n])
        n++;
    return n;
}

static void join_choices(const char *const *choices, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; choices && choices[i] && used < len; i++) {
        int w = snprintf(buf + used, len - used, "%s%s", i ? ", " : "", choices[i]);
        if (w < 0)
            return;
        used += (size_t)w;
    }
}

static const char *type_hint(uint32_t type)
{
    switch (type) {
    case MTR_OPT_INT:
        return "an integer";
    case MTR_OPT_BOOL:
        return "true or false";
    case MTR_OPT_DURATION:
        return "a duration (500ms, 15s, 10m, 1h30m, 2d)";
    case MTR_OPT_SIZE:
        return "a size (65536, 64KiB, 1MB)";
    case MTR_OPT_LIST:
        return "a list";
    default:
        return "a string";
    }
}

/* Range check on a parsed number; bounds apply when max > min. */
static int check_range(const struct mtr_option *o, int64_t v, char *err, size_t errlen)
{
    if (o->max <= o->min || (v >= o->min && v <= o->max))
        return 0;
    if (o->type == MTR_OPT_DURATION) {
        char lo[32], hi[32];
        format_duration(o->min, lo, sizeof lo);
        format_duration(o->max, hi, sizeof hi);
        snprintf(err, errlen, "'%s' must be between %s and %s", o->name, lo, hi);
    } else {
        snprintf(err, errlen, "'%s' must be between %lld and %lld", o->name, (long long)o->min,
                 (long long)o->max);
    }
    return -1;
}

/* Parses a scalar text into v according to v->decl. */
static int parse_scalar(struct optval *v, const char *text, char *err, size_t errlen)
{
    const struct mtr_option *o = v->decl;
    int b;
    switch (o->type) {
    case MTR_OPT_STRING:
    case MTR_OPT_SECRET:
        if (text[0] == '\0' && (o->flags & MTR_OPT_REQUIRED)) {
            snprintf(err, errlen, "'%s' must not be empty", o->name);
            return -1;
        }
        break;
    case MTR_OPT_INT:
        if (parse_int64(text, &v->num) != 0) {
            snprintf(err, errlen, "'%s' must be an integer, not '%s'", o->name, text);
            return -1;
        }
        if (check_range(o, v->num, err, errlen) != 0)
            return -1;
        break;
    case MTR_OPT_BOOL:
        if (parse_bool(text, &b) != 0) {
            snprintf(err, errlen, "'%s' must be true or false, not '%s'", o->name, text);
            return -1;
        }
        v->num = b;
        break;
    case MTR_OPT_DURATION:
        if (parse_duration_ms(text, &v->num) != 0) {
            snprintf(err, errlen, "'%s': bad duration '%s' (write 500ms, 15s, 10m, 1h30m, 2d)",
                     o->name, text);
            return -1;
        }
        if (check_range(o, v->num, err, errlen) != 0)
            return -1;
        break;
    case MTR_OPT_SIZE:
        if (parse_size(text, &v->size) != 0) {
            snprintf(err, errlen, "'%s': bad size '%s' (write 65536, 64KiB, 1MiB, 1MB)", o->name,
                     text);
            return -1;
        }
        if (v->size > INT64_MAX || check_range(o, (int64_t)v->size, err, errlen) != 0) {
            if (v->size > INT64_MAX)
                snprintf(err, errlen, "'%s': size too large", o->name);
            return -1;
        }
        break;
    case MTR_OPT_ENUM: {
        size_t n = count_choices(o->choices);
        for (size_t i = 0; i < n; i++) {
            if (strcmp(o->choices[i], text) == 0) {
                v->num = (int64_t)i;
                goto ok;
            }
        }
        char list[512];
        join_choices(o->choices, list, sizeof list);
        const char *hint = suggest_closest(text, o->choices, n);
        snprintf(err, errlen, "'%s' must be one of %s, not '%s'%s%s%s", o->name, list, text,
                 hint ? " (did you mean '" : "", hint ? hint : "", hint ? "'?)" : "");
        return -1;
    }
    default:
        snprintf(err, errlen, "'%s' has an unknown type", o->name);
        return -1;
    }
ok:
    free(v->str);
    v->str = strdup(text);
    if (!v->str) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    v->has_value = 1;
    return 0;
}

static int parse_list_text(struct optval *v, const char *text)
{
    /* a default list is written comma-separated: "a,b" */
    size_t n = text[0] ? 1 : 0;
    for (const char *p = text; *p; p++)
        n += *p == ',';
    v->list = calloc(n ? n : 1, sizeof *v->list);
    if (!v->list)
        return -1;
    const char *start = text;
    for (size_t i = 0; i < n; i++) {
        const char *end = strchr(start, ',');
        size_t len = end ? (size_t)(end - start) : strlen(start);
        v->list[i] = strndup(start, len);
        if (!v->list[i])
            return -1;
        v->list_len++;
        start = end ? end + 1 : start + len;
    }
    v->has_value = 1;
    return 0;
}

static int parse_node(struct optval *v, const struct ynode *node, const char *file, struct diag *d)
{
    const struct mtr_option *o = v->decl;
    char err[1024];
    v->node = node;
    v->set = 1;
    if (o->type == MTR_OPT_LIST) {
        if (node->kind != YNODE_SEQ)
            return ynode_at(d, file, node, "'%s' must be a list, not %s", o->name,
                            ynode_kind_name(node->kind));
        v->list = calloc(node->n ? node->n : 1, sizeof *v->list);
        if (!v->list)
            return diag_set(d, "out of memory");
        for (size_t i = 0; i < node->n; i++) {
            const struct ynode *it = node->items[i];
            if (it->kind != YNODE_SCALAR)
                return ynode_at(d, file, it, "'%s' items must be scalars, not %s", o->name,
                                ynode_kind_name(it->kind));
            v->list[i] = strdup(it->value);
            if (!v->list[i])
                return diag_set(d, "out of memory");
            v->list_len++;
        }
        v->has_value = 1;
        return 0;
    }
    if (node->kind != YNODE_SCALAR)
        return ynode_at(d, file, node, "'%s' must be %s, not %s", o->name, type_hint(o->type),
                        ynode_kind_name(node->kind));
    if (parse_scalar(v, node->value, err, sizeof err) != 0) {
        if (o->type == MTR_OPT_SECRET)
            return ynode_at(d, file, node, "'%s' must not be empty", o->name);
        return ynode_at(d, file, node, "%s", err);
    }
    return 0;
}

static int is_reserved(const char *key, const char *const *reserved)
{
    for (size_t i = 0; reserved && reserved[i]; i++)
        if (strcmp(key, reserved[i]) == 0)
            return 1;
    return 0;
}

static size_t count_decl(const struct mtr_option *decl)
{
    size_t n = 0;
    while (decl && decl[n].name)
        n++;
    return n;
}

static int unknown_key(const struct mtr_option *decl, size_t n, const struct ynode *key,
                       const char *file, const char *what, struct diag *d)
{
    const char *names[128];
    size_t m = n < 128 ? n : 128;
    for (size_t i = 0; i < m; i++)
        names[i] = decl[i].name;
    const char *hint = suggest_closest(key->value, names, m);
    if (hint)
        return ynode_at(d, file, key, "unknown option '%s' for %s (did you mean '%s'?)", key->value,
                        what, hint);
    return ynode_at(d, file, key, "unknown option '%s' for %s", key->value, what);
}

static int apply_default(struct optval *v, struct diag *d)
{
    char err[512];
    const char *def = v->decl->default_value;
    if (!def)
        return 0;
    int rc = v->decl->type == MTR_OPT_LIST ? parse_list_text(v, def)
                                           : parse_scalar(v, def, err, sizeof err);
    if (rc != 0)
        return diag_set(d, "bad default for '%s'", v->decl->name);
    return 0;
}

int options_parse(const struct mtr_option *decl, const struct ynode *map,
                  const char *const *reserved, const char *file, const char *what,
                  struct optset *out, struct diag *d)
{
    size_t n = count_decl(decl);
    out->n = 0;
    out->v = NULL;
    if (map && map->kind != YNODE_MAP)
        return ynode_at(d, file, map, "%s must be a mapping, not %s", what,
                        ynode_kind_name(map->kind));
    out->v = calloc(n ? n : 1, sizeof *out->v);
    if (!out->v)
        return diag_set(d, "out of memory");
    out->n = n;
    for (size_t i = 0; i < n; i++)
        out->v[i].decl = &decl[i];
    for (size_t k = 0; map && k < map->n; k++) {
        const struct ynode *key = map->pairs[k].key;
        if (is_reserved(key->value, reserved))
            continue;
        struct optval *v = NULL;
        for (size_t i = 0; i < n; i++)
            if (strcmp(decl[i].name, key->value) == 0)
                v = &out->v[i];
        if (!v || parse_node(v, map->pairs[k].value, file, d) != 0) {
            if (!v)
                unknown_key(decl, n, key, file, what, d);
            goto out_free;
        }
    }
    for (size_t i = 0; i < n; i++) {
        struct optval *v = &out->v[i];
        if (v->set)
            continue;
        if (decl[i].flags & MTR_OPT_REQUIRED) {
            ynode_at(d, file, map, "missing required option '%s' for %s", decl[i].name, what);
            goto out_free;
        }
        if (apply_default(v, d) != 0)
            goto out_free;
    }
    return 0;
out_free:
    optset_free(out);
    return -1;
}

void optset_free(struct optset *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->v[i].str);
        for (size_t j = 0; j < s->v[i].list_len; j++)
            free(s->v[i].list[j]);
        free(s->v[i].list);
    }
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

int optset_copy(const struct optset *src, struct optset *out)
{
    out->n = 0;
    out->v = calloc(src->n ? src->n : 1, sizeof *out->v);
    if (!out->v)
        return -1;
    for (size_t i = 0; i < src->n; i++, out->n++) {
        const struct optval *a = &src->v[i];
        struct optval *b = &out->v[i];
        *b = *a;
        b->node = NULL; /* positions belong to the tree the original was read from */
        b->str = NULL;
        b->list = NULL;
        b->list_len = 0;
        if (a->str && !(b->str = strdup(a->str)))
            goto fail;
        if (a->list_len && !(b->list = calloc(a->list_len, sizeof *b->list)))
            goto fail;
        for (; b->list_len < a->list_len; b->list_len++)
            if (!(b->list[b->list_len] = strdup(a->list[b->list_len])))
                goto fail;
    }
    return 0;
fail:
    out->n++;
    optset_free(out);
    return -1;
}

const struct optval *optset_find(const struct optset *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i].decl->name, name) == 0)
            return &s->v[i];
    return NULL;
}

static int valid_option_name(const char *s)
{
    if (!s || !*s || strlen(s) > 64)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return 0;
    return 1;
}

int options_check_decl(const struct mtr_option *decl, char *err, size_t errlen)
{
    size_t n = count_decl(decl);
    if (n > 128) {
        snprintf(err, errlen, "declares more than 128 options");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const struct mtr_option *o = &decl[i];
        if (!valid_option_name(o->name)) {
            snprintf(err, errlen, "option #%zu has an invalid name (want [a-z0-9_]+)", i + 1);
            return -1;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(decl[j].name, o->name) == 0) {
                snprintf(err, errlen, "option '%s' is declared twice", o->name);
                return -1;
            }
        if (!option_type_name(o->type)) {
            snprintf(err, errlen, "option '%s' has unknown type %u", o->name, o->type);
            return -1;
        }
        if (o->type == MTR_OPT_ENUM && count_choices(o->choices) == 0) {
            snprintf(err, errlen, "enum option '%s' declares no choices", o->name);
            return -1;
        }
        if (o->default_value && o->type != MTR_OPT_LIST) {
            struct optval v = {.decl = o};
            char why[256];
            int rc = parse_scalar(&v, o->default_value, why, sizeof why);
            free(v.str);
            if (rc != 0) {
                snprintf(err, errlen, "option '%s' has a bad default: %s", o->name, why);
                return -1;
            }
        }
    }
    return 0;
}
