/* The metronome plugin ABI: what a shared object must export to be loaded as a
 * cadence policy, data source, store backend or sink. A plugin exports exactly
 * one symbol, mtr_plugin_entry(), returning a const descriptor that starts with
 * a frozen header (magic, ABI version, struct size, kind). It declares its
 * options so the core can validate the YAML before the plugin sees it, and it
 * reaches core services only through the host table passed to create(), so a
 * plugin never links against the daemon. This header depends on libc only.
 *
 * ABI rules: structs only grow at the end; the core copies min(struct_size,
 * sizeof) of a descriptor into a zeroed one, so fields added later read as
 * NULL/0 for older plugins. A plugin built for a newer minor than the daemon
 * is refused, as is any other major. */
#ifndef METRONOME_PLUGIN_H
#define METRONOME_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MTR_PLUGIN_MAGIC 0x4d54524eu /* "MTRN" */
#define MTR_ABI_MAJOR 1
#define MTR_ABI_MINOR                                                                              \
    5 /* 1.1: store read_only and check; 1.2: store listings, webhook_delete;                      \
        1.3: batched outcomes, shared quotas (store and host); 1.4: deferred deliveries;           \
        1.5: claims held by the core's transaction */
#define MTR_PLUGIN_ENTRY_SYMBOL "mtr_plugin_entry"

#if defined(__GNUC__)
#define MTR_PLUGIN_EXPORT __attribute__((visibility("default")))
#define MTR_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define MTR_PLUGIN_EXPORT
#define MTR_PRINTF(fmt, args)
#endif

/* Status codes returned by every fallible plugin call. */
enum mtr_status {
    MTR_OK = 0,
    MTR_ERR = -1,     /* failed; the text is in the error buffer (host->set_error) */
    MTR_EAGAIN = -2,  /* transient: the same call may succeed later */
    MTR_ENOTSUP = -3, /* this plugin does not support the call */
};

/* Instants are whole seconds since 1970-01-01T00:00:00Z (UTC, no leap seconds). */
typedef int64_t mtr_time;

enum mtr_kind {
    MTR_KIND_CADENCE = 1,
    MTR_KIND_SOURCE = 2,
    MTR_KIND_STORE = 3,
    MTR_KIND_SINK = 4,
};

/* ---- Declared options ------------------------------------------------------ */

enum mtr_option_type {
    MTR_OPT_STRING = 1,
    MTR_OPT_INT = 2,      /* decimal integer, optional bounds [min, max] */
    MTR_OPT_BOOL = 3,     /* true | false */
    MTR_OPT_DURATION = 4, /* 500ms, 15s, 10m, 1h30m, 2d; read as milliseconds */
    MTR_OPT_SIZE = 5,     /* 1048576, 64KiB, 1MB, 2GiB; read as bytes */
    MTR_OPT_ENUM = 6,     /* one of choices[] */
    MTR_OPT_SECRET = 7,   /* a string that never appears in any output */
    MTR_OPT_LIST = 8,     /* a sequence of strings */
};

enum mtr_option_flags {
    MTR_OPT_REQUIRED = 1u << 0,
};

/* One declared option. An array of these ends with an entry whose name is NULL.
 * default_value is written as it would be in YAML ("15s", "64", "true");
 * min/max bound INT values, DURATION milliseconds and SIZE bytes when max > min. */
struct mtr_option {
    const char *name;
    uint32_t type;  /* enum mtr_option_type */
    uint32_t flags; /* enum mtr_option_flags */
    const char *default_value;
    const char *const *choices; /* MTR_OPT_ENUM: NULL-terminated */
    int64_t min;
    int64_t max;
    const char *help;
};

/* ---- Host services ----------------------------------------------------------- */

/* One per plugin instance, owned by the core for the instance's lifetime. */
typedef struct mtr_ctx mtr_ctx;

enum mtr_log_level {
    MTR_LOG_ERROR = 0,
    MTR_LOG_WARN = 1,
    MTR_LOG_INFO = 2,
    MTR_LOG_DEBUG = 3,
};

/* Append-only table of core services, valid from create() to destroy().
 * Option getters read the validated value (or the declared default); the
 * strings they return live as long as the instance.
 *
 * Threads: an instance of a source or a store is called by one thread at a
 * time, create() to destroy(): the engine thread, or - for the instances the
 * admin API creates from the same options (a second connection to the same
 * ledger, in the same process) - one of the API's threads. So a store keeps
 * no process-wide state and never opens its files behind its database's back
 * (closing a descriptor drops every POSIX lock the process holds on the
 * file). create/start/stop/destroy of sinks happen on the engine thread. A
 * sink's submit() and poll() run on the delivery thread (the courier), one
 * call at a time, never at the same time as each other; a sink needs no locks
 * of its own. log() and
 * set_error() may be called from any thread (log() writes whole lines under
 * a lock; set_error() writes the calling instance's own buffer). The option
 * getters, now() and instance_name() only read and are safe from any thread. */
struct mtr_host_api {
    uint32_t struct_size;
    uint16_t abi_major;
    uint16_t abi_minor;
    void (*log)(mtr_ctx *ctx, int level, const char *fmt, ...) MTR_PRINTF(3, 4);
    void (*set_error)(mtr_ctx *ctx, const char *fmt, ...) MTR_PRINTF(2, 3);
    int (*is_set)(mtr_ctx *ctx, const char *option);
    const char *(*get_string)(mtr_ctx *ctx, const char *option); /* string, secret, enum */
    int64_t (*get_int)(mtr_ctx *ctx, const char *option);
    int (*get_bool)(mtr_ctx *ctx, const char *option);
    int64_t (*get_duration_ms)(mtr_ctx *ctx, const char *option);
    uint64_t (*get_size)(mtr_ctx *ctx, const char *option);
    int (*get_enum)(mtr_ctx *ctx, const char *option); /* index into choices, -1 unset */
    size_t (*get_list_len)(mtr_ctx *ctx, const char *option);
    const char *(*get_list_item)(mtr_ctx *ctx, const char *option, size_t index);
    mtr_time (*now)(mtr_ctx *ctx); /* the daemon's clock: wall, fixed (--now) or virtual */
    const char *(*instance_name)(mtr_ctx *ctx);
    /* ABI 1.3: check struct_size covers it before calling. Takes one request
     * from the application-wide rate limit `key` (per_minute, burst), one
     * budget shared by every node on the ledger. Returns 1 when granted; 0
     * when the budget is spent, *wait_s the seconds until it has refilled;
     * -1 when this host keeps no shared budget here (a command, not the
     * daemon): the plugin keeps its own. */
    int (*rate_take)(mtr_ctx *ctx, const char *key, int64_t per_minute, int64_t burst,
                     int64_t *wait_s);
};

/* Whether a host table has the member `field` (added in a later ABI minor). */
#define MTR_HOST_HAS(host, field)                                                                  \
    ((host)->struct_size >= offsetof(struct mtr_host_api, field) + sizeof((host)->field))

/* ---- Kind-specific operations -------------------------------------------------- */

struct mtr_cadence_ops;
struct mtr_source_ops;
struct mtr_store_ops;
struct mtr_sink_ops;

/* ---- The descriptor ------------------------------------------------------------ */

/* Lifecycle: create (parse options, allocate; no I/O) -> start -> kind calls ->
 * stop (idempotent) -> destroy (accepts a half-built state, and NULL).
 * create() reports failure by returning MTR_ERR after host->set_error(). */
struct mtr_plugin {
    /* frozen header */
    uint32_t magic;
    uint16_t abi_major;
    uint16_t abi_minor;
    uint32_t struct_size; /* sizeof(struct mtr_plugin) as the plugin was built */
    uint32_t kind;        /* enum mtr_kind */
    /* identity */
    const char *name;
    const char *version;
    const char *description;
    const struct mtr_option *options;
    /* lifecycle */
    int (*create)(const struct mtr_host_api *host, mtr_ctx *ctx, void **state);
    int (*start)(void *state);
    void (*stop)(void *state);
    void (*destroy)(void *state);
    /* exactly one of these, matching kind */
    const struct mtr_cadence_ops *cadence;
    const struct mtr_source_ops *source;
    const struct mtr_store_ops *store;
    const struct mtr_sink_ops *sink;
};

/* Fills in the frozen header; use as the first initialiser of a descriptor. */
#define MTR_PLUGIN_HEADER(kind_)                                                                   \
    .magic = MTR_PLUGIN_MAGIC, .abi_major = MTR_ABI_MAJOR, .abi_minor = MTR_ABI_MINOR,             \
    .struct_size = sizeof(struct mtr_plugin), .kind = (kind_)

/* Fills in a kind ops table's struct_size; use as its first initialiser:
 *   static const struct mtr_sink_ops my_ops = {MTR_OPS_HEADER(mtr_sink_ops), .submit = ...};
 * The loader refuses a table whose struct_size is smaller than ABI 1.0's. */
#define MTR_OPS_HEADER(type) .struct_size = sizeof(struct type)

typedef const struct mtr_plugin *(*mtr_plugin_entry_fn)(void);

/* Declares and defines the entry point returning the given descriptor. */
#define MTR_PLUGIN_DEFINE(descriptor)                                                              \
    MTR_PLUGIN_EXPORT const struct mtr_plugin *mtr_plugin_entry(void);                             \
    const struct mtr_plugin *mtr_plugin_entry(void)                                                \
    {                                                                                              \
        return &(descriptor);                                                                      \
    }

/* The frozen layout (LP64). Changing any of these breaks every built plugin. */
#if defined(__LP64__) && !defined(__cplusplus)
_Static_assert(offsetof(struct mtr_plugin, magic) == 0, "ABI: magic");
_Static_assert(offsetof(struct mtr_plugin, abi_major) == 4, "ABI: abi_major");
_Static_assert(offsetof(struct mtr_plugin, abi_minor) == 6, "ABI: abi_minor");
_Static_assert(offsetof(struct mtr_plugin, struct_size) == 8, "ABI: struct_size");
_Static_assert(offsetof(struct mtr_plugin, kind) == 12, "ABI: kind");
_Static_assert(offsetof(struct mtr_plugin, name) == 16, "ABI: name");
_Static_assert(offsetof(struct mtr_plugin, options) == 40, "ABI: options");
_Static_assert(offsetof(struct mtr_plugin, create) == 48, "ABI: create");
_Static_assert(offsetof(struct mtr_plugin, destroy) == 72, "ABI: destroy");
_Static_assert(offsetof(struct mtr_plugin, cadence) == 80, "ABI: cadence");
_Static_assert(offsetof(struct mtr_plugin, sink) == 104, "ABI: sink");
_Static_assert(sizeof(struct mtr_plugin) == 112, "ABI 1.0 descriptor size");
_Static_assert(offsetof(struct mtr_option, type) == 8, "ABI: option type");
_Static_assert(offsetof(struct mtr_option, default_value) == 16, "ABI: option default");
_Static_assert(offsetof(struct mtr_option, min) == 32, "ABI: option min");
_Static_assert(offsetof(struct mtr_option, help) == 48, "ABI: option help");
_Static_assert(sizeof(struct mtr_option) == 56, "ABI 1.0 option size");
_Static_assert(offsetof(struct mtr_host_api, log) == 8, "ABI: host log");
_Static_assert(offsetof(struct mtr_host_api, get_string) == 32, "ABI: host get_string");
_Static_assert(offsetof(struct mtr_host_api, now) == 96, "ABI: host now");
_Static_assert(offsetof(struct mtr_host_api, rate_take) == 112, "ABI 1.3: host rate_take");
_Static_assert(sizeof(struct mtr_host_api) == 120, "ABI 1.3 host table size");
#endif

#ifdef __cplusplus
}
#endif

#endif
