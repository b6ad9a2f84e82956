/*
 * rules_text.c - text helpers of the rules backend: policy-number scanning,
 * keyword matching, money and ratio formatting, delta splitting.
 *
 * Everything here is a hand-written scanner over (pointer, length): no regex
 * is compiled per call and nothing is allocated except through llm_buf.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "mesh/mesh_err.h"
#include "rules.h"

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int is_alnum(unsigned char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

int llm_rules_find_policy_no(const char *s, size_t len, char out[LLM_POLICY_NO_LEN + 1])
{
    int found = 0;
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i + LLM_POLICY_NO_LEN <= len; i++) {
        if (u[i] != 'P' && u[i] != 'p')
            continue;
        if (i > 0 && is_alnum(u[i - 1]))
            continue;
        size_t d = 1;
        while (d < LLM_POLICY_NO_LEN && is_digit(u[i + d]))
            d++;
        if (d < LLM_POLICY_NO_LEN)
            continue;
        if (i + LLM_POLICY_NO_LEN < len && is_digit(u[i + LLM_POLICY_NO_LEN]))
            continue;
        out[0] = 'P';
        memcpy(out + 1, s + i + 1, LLM_POLICY_NO_LEN - 1);
        out[LLM_POLICY_NO_LEN] = '\0';
        found = 1;
        i += LLM_POLICY_NO_LEN - 1;
    }
    return found;
}

static unsigned char fold(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
}

long llm_rules_find(const char *s, size_t len, const char *kw)
{
    size_t kl = strlen(kw);
    if (kl == 0 || kl > len)
        return -1;
    const unsigned char *u = (const unsigned char *)s;
    const unsigned char *k = (const unsigned char *)kw;
    for (size_t i = 0; i + kl <= len; i++) {
        if (fold(u[i]) != k[0])
            continue;
        size_t j = 1;
        while (j < kl && fold(u[i + j]) == k[j])
            j++;
        if (j == kl)
            return (long)i;
    }
    return -1;
}

int llm_rules_has_any(const char *s, size_t len, const char *const *keywords)
{
    for (size_t i = 0; keywords[i] != NULL; i++) {
        if (llm_rules_find(s, len, keywords[i]) >= 0)
            return 1;
    }
    return 0;
}

/* Largest amount we format: beyond this a double no longer holds whole fen. */
#define MONEY_MAX_FEN 900000000000000000LL

/* Append v (>= 0) with thousands separators. */
static int append_grouped(llm_buf_t *b, long long v)
{
    char digits[32];
    int n = snprintf(digits, sizeof(digits), "%lld", v);
    char out[48];
    size_t o = 0;
    for (int i = 0; i < n; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            out[o++] = ',';
        out[o++] = digits[i];
    }
    return llm_buf_append(b, out, o);
}

int llm_rules_money(llm_buf_t *b, double amount, bool zh)
{
    if (!isfinite(amount) || fabs(amount) * 100.0 > (double)MONEY_MAX_FEN)
        return llm_buf_puts(b, zh ? "（金额无效）" : "(invalid amount)");
    long long fen = llround(amount * 100.0);
    if (fen < 0) {
        llm_buf_puts(b, "-");
        fen = -fen;
    }
    long long yuan = fen / 100, cents = fen % 100;
    if (!zh)
        llm_buf_puts(b, "CNY ");
    if (zh && cents == 0 && yuan >= 10000 && yuan % 10000 == 0) {
        llm_buf_printf(b, "%lld万", yuan / 10000);
    } else {
        append_grouped(b, yuan);
        if (cents != 0)
            llm_buf_printf(b, ".%02lld", cents);
    }
    if (zh)
        llm_buf_puts(b, "元");
    return llm_buf_error(b);
}

int llm_rules_percent(llm_buf_t *b, double ratio)
{
    if (!isfinite(ratio) || ratio < 0 || ratio > 1000)
        return llm_buf_puts(b, "?");
    double pct = ratio > 1.0 ? ratio : ratio * 100.0;
    long long tenths = llround(pct * 10.0);
    if (tenths % 10 == 0)
        return llm_buf_printf(b, "%lld%%", tenths / 10);
    return llm_buf_printf(b, "%lld.%lld%%", tenths / 10, tenths % 10);
}

const char *llm_rules_loc(const json_t *v, bool zh, size_t *len)
{
    const json_t *s = NULL;
    if (json_is_string(v)) {
        s = v;
    } else if (json_is_object(v)) {
        s = json_object_get(v, zh ? "zh" : "en");
        if (!json_is_string(s))
            s = json_object_get(v, zh ? "en" : "zh");
    }
    if (!json_is_string(s) || json_string_length(s) == 0)
        return NULL;
    if (len != NULL)
        *len = json_string_length(s);
    return json_string_value(s);
}

/* Bytes of the UTF-8 sequence led by c (1 for a stray byte). */
static size_t seq_len(unsigned char c)
{
    if (c >= 0xF0 && c <= 0xF7)
        return 4;
    if (c >= 0xE0)
        return c <= 0xEF ? 3 : 1;
    if (c >= 0xC0)
        return 2;
    return 1;
}

/* Full-width marks that end a sentence or clause: 。！？；，： */
static const char *const s_cjk_marks[] = {"\xE3\x80\x82", "\xEF\xBC\x81", "\xEF\xBC\x9F",
                                          "\xEF\xBC\x9B", "\xEF\xBC\x8C", "\xEF\xBC\x9A"};

size_t llm_rules_next_delta(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        size_t cl = seq_len(u[i]);
        if (i + cl > len)
            cl = len - i;
        if (i > 0 && i + cl > LLM_DELTA_MAX)
            return i;
        if (cl == 3) {
            for (size_t m = 0; m < sizeof(s_cjk_marks) / sizeof(s_cjk_marks[0]); m++) {
                if (memcmp(s + i, s_cjk_marks[m], 3) == 0)
                    return i + 3;
            }
        } else if (u[i] == '\n') {
            return i + 1;
        } else if ((u[i] == '.' || u[i] == '!' || u[i] == '?' || u[i] == ';' || u[i] == ',' ||
                    u[i] == ':') &&
                   i + 1 < len && u[i + 1] == ' ') {
            return i + 2 <= LLM_DELTA_MAX ? i + 2 : i + 1;
        }
        i += cl;
    }
    return len;
}

/* Phrases of a customer asking for a person (shared by every engine). */
static const char *const s_wants_human[] = {"转人工",
                                            "人工客服",
                                            "人工服务",
                                            "找人工",
                                            "真人",
                                            "人工坐席",
                                            "找个人",
                                            "talk to a human",
                                            "human agent",
                                            "real person",
                                            "speak to a person",
                                            "speak to someone",
                                            "talk to someone",
                                            "a human",
                                            "operator",
                                            NULL};

int llm_rules_wants_human(const char *s, size_t len)
{
    return llm_rules_has_any(s, len, s_wants_human);
}

/* ---- repeated failure to understand ---- */

#define MISSES_KEY        "misunderstood"
#define MISSES_REASON     "not_understood: "
#define MISSES_DETAIL_MAX 400 /* bytes of the detail kept: the reason field allows 500 */

/* The count recorded before this turn: 0 when absent, not a number or out of range. */
static long misses_before(const llm_call_t *call)
{
    const json_t *v = json_object_get(json_object_get(call->state, "records"), MISSES_KEY);
    if (!json_is_number(v))
        return 0;
    double d = json_number_value(v);
    if (!(d >= 1.0) || d >= (double)LLM_RULES_MISSES_MAX)
        return 0; /* at the maximum: a released handoff, the count starts over */
    return (long)d;
}

/* Whether the worker said anything before the customer's last message (asked for something). */
static bool has_spoken(const llm_call_t *call)
{
    size_t u = call->n_messages;
    while (u > 0 && call->messages[u - 1].role != LLM_ROLE_USER)
        u--;
    for (size_t i = u > 0 ? u - 1 : 0; i > 0; i--) {
        const llm_message_t *m = &call->messages[i - 1];
        if (m->role == LLM_ROLE_ASSISTANT && m->text_len > 0)
            return true;
    }
    return false;
}

int llm_rules_misses_note(const llm_call_t *call, bool understood, const char *detail, json_t *args)
{
    long before = misses_before(call);
    long now = understood ? 0 : before + 1;
    if (understood && before == 0)
        return 0;
    if (!understood && !has_spoken(call))
        return 0; /* the opening message (a greeting): the worker has not asked anything yet */
    json_t *records = json_object_get(args, "records");
    if (!json_is_object(records)) {
        records = json_object();
        if (records == NULL || json_object_set_new(args, "records", records) != 0)
            return MESH_ENOMEM;
    }
    if (json_object_set_new(records, MISSES_KEY, json_integer(now)) != 0)
        return MESH_ENOMEM;
    if (now < LLM_RULES_MISSES_MAX)
        return 1;
    bool zh = strcmp(call->lang, "en") != 0;
    if (detail == NULL)
        detail = zh ? "连续 3 条消息未能理解" : "3 messages in a row could not be understood";
    char reason[sizeof(MISSES_REASON) + MISSES_DETAIL_MAX];
    size_t dl = strlen(detail);
    if (dl > MISSES_DETAIL_MAX) /* clip on a code point boundary */
        for (dl = MISSES_DETAIL_MAX; dl > 0 && (detail[dl] & 0xC0) == 0x80; dl--)
            ;
    snprintf(reason, sizeof(reason), "%s%.*s", MISSES_REASON, (int)dl, detail);
    json_t *h = json_pack("{s:s}", "reason", reason);
    if (h == NULL || json_object_set_new(args, "handoff", h) != 0)
        return MESH_ENOMEM;
    return 2;
}
