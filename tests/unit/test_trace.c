/*
 * test_trace.c - W3C traceparent parsing and propagation, span ids, the
 * span sink and the OTLP/JSON and timeline renderings (lib/mesh/trace.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "mesh/mesh_err.h"
#include "mesh/mesh_msg.h"
#include "mesh/mesh_trace.h"

#define TP_A     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
#define TRACE_A  "4bf92f3577b34da6a3ce929d0e0e4736"
#define PARENT_A "00f067aa0ba902b7"

static bool is_hex(const char *s, size_t n)
{
    if (strlen(s) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return strspn(s, "0") != n;
}

static int parse(const char *s, mesh_traceparent_t *tp)
{
    return mesh_traceparent_parse(s, strlen(s), tp);
}

static void test_traceparent_parse(void **state)
{
    (void)state;
    mesh_traceparent_t tp;
    assert_int_equal(parse(TP_A, &tp), 0);
    assert_string_equal(tp.trace_id, TRACE_A);
    assert_string_equal(tp.parent_id, PARENT_A);
    assert_int_equal(tp.flags, 1);
    assert_int_equal(parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00", &tp), 0);
    assert_int_equal(tp.flags, 0);
    /* a later version may be longer, with a '-' after the flags */
    assert_int_equal(parse("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra", &tp),
                     0);

    const char *bad[] = {
        "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",  /* version ff */
        "00-00000000000000000000000000000000-b7ad6b7169203331-01",  /* zero trace id */
        "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",  /* zero parent id */
        "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",  /* upper case */
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-", /* v00 longer than 55 */
        "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01x", /* no '-' after flags */
        "00-0af7651916cd43dd8448eb211c80319c_b7ad6b7169203331-01",  /* separator */
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0g",  /* flags not hex */
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333-01",   /* short */
        "",
    };
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        memset(&tp, 0x5a, sizeof(tp));
        if (parse(bad[k], &tp) != MESH_EINVAL) {
            print_error("accepted '%s'\n", bad[k]);
            fail();
        }
    }
    assert_int_equal(mesh_traceparent_parse(NULL, 55, &tp), MESH_EINVAL);
}

static void test_format_round_trip_and_ids(void **state)
{
    (void)state;
    char out[MESH_TRACEPARENT_MAX + 1];
    mesh_traceparent_format(TRACE_A, PARENT_A, 1, out);
    assert_string_equal(out, TP_A);
    assert_true(mesh_traceparent_valid(out, strlen(out)));

    char a[MESH_SPAN_ID_HEX + 1], b[MESH_SPAN_ID_HEX + 1], t[MESH_TRACE_ID_HEX + 1];
    mesh_span_id_new(a);
    mesh_span_id_new(b);
    mesh_trace_id_new(t);
    assert_true(is_hex(a, MESH_SPAN_ID_HEX));
    assert_true(is_hex(b, MESH_SPAN_ID_HEX));
    assert_true(is_hex(t, MESH_TRACE_ID_HEX));
    assert_string_not_equal(a, b);
}

static void test_span_propagation(void **state)
{
    (void)state;
    /* gateway: continues the client's trace */
    mesh_span_t gw;
    mesh_span_start(&gw, "gateway POST /v1/conversations/{id}/messages", MESH_SPAN_SERVER, TP_A);
    assert_string_equal(gw.trace_id, TRACE_A);
    assert_string_equal(gw.parent_span_id, PARENT_A);
    assert_true(is_hex(gw.span_id, MESH_SPAN_ID_HEX));
    assert_string_not_equal(gw.span_id, PARENT_A);
    assert_int_equal(gw.flags, 1);
    assert_true(gw.start_unix_nano > UINT64_C(1600000000) * 1000000000);

    /* the request it sends on carries its span id as parent */
    char tp[MESH_TRACEPARENT_MAX + 1];
    mesh_span_child_tp(&gw, tp);
    mesh_traceparent_t parsed;
    assert_int_equal(parse(tp, &parsed), 0);
    assert_string_equal(parsed.trace_id, TRACE_A);
    assert_string_equal(parsed.parent_id, gw.span_id);

    /* the router's span from that request, and an in-process child */
    mesh_span_t turn, llm;
    mesh_span_start(&turn, "router turn", MESH_SPAN_SERVER, tp);
    assert_string_equal(turn.parent_span_id, gw.span_id);
    mesh_span_start_child(&llm, "llm chat", MESH_SPAN_CLIENT, &turn);
    assert_string_equal(llm.trace_id, TRACE_A);
    assert_string_equal(llm.parent_span_id, turn.span_id);
    assert_string_not_equal(llm.span_id, turn.span_id);

    /* no or a bad traceparent: a new sampled root */
    mesh_span_t root;
    mesh_span_start(&root, "x", MESH_SPAN_SERVER, NULL);
    assert_true(is_hex(root.trace_id, MESH_TRACE_ID_HEX));
    assert_string_equal(root.parent_span_id, "");
    assert_int_equal(root.flags, MESH_TRACE_FLAG_SAMPLED);
    mesh_span_start(&root, "x", MESH_SPAN_SERVER, "00-garbage");
    assert_string_not_equal(root.trace_id, TRACE_A);
    assert_string_equal(root.parent_span_id, "");

    /* the log context of a span */
    mesh_log_ctx_t ctx;
    mesh_span_log_ctx(&llm, &ctx);
    assert_string_equal(ctx.trace_id, TRACE_A);
    assert_string_equal(ctx.span_id, llm.span_id);
}

typedef struct {
    int calls;
    mesh_span_t last;
} sink_t;

static void sink(const mesh_span_t *sp, void *arg)
{
    sink_t *s = arg;
    s->calls++;
    s->last = *sp;
}

static void test_finish_goes_to_sink(void **state)
{
    (void)state;
    sink_t s = {0};
    mesh_trace_set_sink(sink, &s);
    mesh_span_t sp;
    mesh_span_start(&sp, "tool policy.lookup", MESH_SPAN_CLIENT, TP_A);
    mesh_span_attr_str(&sp, "tool", "policy.lookup");
    mesh_span_attr_int(&sp, "attempt", 2);
    mesh_span_finish(&sp, 0);
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.last.status, MESH_SPAN_OK);
    assert_true(s.last.end_unix_nano >= s.last.start_unix_nano);
    assert_int_equal(s.last.n_attrs, 2);

    mesh_span_start(&sp, "llm chat", MESH_SPAN_CLIENT, TP_A);
    sp.end_unix_nano = sp.start_unix_nano + 5000000; /* recorded after the fact: kept */
    mesh_span_finish(&sp, MESH_ETIMEDOUT);
    assert_int_equal(s.calls, 2);
    assert_int_equal(s.last.status, MESH_SPAN_ERROR);
    assert_string_equal(s.last.status_msg, "deadline_exceeded");
    assert_int_equal(s.last.end_unix_nano - s.last.start_unix_nano, 5000000);

    mesh_trace_set_sink(NULL, NULL);
    mesh_span_finish(&sp, 0);
    assert_int_equal(s.calls, 2);
}

static void test_attribute_limits(void **state)
{
    (void)state;
    mesh_span_t sp;
    mesh_span_start(&sp,
                    "a-name-that-is-much-longer-than-sixty-four-bytes-"
                    "0123456789012345678901234567890",
                    MESH_SPAN_INTERNAL, NULL);
    assert_int_equal(strlen(sp.name), MESH_SPAN_NAME_MAX);
    for (int k = 0; k < MESH_SPAN_ATTRS_MAX + 3; k++)
        mesh_span_attr_int(&sp, "k", k);
    assert_int_equal(sp.n_attrs, MESH_SPAN_ATTRS_MAX);
    mesh_span_start(&sp, "x", MESH_SPAN_INTERNAL, NULL);
    char longv[3 * MESH_SPAN_ATTR_VALUE_MAX];
    longv[0] = '\0';
    while (strlen(longv) + 3 < sizeof(longv) - 3)
        strcat(longv, "保");
    mesh_span_attr_str(&sp, "v", longv);
    /* cut to the limit on a UTF-8 boundary */
    size_t n = strlen(sp.attrs[0].s);
    assert_true(n <= MESH_SPAN_ATTR_VALUE_MAX);
    assert_int_equal(n % 3, 0);
}

static void test_otlp_json_shape(void **state)
{
    (void)state;
    mesh_span_t spans[2];
    mesh_span_start(&spans[0], "router turn", MESH_SPAN_SERVER, TP_A);
    mesh_span_attr_str(&spans[0], "agent", "policy_qa");
    mesh_span_attr_int(&spans[0], "steps", -2);
    spans[0].end_unix_nano = spans[0].start_unix_nano + 1234;
    mesh_span_finish(&spans[0], 0);
    mesh_span_start_child(&spans[1], "llm chat", MESH_SPAN_CLIENT, &spans[0]);
    mesh_span_finish(&spans[1], MESH_EUNAVAIL);

    json_t *req = mesh_trace_otlp_request("router", spans, 2);
    assert_non_null(req);
    /* it must survive a strict round trip through text */
    char *txt = json_dumps(req, JSON_COMPACT);
    json_t *back = json_loads(txt, JSON_REJECT_DUPLICATES, NULL);
    assert_non_null(back);
    free(txt);
    json_decref(req);

    json_t *rs = json_array_get(json_object_get(back, "resourceSpans"), 0);
    json_t *attr =
        json_array_get(json_object_get(json_object_get(rs, "resource"), "attributes"), 0);
    assert_string_equal(json_string_value(json_object_get(attr, "key")), "service.name");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(attr, "value"), "stringValue")),
        "mesh-router");
    json_t *ss = json_array_get(json_object_get(rs, "scopeSpans"), 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(ss, "scope"), "name")),
                        "mesh");
    json_t *list = json_object_get(ss, "spans");
    assert_int_equal(json_array_size(list), 2);

    json_t *s0 = json_array_get(list, 0);
    assert_string_equal(json_string_value(json_object_get(s0, "traceId")), TRACE_A);
    assert_string_equal(json_string_value(json_object_get(s0, "spanId")), spans[0].span_id);
    assert_string_equal(json_string_value(json_object_get(s0, "parentSpanId")), PARENT_A);
    assert_string_equal(json_string_value(json_object_get(s0, "name")), "router turn");
    assert_int_equal(json_integer_value(json_object_get(s0, "kind")), 2);
    /* 64-bit integers are decimal strings in OTLP/JSON */
    const char *st = json_string_value(json_object_get(s0, "startTimeUnixNano"));
    const char *en = json_string_value(json_object_get(s0, "endTimeUnixNano"));
    assert_non_null(st);
    assert_non_null(en);
    assert_int_equal(strspn(st, "0123456789"), strlen(st));
    assert_int_equal(strtoull(en, NULL, 10) - strtoull(st, NULL, 10), 1234);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(s0, "status"), "code")), 1);
    json_t *a0 = json_array_get(json_object_get(s0, "attributes"), 0);
    json_t *a1 = json_array_get(json_object_get(s0, "attributes"), 1);
    assert_string_equal(json_string_value(json_object_get(a0, "key")), "agent");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(a0, "value"), "stringValue")),
        "policy_qa");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(a1, "value"), "intValue")), "-2");

    json_t *s1 = json_array_get(list, 1);
    assert_string_equal(json_string_value(json_object_get(s1, "parentSpanId")), spans[0].span_id);
    json_t *status = json_object_get(s1, "status");
    assert_int_equal(json_integer_value(json_object_get(status, "code")), 2);
    assert_string_equal(json_string_value(json_object_get(status, "message")), "unavailable");

    /* a root span has no parentSpanId at all */
    mesh_span_t root;
    mesh_span_start(&root, "gateway", MESH_SPAN_SERVER, NULL);
    mesh_span_finish(&root, 0);
    json_t *r = mesh_span_otlp_json(&root);
    assert_null(json_object_get(r, "parentSpanId"));
    json_decref(r);
    json_decref(back);
}

static void test_record_json(void **state)
{
    (void)state;
    mesh_span_t sp;
    mesh_span_start(&sp, "memory turn.end", MESH_SPAN_CLIENT, TP_A);
    mesh_span_attr_str(&sp, "op", "turn.end");
    sp.end_unix_nano = sp.start_unix_nano + 2500000;
    mesh_span_finish(&sp, MESH_EUNAVAIL);
    json_t *r = mesh_span_record_json(&sp);
    assert_non_null(r);
    assert_string_equal(json_string_value(json_object_get(r, "name")), "memory turn.end");
    assert_string_equal(json_string_value(json_object_get(r, "trace_id")), TRACE_A);
    assert_string_equal(json_string_value(json_object_get(r, "parent_span_id")), PARENT_A);
    assert_string_equal(json_string_value(json_object_get(r, "status")), "error");
    assert_string_equal(json_string_value(json_object_get(r, "error")), "unavailable");
    assert_true(json_real_value(json_object_get(r, "duration_ms")) == 2.5);
    assert_int_equal(json_integer_value(json_object_get(r, "end_unix_nano")) -
                         json_integer_value(json_object_get(r, "start_unix_nano")),
                     2500000);
    assert_string_equal(json_string_value(json_object_get(json_object_get(r, "attributes"), "op")),
                        "turn.end");
    json_decref(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_traceparent_parse), cmocka_unit_test(test_format_round_trip_and_ids),
        cmocka_unit_test(test_span_propagation),  cmocka_unit_test(test_finish_goes_to_sink),
        cmocka_unit_test(test_attribute_limits),  cmocka_unit_test(test_otlp_json_shape),
        cmocka_unit_test(test_record_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
