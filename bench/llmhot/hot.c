/*
 * hot.c - mesh-llm-hotbench: CPU per call of the openai backend's hot path,
 * in a loop, without the network: decode an llm.chat args object
 * (llm_call_parse), write the Chat Completions body (the json_t builder
 * llm_oai_req_build and the one-pass writer llm_oai_body_write), and one
 * streamed content chunk -> delta -> PARTIAL data (llm_sse_feed +
 * llm_reply_delta).
 *
 * Usage: mesh-llm-hotbench [args.json [iterations]]
 * args.json defaults to bench/llmhot/chat_args.json (a policy_qa turn
 * as the router sends it: the agent's prompt, two tools, one user message).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "llm_call.h"
#include "llm_reply.h"
#include "oai_body.h"
#include "oai_req.h"
#include "sse.h"

#define BENCH_ITERS_DEFAULT 20000
#define BENCH_CHUNK                                                                                \
    "data: {\"id\":\"chatcmpl-ttft\",\"object\":\"chat.completion.chunk\",\"created\":"            \
    "1764374400,\"model\":\"ttft\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tok0 \"},"   \
    "\"finish_reason\":null}]}\n\n"

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void on_delta(const char *text, size_t len, void *arg)
{
    json_t *d = llm_reply_delta(text, len);
    *(size_t *)arg += len;
    json_decref(d);
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "bench/llmhot/chat_args.json";
    long iters = argc > 2 ? strtol(argv[2], NULL, 10) : BENCH_ITERS_DEFAULT;
    json_error_t je;
    json_t *args = json_load_file(path, 0, &je);
    if (args == NULL || iters <= 0) {
        fprintf(stderr, "usage: mesh-llm-hotbench [args.json [iterations]] (%s: %s)\n", path,
                je.text);
        return 2;
    }
    llm_oai_req_opts_t ro = {.model = "ttft", .max_completion_tokens = 1024, .temperature = 0.2};
    llm_oai_body_t *w = llm_oai_body_new();
    llm_parsed_t p;
    char err[256];
    size_t sink = 0;

    /* BENCH_ONLY=write: only the writer loop runs long (for perf record). */
    const char *only = getenv("BENCH_ONLY");
    long wr_iters = only != NULL && strcmp(only, "write") == 0 ? iters * 20 : iters;
    double t0 = now_ns();
    for (long i = 0; i < iters; i++) {
        if (llm_call_parse("bench", args, 0, &p, err, sizeof(err)) != 0) {
            fprintf(stderr, "parse: %s\n", err);
            return 1;
        }
        llm_call_clear(&p);
    }
    double parse = (now_ns() - t0) / (double)iters;

    if (llm_call_parse("bench", args, 0, &p, err, sizeof(err)) != 0)
        return 1;
    t0 = now_ns();
    for (long i = 0; i < iters; i++) {
        char *s = llm_oai_req_build(&p.call, &ro);
        sink += strlen(s);
        free(s);
    }
    double old_build = (now_ns() - t0) / (double)iters;

    const char *body = NULL;
    size_t len = 0;
    t0 = now_ns();
    for (long i = 0; i < wr_iters; i++) {
        if (llm_oai_body_write(w, &p.call, &ro, &body, &len) != 0)
            return 1;
        sink += len;
    }
    double new_build = (now_ns() - t0) / (double)wr_iters;
    char *ref = llm_oai_req_build(&p.call, &ro);
    int same = ref != NULL && strlen(ref) == len && memcmp(ref, body, len) == 0;
    free(ref);

    llm_sse_t *sse = llm_sse_new();
    llm_sse_set_delta_cb(sse, on_delta, &sink);
    long chunks = iters * 10;
    t0 = now_ns();
    for (long i = 0; i < chunks; i++) {
        if (i % 1000 == 0) { /* stay below the body bound */
            llm_sse_destroy(&sse);
            sse = llm_sse_new();
            llm_sse_set_delta_cb(sse, on_delta, &sink);
        }
        llm_sse_feed(sse, BENCH_CHUNK, sizeof(BENCH_CHUNK) - 1);
    }
    double chunk = (now_ns() - t0) / (double)chunks;
    llm_sse_destroy(&sse);

    printf("body %zu bytes, writer output identical to llm_oai_req_build: %s\n", len,
           same ? "yes" : "NO");
    printf("llm_call_parse        %8.0f ns/call\n", parse);
    printf("llm_oai_req_build     %8.0f ns/call (json_t tree + json_dumps)\n", old_build);
    printf("llm_oai_body_write    %8.0f ns/call (one pass, tools cache)\n", new_build);
    printf("sse chunk -> delta    %8.0f ns/chunk\n", chunk);
    llm_call_clear(&p);
    llm_oai_body_destroy(&w);
    json_decref(args);
    return sink == 0 || !same;
}
