/* Declared options: validation of a YAML mapping against a plugin's (or the
 * core's) option table, and the typed values the host API hands to plugins.
 * Everything an operator can get wrong is caught here, before create(). */
#ifndef MTR_OPTIONS_H
#define MTR_OPTIONS_H

#include <metronome/plugin.h>
#include "diag.h"
#include "yamltree.h"

struct optval {
    const struct mtr_option *decl;
    const struct ynode *node; /* where it was set; NULL when defaulted or unset */
    int set;                  /* written in the YAML */
    int has_value;            /* set, or defaulted */
    char *str;                /* string, secret, enum name; owned */
    int64_t num;              /* int, bool, duration in ms, enum index */
    uint64_t size;            /* size in bytes */
    char **list;              /* list items; owned */
    size_t list_len;
};

struct optset {
    struct optval *v;
    size_t n;
};

/* Validates map against decl. Keys listed in `reserved` (NULL-terminated, may
 * be NULL) belong to the caller and are skipped. `what` names the block in
 * messages ("sink plugin 'http'"). On success *out is owned by the caller
 * (optset_free); on failure d holds a positioned message. */
int options_parse(const struct mtr_option *decl, const struct ynode *map,
                  const char *const *reserved, const char *file, const char *what,
                  struct optset *out, struct diag *d);

void optset_free(struct optset *s);
/* A deep copy of src into *out (owned by the caller, optset_free); values
 * only, without positions. Returns 0 or -1 (out of memory). */
int optset_copy(const struct optset *src, struct optset *out);

/* The value of a declared option, or NULL if the name is not declared. */
const struct optval *optset_find(const struct optset *s, const char *name);

/* Checks a plugin's option table itself: names, types, choices, defaults. */
int options_check_decl(const struct mtr_option *decl, char *err, size_t errlen);

const char *option_type_name(uint32_t type);

/* The candidate closest to word by edit distance, if close enough; else NULL. */
const char *suggest_closest(const char *word, const char *const *candidates, size_t n);

#endif
