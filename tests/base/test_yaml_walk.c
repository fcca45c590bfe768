/* base/yaml_walk.c on its own (it is used by five parsers: rules, rule tests,
 * sinks, serve and web configs): YAML 1.2 core-schema typing, the strict
 * typed getters, mapping checks (unknown and duplicate keys), positions in
 * messages, the node budget, the depth check and syntax errors. */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "base/yaml_walk.h"

typedef struct doc {
    yaml_parser_t parser;
    yaml_document_t ydoc;
    arena mem;
    saemon_error err;
    walk w;
    yaml_node_t *root;
} doc;

static void load(doc *d, const char *text)
{
    memset(d, 0, sizeof *d);
    cr_assert(yaml_parser_initialize(&d->parser));
    yaml_parser_set_input_string(&d->parser, (const unsigned char *)text, strlen(text));
    cr_assert(yaml_parser_load(&d->parser, &d->ydoc), "YAML did not load: %s", text);
    d->w = (walk){.file = "t.yaml", .doc = &d->ydoc, .mem = &d->mem, .err = &d->err};
    d->root = yaml_document_get_root_node(&d->ydoc);
    cr_assert_not_null(d->root);
}

static void unload(doc *d)
{
    yaml_document_delete(&d->ydoc);
    yaml_parser_delete(&d->parser);
    arena_free(&d->mem);
}

/* The value under key of the root mapping. */
static yaml_node_t *at(doc *d, const char *key)
{
    yaml_node_t *v = walk_get(&d->w, d->root, key, NULL);
    cr_assert_not_null(v, "no key %s", key);
    return v;
}

Test(yaml_walk, scalars_are_typed_by_the_core_schema_and_quotes_make_strings)
{
    doc d;
    load(&d, "i: 42\nf: 1.5e3\ninf: -.inf\nnan: .nan\nb: true\nn: null\ntilde: ~\ns: hello\n"
             "q: \"42\"\nyes: yes\nhex: 0x1F\n");
    cr_expect_eq(walk_scalar_type(at(&d, "i")), SCALAR_INT);
    cr_expect_eq(walk_scalar_type(at(&d, "f")), SCALAR_FLOAT);
    cr_expect_eq(walk_scalar_type(at(&d, "inf")), SCALAR_FLOAT);
    cr_expect_eq(walk_scalar_type(at(&d, "nan")), SCALAR_FLOAT);
    cr_expect_eq(walk_scalar_type(at(&d, "b")), SCALAR_BOOL);
    cr_expect_eq(walk_scalar_type(at(&d, "n")), SCALAR_NULL);
    cr_expect_eq(walk_scalar_type(at(&d, "tilde")), SCALAR_NULL);
    cr_expect_eq(walk_scalar_type(at(&d, "s")), SCALAR_STRING);
    cr_expect_eq(walk_scalar_type(at(&d, "q")), SCALAR_STRING, "quoted: always a string");
    cr_expect_eq(walk_scalar_type(at(&d, "yes")), SCALAR_STRING, "YAML 1.2: yes is not a boolean");
    cr_expect_eq(walk_scalar_type(at(&d, "hex")), SCALAR_INT);
    unload(&d);
}

Test(yaml_walk, typed_getters_accept_their_type)
{
    doc d;
    load(&d, "u: 7\nf: 2.5\nb: false\ns: text\nbig: 1e39\nninf: -.inf\n");
    uint64_t u;
    float f;
    bool b = true;
    const char *s;
    cr_assert_eq(walk_uint(&d.w, at(&d, "u"), "'u'", 10, &u), SAEMON_OK);
    cr_expect_eq(u, 7);
    cr_assert_eq(walk_float(&d.w, at(&d, "f"), "'f'", &f), SAEMON_OK);
    cr_expect_eq(f, 2.5f);
    cr_assert_eq(walk_float(&d.w, at(&d, "u"), "'u'", &f), SAEMON_OK, "integers are numbers");
    cr_expect_eq(f, 7.0f);
    cr_assert_eq(walk_bool(&d.w, at(&d, "b"), "'b'", &b), SAEMON_OK);
    cr_expect(!b);
    cr_assert_eq(walk_string(&d.w, at(&d, "s"), "'s'", &s), SAEMON_OK);
    cr_expect_str_eq(s, "text");
    cr_assert_eq(walk_float_any(&d.w, at(&d, "ninf"), "'ninf'", &f), SAEMON_OK);
    cr_expect(isinf(f) && f < 0);
    unload(&d);
}

Test(yaml_walk, typed_getters_refuse_with_file_line_column)
{
    doc d;
    load(&d, "u: 11\nneg: -1\nstr: \"3\"\nbig: 1e39\nninf: -.inf\nb: 1\n");
    uint64_t u;
    float f;
    bool b;
    cr_expect_eq(walk_uint(&d.w, at(&d, "u"), "'u'", 10, &u), SAEMON_ERR_RULES);
    cr_expect(strstr(d.err.message, "t.yaml:1:4:"), "%s", d.err.message);
    cr_expect_eq(walk_uint(&d.w, at(&d, "neg"), "'neg'", 10, &u), SAEMON_ERR_RULES);
    cr_expect(strstr(d.err.message, "t.yaml:2:6:") && strstr(d.err.message, "'neg'"), "%s", d.err.message);
    cr_expect_eq(walk_uint(&d.w, at(&d, "str"), "'str'", 10, &u), SAEMON_ERR_RULES, "a quoted number is a string");
    cr_expect(strstr(d.err.message, "t.yaml:3:6:"), "%s", d.err.message);
    cr_expect_eq(walk_float(&d.w, at(&d, "big"), "'big'", &f), SAEMON_ERR_RULES, "does not fit a float");
    cr_expect_eq(walk_float(&d.w, at(&d, "ninf"), "'ninf'", &f), SAEMON_ERR_RULES, "walk_float wants finite");
    cr_expect_eq(walk_bool(&d.w, at(&d, "b"), "'b'", &b), SAEMON_ERR_RULES, "1 is not a boolean");
    cr_expect(strstr(d.err.message, "t.yaml:6:4:"), "%s", d.err.message);
    unload(&d);
}

Test(yaml_walk, check_map_refuses_unknown_and_duplicate_keys)
{
    static const char *const allowed[] = {"a", "b", NULL};
    doc d;
    load(&d, "a: 1\nb: 2\n");
    cr_expect_eq(walk_check_map(&d.w, d.root, "the test map", allowed), SAEMON_OK, "%s", d.err.message);
    cr_expect_eq(walk_map_len(d.root), 2);
    cr_expect_null(walk_get(&d.w, d.root, "c", NULL));
    unload(&d);

    load(&d, "a: 1\nc: 2\n");
    cr_expect_eq(walk_check_map(&d.w, d.root, "the test map", allowed), SAEMON_ERR_RULES);
    cr_expect(strstr(d.err.message, "t.yaml:2:1:") && strstr(d.err.message, "'c'"), "%s", d.err.message);
    unload(&d);

    load(&d, "a: 1\nb: 2\na: 3\n");
    cr_expect_eq(walk_check_map(&d.w, d.root, "the test map", allowed), SAEMON_ERR_RULES);
    cr_expect(strstr(d.err.message, "t.yaml:3:1:"), "duplicate key at its second place: %s", d.err.message);
    unload(&d);

    load(&d, "[1, 2]\n");
    cr_expect_eq(walk_check_map(&d.w, d.root, "the test map", allowed), SAEMON_ERR_RULES);
    cr_expect(strstr(d.err.message, "the test map"), "%s", d.err.message);
    unload(&d);
}

Test(yaml_walk, get_text_leaves_absent_keys_and_refuses_empty_ones)
{
    static const char *const allowed[] = {"file", "empty", NULL};
    doc d;
    load(&d, "file: /etc/x\nempty: \"\"\n");
    cr_assert_eq(walk_check_map(&d.w, d.root, "tls_config", allowed), SAEMON_OK);
    const char *v = "untouched";
    cr_expect_eq(walk_get_text(&d.w, d.root, "tls_config", "missing", &v), SAEMON_OK);
    cr_expect_str_eq(v, "untouched");
    cr_expect_eq(walk_get_text(&d.w, d.root, "tls_config", "file", &v), SAEMON_OK);
    cr_expect_str_eq(v, "/etc/x");
    cr_expect_neq(walk_get_text(&d.w, d.root, "tls_config", "empty", &v), SAEMON_OK);
    cr_expect(strstr(d.err.message, "t.yaml:2:8:") && strstr(d.err.message, "tls_config 'empty'"), "%s",
              d.err.message);
    unload(&d);
}

Test(yaml_walk, sequences_and_descriptions)
{
    doc d;
    load(&d, "seq: [a, 2, {k: v}]\n");
    yaml_node_t *seq = at(&d, "seq");
    cr_assert_eq(walk_seq_len(seq), 3);
    char buf[64];
    cr_expect_str_eq(walk_describe(walk_seq_item(&d.w, seq, 2), buf, sizeof buf), "a mapping");
    cr_expect_str_eq(walk_describe(seq, buf, sizeof buf), "a sequence");
    walk_pos p = walk_mark(walk_seq_item(&d.w, seq, 1));
    cr_expect(p.line == 1 && p.column == 10, "1-based line:column, got %zu:%zu", p.line, p.column);
    unload(&d);
}

Test(yaml_walk, node_budget_stops_alias_expansion)
{
    /* Each level refers to the one above ten times: 10^6 nodes when walked. */
    const char *text = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
                       "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                       "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                       "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                       "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                       "f: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n";
    doc d;
    load(&d, text);
    saemon_status st = SAEMON_OK;
    /* depth-first walk of everything, as a parser would */
    yaml_node_t *stack[64];
    size_t top = 0;
    stack[top++] = d.root;
    while (top && st == SAEMON_OK) {
        yaml_node_t *n = stack[--top];
        if ((st = walk_visit(&d.w, n)) != SAEMON_OK)
            break;
        if (n->type == YAML_SEQUENCE_NODE)
            for (size_t i = 0; i < walk_seq_len(n) && top < 64; i++)
                stack[top++] = walk_seq_item(&d.w, n, i);
        else if (n->type == YAML_MAPPING_NODE)
            for (size_t i = 0; i < walk_map_len(n) && top < 64; i++) {
                yaml_node_t *k, *v;
                walk_map_pair(&d.w, n, i, &k, &v);
                stack[top++] = v;
            }
    }
    cr_expect_neq(st, SAEMON_OK, "a million nodes must hit WALK_MAX_NODES");
    cr_expect_leq(d.w.nodes_visited, WALK_MAX_NODES + 1);
    unload(&d);
}

Test(yaml_walk, depth_check_and_syntax_errors)
{
    saemon_error err = {0};
    char deep[2 * (WALK_MAX_DEPTH + 10) + 1];
    size_t n = WALK_MAX_DEPTH + 10;
    memset(deep, '[', n);
    memset(deep + n, ']', n);
    deep[2 * n] = 0;
    cr_expect_neq(walk_check_depth("deep.yaml", deep, strlen(deep), SAEMON_ERR_RULES, &err), SAEMON_OK);
    cr_expect(strstr(err.message, "deep.yaml:1:"), "%s", err.message);
    const char *ok = "[[[1]]]";
    cr_expect_eq(walk_check_depth("ok.yaml", ok, strlen(ok), SAEMON_ERR_RULES, &err), SAEMON_OK);

    const char *bad = "a: 1\nb: [1, 2\n";
    yaml_parser_t p;
    yaml_document_t docu;
    cr_assert(yaml_parser_initialize(&p));
    yaml_parser_set_input_string(&p, (const unsigned char *)bad, strlen(bad));
    cr_assert(!yaml_parser_load(&p, &docu));
    cr_expect_neq(walk_syntax_error(&p, "bad.yaml", bad, strlen(bad), &err), SAEMON_OK);
    cr_expect(strstr(err.message, "bad.yaml:") && strstr(err.message, "YAML syntax error"), "%s", err.message);
    yaml_parser_delete(&p);
}
