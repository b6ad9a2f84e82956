/*
 * rules_agents.c - which engine answers which agent in the rules backend,
 * and the polite answer for agents the rules backend does not implement.
 */
#include <stdio.h>
#include <string.h>

#include "mesh/mesh_err.h"
#include "rules.h"

typedef struct {
    const char *agent;
    int (*fn)(const llm_call_t *call, llm_rules_out_t *out);
} rules_agent_t;

static const rules_agent_t s_agents[] = {
    {"policy_qa", llm_rules_policy_qa},
    {"claims_intake", llm_rules_claims_intake},
    {"health_review", llm_rules_health_review},
    {"life_trainer", llm_rules_life_trainer},
    {"triage", llm_rules_triage}, /* the router's MESH_TRIAGE=llm call */
};

void llm_rules_out_init(llm_rules_out_t *out)
{
    memset(out, 0, sizeof(*out));
    llm_buf_init(&out->text);
}

void llm_rules_out_clear(llm_rules_out_t *out)
{
    llm_buf_free(&out->text);
    for (size_t i = 0; i < out->n_calls; i++)
        json_decref(out->calls[i].arguments);
    memset(out, 0, sizeof(*out));
}

size_t llm_rules_calls_so_far(const llm_call_t *call)
{
    size_t n = 0;
    for (size_t i = 0; i < call->n_messages; i++) {
        if (call->messages[i].tool_calls != NULL)
            n += json_array_size(call->messages[i].tool_calls);
    }
    return n;
}

int llm_rules_add_call(const llm_call_t *call, llm_rules_out_t *out, const char *name,
                       json_t *arguments)
{
    if (arguments == NULL)
        return MESH_ENOMEM;
    if (out->n_calls >= LLM_RULES_CALLS_MAX) {
        json_decref(arguments);
        return MESH_ETOOBIG;
    }
    llm_rules_call_t *c = &out->calls[out->n_calls];
    snprintf(c->id, sizeof(c->id), "call_%zu", llm_rules_calls_so_far(call) + out->n_calls + 1);
    c->name = name;
    c->arguments = arguments;
    out->n_calls++;
    out->type = LLM_RESULT_TOOL_CALLS;
    return 0;
}

int llm_rules_answer(const llm_call_t *call, llm_rules_out_t *out)
{
    for (size_t i = 0; i < sizeof(s_agents) / sizeof(s_agents[0]); i++) {
        if (strcmp(s_agents[i].agent, call->agent) == 0)
            return s_agents[i].fn(call, out);
    }
    return llm_rules_unavailable(call, out);
}

/* 1 if the agent name is safe to quote back ([a-z0-9_.-], as agent files are named). */
static int quotable(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > LLM_AGENT_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

int llm_rules_unavailable(const llm_call_t *call, llm_rules_out_t *out)
{
    bool zh = strcmp(call->lang, "zh") == 0;
    out->type = LLM_RESULT_TEXT;
    if (quotable(call->agent))
        llm_buf_printf(&out->text,
                       zh ? "抱歉，数字员工“%s”在规则引擎（rules 后端）中暂不可用，"
                            "请稍后再试或联系人工客服。"
                          : "Sorry, the digital worker \"%s\" is not available in the rules "
                            "backend. Please try again later or ask for a human agent.",
                       call->agent);
    else
        llm_buf_puts(&out->text, zh ? "抱歉，该数字员工在规则引擎（rules 后端）中暂不可用，"
                                      "请稍后再试或联系人工客服。"
                                    : "Sorry, this digital worker is not available in the rules "
                                      "backend. Please try again later or ask for a human agent.");
    return llm_buf_error(&out->text);
}
