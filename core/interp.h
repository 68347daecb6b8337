/* Environment interpolation of pipeline scalars: ${VAR}, ${VAR:-default}, and
 * $${ for a literal "${". */
#ifndef MTR_INTERP_H
#define MTR_INTERP_H

#include <stddef.h>

/* Expands s into a newly malloc'd string (*out, owned by the caller).
 * Returns 0, or -1 with a message in err (which names variables, never values). */
int interp_expand(const char *s, char **out, char *err, size_t errlen);

#endif
