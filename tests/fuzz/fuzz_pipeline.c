/* libFuzzer target: arbitrary bytes as a pipeline file. The YAML tree builder,
 * interpolation and option validation must refuse or accept without crashing
 * or leaking; the plugins are not loaded (plugin_path points nowhere). */
#include "yamltree.h"
#include "options.h"

#include <stdint.h>
#include <stdlib.h>

static const char *const choices[] = {"a", "b", NULL};
static const struct mtr_option decl[] = {
    {.name = "s", .type = MTR_OPT_STRING},
    {.name = "i", .type = MTR_OPT_INT, .min = -5, .max = 5},
    {.name = "b", .type = MTR_OPT_BOOL},
    {.name = "d", .type = MTR_OPT_DURATION},
    {.name = "z", .type = MTR_OPT_SIZE},
    {.name = "e", .type = MTR_OPT_ENUM, .choices = choices},
    {.name = "k", .type = MTR_OPT_SECRET},
    {.name = "l", .type = MTR_OPT_LIST},
    {0},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ynode *root = NULL;
    struct diag d;
    if (yaml_load_buffer("fuzz.yaml", (const char *)data, size, &root, &d) == 0 && root) {
        struct optset s;
        if (options_parse(decl, root, NULL, "fuzz.yaml", "fuzz", &s, &d) == 0)
            optset_free(&s);
        for (size_t i = 0; root->kind == YNODE_MAP && i < root->n; i++) {
            struct ynode *v = root->pairs[i].value;
            if (v->kind == YNODE_MAP && options_parse(decl, v, NULL, "f", "f", &s, &d) == 0)
                optset_free(&s);
        }
    }
    ynode_free(root);
    return 0;
}
