/* The ledger commands (run, status, webhook, subscribe, unsubscribe, connect,
 * deliveries, replay, check); each returns the process exit status. */
#ifndef MTR_COMMANDS_H
#define MTR_COMMANDS_H

#include "cli.h"

int cmd_run(struct invocation *inv);
int cmd_webhook(struct invocation *inv);
int cmd_subscribe(struct invocation *inv);
int cmd_unsubscribe(struct invocation *inv);
int cmd_deliveries(struct invocation *inv);
int cmd_replay(struct invocation *inv);
int cmd_check(struct invocation *inv);
int cmd_connect(struct invocation *inv);
int cmd_status(struct invocation *inv);

#endif
