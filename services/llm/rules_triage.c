/*
 * rules_triage.c - the rules backend's engine for the router's triage call
 * (agent "triage", docs/router.md "Triage").
 *
 * Without a model there is nothing better than the router's own keyword
 * classifier, so the engine always answers {"agent": null}: the router
 * then chooses by keywords (FINAL triage.by "keywords"). A pure function of
 * nothing, like every engine.
 */
#include "rules.h"

int llm_rules_triage(const llm_call_t *call, llm_rules_out_t *out)
{
    (void)call;
    out->type = LLM_RESULT_TEXT;
    llm_buf_puts(&out->text, "{\"agent\":null}");
    return llm_buf_error(&out->text);
}
