/* The admin API's server: libmicrohttpd on threads of its own inside `run`,
 * listening on admin.listen (HTTP, or HTTPS with admin.tls_cert/tls_key),
 * with bounded memory and time per connection and request bodies capped at
 * 1 MiB. It never touches the engine's state: requests reach the ledger
 * through their own store connections and the engine through its inbox
 * (api.h). Also the client side: `metronome status` asks a running daemon. */
#ifndef MTR_ADMIN_H
#define MTR_ADMIN_H

#include <jansson.h>
#include "config.h"
#include "engine.h"

struct admin;

/* Starts listening. Returns NULL with d set (address in use, bad TLS files). */
struct admin *admin_start(struct config *c, struct clock *clk, struct engine *e, struct diag *d);

/* "127.0.0.1:8844", with the port the kernel chose for port 0. */
const char *admin_address(const struct admin *a);

/* Stops accepting, finishes the requests being answered, frees. Accepts NULL. */
void admin_stop(struct admin *a);

/* GET /api/v1/status from the daemon the pipeline describes. *out is owned by
 * the caller. Returns 0, or -1 with the reason in err. */
int admin_fetch_status(const struct config *c, json_t **out, char *err, size_t errlen);

#endif
