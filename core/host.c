/* Host API: the services a plugin reaches through its mtr_host_api table,
 * and instance life cycle around create()/destroy(). */
#include "host.h"
#include "log.h"
#include "quota.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void host_log(mtr_ctx *ctx, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(level, ctx ? ctx->name : NULL, fmt, ap);
    va_end(ap);
}

static void host_set_error(mtr_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->error, sizeof ctx->error, fmt, ap);
    va_end(ap);
}

/* The value of a declared option; logs once per call for undeclared names,
 * which is a plugin bug, not an operator's. */
static const struct optval *lookup(mtr_ctx *ctx, const char *option, uint32_t type)
{
    const struct optval *v = optset_find(&ctx->opts, option);
    if (!v) {
        log_msg(MTR_LOG_WARN, ctx->name, "plugin read undeclared option '%s'", option);
        return NULL;
    }
    if (type && v->decl->type != type) {
        log_msg(MTR_LOG_WARN, ctx->name, "plugin read option '%s' as %s, declared %s", option,
                option_type_name(type), option_type_name(v->decl->type));
        return NULL;
    }
    return v->has_value ? v : NULL;
}

static int host_is_set(mtr_ctx *ctx, const char *option)
{
    const struct optval *v = optset_find(&ctx->opts, option);
    return v && v->set;
}

static const char *host_get_string(mtr_ctx *ctx, const char *option)
{
    const struct optval *v = lookup(ctx, option, 0);
    if (!v || v->decl->type == MTR_OPT_LIST)
        return NULL;
    return v->str;
}

static int64_t host_get_int(mtr_ctx *ctx, const char *option)
{
    const struct optval *v = lookup(ctx, option, MTR_OPT_INT);
    return v ? v->num : 0;
}

static int host_get_bool(mtr_ctx *ctx, const char *option)
{
    const struct optval *v = lookup(ctx, option, MTR_OPT_BOOL);
    return v ? (int)v->num : 0;
}

static int64_t host_get_duration_ms(mtr_ctx *ctx, const char *option)
{
    const struct optval *v = lookup(ctx, option, MTR_OPT_DURATION);
    return v ? v->num : 0;
}

static uint64_t host_get_size(mtr_ctx *ctx, const char *option)
{
    const struct optval *v = lookup(ctx, option, MTR_OPT_SIZE);
    return v ? v->size : 0;
}

static int host_get_enum(mtr_ctx *ctx, const char *option)
{
    const struct optval *v = lookup(ctx, option, MTR_OPT_ENUM);
    return v ? (int)v->num : -1;
}

static size_t host_get_list_len(mtr_ctx *ctx, const char *option)
{
    const struct optval *v = lookup(ctx, option, MTR_OPT_LIST);
    return v ? v->list_len : 0;
}

static const char *host_get_list_item(mtr_ctx *ctx, const char *option, size_t index)
{
    const struct optval *v = lookup(ctx, option, MTR_OPT_LIST);
    return v && index < v->list_len ? v->list[index] : NULL;
}

static mtr_time host_now(mtr_ctx *ctx)
{
    return clock_now(ctx->clock);
}

static const char *host_instance_name(mtr_ctx *ctx)
{
    return ctx->name;
}

/* The ledger's shared budget for the daemon's instances; -1 (the plugin
 * keeps its own) for a command's. */
static int host_rate_take(mtr_ctx *ctx, const char *key, int64_t per_minute, int64_t burst,
                          int64_t *wait_s)
{
    *wait_s = 0;
    return ctx && ctx->quota ? quota_take(ctx->quota, key, per_minute, burst, wait_s) : -1;
}

static const struct mtr_host_api the_host = {
    .struct_size = sizeof(struct mtr_host_api),
    .abi_major = MTR_ABI_MAJOR,
    .abi_minor = MTR_ABI_MINOR,
    .log = host_log,
    .set_error = host_set_error,
    .is_set = host_is_set,
    .get_string = host_get_string,
    .get_int = host_get_int,
    .get_bool = host_get_bool,
    .get_duration_ms = host_get_duration_ms,
    .get_size = host_get_size,
    .get_enum = host_get_enum,
    .get_list_len = host_get_list_len,
    .get_list_item = host_get_list_item,
    .now = host_now,
    .instance_name = host_instance_name,
    .rate_take = host_rate_take,
};

const struct mtr_host_api *host_api(void)
{
    return &the_host;
}

int instance_create(const struct plugin_file *pf, const char *name, struct optset *opts,
                    const struct clock *clock, struct instance **out, char *err, size_t errlen)
{
    struct instance *inst = calloc(1, sizeof *inst);
    *out = NULL;
    if (!inst || !(inst->ctx.name = strdup(name))) {
        free(inst);
        optset_free(opts);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    inst->ctx.pf = pf;
    inst->ctx.opts = *opts;
    inst->ctx.clock = clock;
    memset(opts, 0, sizeof *opts);
    int rc = pf->desc.create(&the_host, &inst->ctx, &inst->state);
    if (rc != MTR_OK) {
        snprintf(err, errlen, "%s", inst->ctx.error[0] ? inst->ctx.error : "create() failed");
        instance_destroy(inst);
        return -1;
    }
    *out = inst;
    return 0;
}

int instance_clone(const struct instance *src, const char *name, struct instance **out, char *err,
                   size_t errlen)
{
    struct optset opts;
    if (optset_copy(&src->ctx.opts, &opts) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return instance_create(src->ctx.pf, name, &opts, src->ctx.clock, out, err, errlen);
}

int instance_start(struct instance *inst, struct diag *d)
{
    if (inst->started || !inst->ctx.pf->desc.start)
        return 0;
    if (inst->ctx.pf->desc.start(inst->state) != MTR_OK)
        return diag_set(d, "%s: %s", inst->ctx.name,
                        inst->ctx.error[0] ? inst->ctx.error : "start failed");
    inst->started = 1;
    return 0;
}

void instance_destroy(struct instance *inst)
{
    if (!inst)
        return;
    if (inst->started && inst->ctx.pf->desc.stop)
        inst->ctx.pf->desc.stop(inst->state);
    if (inst->state)
        inst->ctx.pf->desc.destroy(inst->state);
    optset_free(&inst->ctx.opts);
    free(inst->ctx.name);
    free(inst);
}
