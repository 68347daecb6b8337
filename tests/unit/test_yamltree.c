/* The YAML tree builder: positions, limits and refusals. */
#include "yamltree.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

static void load_fails(const char *text, const char *message)
{
    struct ynode *root = NULL;
    struct diag d;
    cr_expect_eq(yaml_load_buffer("t.yaml", text, strlen(text), &root, &d), -1, "%s loaded", text);
    cr_expect(strstr(d.text, message) != NULL, "got '%s', want '%s'", d.text, message);
    cr_expect_null(root);
}

Test(yamltree, positions)
{
    const char *text = "a: 1\nb:\n  - x\n  - {c: 'd'}\n";
    struct ynode *root;
    struct diag d;
    cr_assert_eq(yaml_load_buffer("t.yaml", text, strlen(text), &root, &d), 0, "%s", d.text);
    struct ynode *b = ynode_get(root, "b");
    cr_assert_not_null(b);
    cr_expect_eq(b->kind, YNODE_SEQ);
    cr_expect_eq(b->n, 2);
    cr_expect_eq(b->items[1]->line, 4);
    cr_expect_eq(b->items[1]->col, 5);
    struct ynode *c = ynode_get(b->items[1], "c");
    cr_expect_str_eq(c->value, "d");
    cr_expect_eq(c->plain, 0);
    cr_expect_eq(ynode_key(root, "b")->line, 2);
    ynode_free(root);
}

Test(yamltree, refusals)
{
    load_fails("a: 1\na: 2\n", "t.yaml:2:1: duplicate key 'a' (first at line 1)");
    load_fails("a: &x 1\nb: *x\n", "t.yaml:1:4: YAML anchors and aliases are not supported");
    load_fails("a:\n\tb: 1\n", "t.yaml:2:1: tab character");
    load_fails("a: [1, 2\n", "t.yaml:2:1: invalid YAML");
    load_fails("? [a]\n: 1\n", "a mapping key must be a plain name");
    load_fails("a: 1\n---\nb: 2\n", "exactly one YAML document");
    load_fails("a: \"x\\0y\"\n", "NUL character");
}

Test(yamltree, depth_and_size_limits)
{
    size_t depth = 200;
    char *text = malloc(depth * 2 + 8);
    cr_assert_not_null(text);
    size_t n = 0;
    for (size_t i = 0; i < depth; i++)
        text[n++] = '[';
    for (size_t i = 0; i < depth; i++)
        text[n++] = ']';
    text[n] = '\0';
    load_fails(text, "nesting deeper than 64 levels");
    free(text);
    size_t big = YAML_MAX_BYTES + 10;
    char *large = malloc(big + 1);
    cr_assert_not_null(large);
    memset(large, '#', big);
    large[big] = '\0';
    load_fails(large, "t.yaml:1:1: file is too large");
    free(large);
}

Test(yamltree, empty_document)
{
    struct ynode *root = (struct ynode *)1;
    struct diag d;
    cr_expect_eq(yaml_load_buffer("t.yaml", "# nothing\n", 10, &root, &d), 0);
    cr_expect_null(root);
}
