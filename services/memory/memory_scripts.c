/*
 * memory_scripts.c - Lua sources of the memory service's atomic operations.
 *
 * Conventions shared by the scripts:
 *   - every script replies with an array whose first element is a status
 *     word ("ok", "busy", "dup", "lost", "none"); the C side checks the shape of
 *     every reply before using it (memory_reply.c) and never trusts it;
 *   - numbers arrive as ARGV text and are converted with tonumber();
 *   - the caller has validated every argument; the scripts only enforce the
 *     invariants that need atomicity (lease, idempotency, append-once).
 *   - the wall-clock time comes from the caller (ARGV), not from Redis TIME,
 *     so a script is a pure function of its inputs (replicas and AOF replay
 *     compute the same result).
 */
#include "memory_scripts.h"

#include <stddef.h>

/*
 * Idempotency markers. The idem key of a message holds "pending:<seq>" while
 * the message is recorded but not answered (<seq> is the conversation's
 * message sequence number of the user message, state field "seq"), or the
 * JSON of the turn's FINAL data once answered (always a JSON object, so it
 * never starts with "pending"). A bare "pending" (written before sequence
 * numbers existed) is still understood: its position is unknown.
 *
 * Sequence numbers: state field "seq" counts every message ever appended to
 * the log (turn.begin +1, turn.end +n). The log is append-only and trimmed
 * only at its head, so the message with sequence s sits at list index
 * LLEN - 1 - (seq - s) for as long as it has not been trimmed away.
 *
 * Two lists per conversation:
 *   log  every message (user, assistant with tool_calls, tool results, final
 *        answers): the audit record, read by conv.get;
 *   ctx  what the model needs from past turns: the user messages and the
 *        final assistant answers (assistant messages without tool_calls),
 *        the very same JSON strings as in the log. turn.begin's history is
 *        read from ctx, so old tool results (kilobytes each) are never sent
 *        to the router and the model again.
 * Both are appended by the same scripts, trimmed to history_max and expire
 * together. Every message appended to ctx was appended to the log by the
 * same script, so at most (seq - s) ctx entries follow the user message
 * numbered s: a retried begin finds it among the last (seq - s + 1) entries.
 */

/*
 * Shared prelude. append() is RPUSH plus, only when the list grew past
 * history_max, LTRIM to it. ensure_ctx() builds the ctx list of a
 * conversation recorded before ctx existed (log present, ctx absent) from the
 * last `rebuild_max` log entries, once; for any other conversation it costs
 * one EXISTS. in_ctx() is the rule for what ctx holds, the same as the C
 * side's memory_message_in_ctx().
 */
#define SCRIPT_PRELUDE                                                                             \
    "local function pending(v) return v == 'pending' or string.sub(v, 1, 8) == 'pending:' end\n"   \
    "local function in_ctx(m)\n"                                                                   \
    "  if type(m) ~= 'table' then return false end\n"                                              \
    "  if m['role'] == 'user' then return true end\n"                                              \
    "  return m['role'] == 'assistant' and\n"                                                      \
    "         (type(m['tool_calls']) ~= 'table' or next(m['tool_calls']) == nil)\n"                \
    "end\n"                                                                                        \
    "local function append(key, hmax, ...)\n"                                                      \
    "  if redis.call('RPUSH', key, ...) > hmax then redis.call('LTRIM', key, -hmax, -1) end\n"     \
    "end\n"                                                                                        \
    "local function ensure_ctx(log, ctx, rebuild_max, hmax)\n"                                     \
    "  if redis.call('EXISTS', ctx) == 1 then return end\n"                                        \
    "  local keep = {}\n"                                                                          \
    "  for _, e in ipairs(redis.call('LRANGE', log, -rebuild_max, -1)) do\n"                       \
    "    local ok, m = pcall(cjson.decode, e)\n"                                                   \
    "    if ok and in_ctx(m) then keep[#keep + 1] = e end\n"                                       \
    "  end\n"                                                                                      \
    "  if #keep > 0 then append(ctx, hmax, unpack(keep)) end\n"                                    \
    "end\n"

/*
 * turn.begin
 *   KEYS[1] log   KEYS[2] state   KEYS[3] idem   KEYS[4] lease   KEYS[5] ctx
 *   ARGV[1] owner         ARGV[2] lease_ms     ARGV[3] user message (JSON)
 *   ARGV[4] window        ARGV[5] ttl_s        ARGV[6] history_max
 *   ARGV[7] now (unix ms) ARGV[8] message_id   ARGV[9] rebuild_max
 * Replies:
 *   {"busy", holder}                 another owner holds the lease
 *   {"dup", stored_reply_json}       the message was answered already (no
 *                                    lease is taken: nothing will run)
 *   {"ok", {history...}, {state field, value, ...}}
 * The user message is appended (to log and ctx) only when the idem key is
 * absent, so a retried begin (idem "pending:<seq>") never appends it twice.
 * The history is read from ctx: for a first begin the last `window` entries;
 * for a retried begin the `window` entries ENDING AT the recorded user
 * message, so a retry after later messages were appended still answers its
 * own question. When that message cannot be found any more (trimmed, or ctx
 * does not hold it), the history is the user message alone.
 */
static const char s_begin[] =
    SCRIPT_PRELUDE "local holder = redis.call('GET', KEYS[4])\n"
                   "if holder and holder ~= ARGV[1] then\n"
                   "  return {'busy', holder}\n"
                   "end\n"
                   "local idem = redis.call('GET', KEYS[3])\n"
                   "if idem and not pending(idem) then\n"
                   "  return {'dup', idem}\n"
                   "end\n"
                   "local ttl = tonumber(ARGV[5])\n"
                   "local window = tonumber(ARGV[4])\n"
                   "local hmax = tonumber(ARGV[6])\n"
                   "redis.call('SET', KEYS[4], ARGV[1], 'PX', ARGV[2])\n"
                   "ensure_ctx(KEYS[1], KEYS[5], tonumber(ARGV[9]), hmax)\n"
                   "local history = {}\n"
                   "if not idem then\n"
                   "  append(KEYS[1], hmax, ARGV[3])\n"
                   "  append(KEYS[5], hmax, ARGV[3])\n"
                   "  local seq = redis.call('HINCRBY', KEYS[2], 'seq', 1)\n"
                   "  redis.call('SET', KEYS[3], 'pending:' .. seq, 'EX', ttl)\n"
                   "  if window > 0 then\n"
                   "    history = redis.call('LRANGE', KEYS[5], -window, -1)\n"
                   "  end\n"
                   "else\n"
                   "  redis.call('EXPIRE', KEYS[3], ttl)\n"
                   "  local at = tonumber(string.sub(idem, 9))\n"
                   "  if window > 0 and not at then\n"
                   "    history = redis.call('LRANGE', KEYS[5], -window, -1)\n"
                   "  elseif window > 0 then\n"
                   "    local cur = tonumber(redis.call('HGET', KEYS[2], 'seq')) or 0\n"
                   "    local pos = nil\n"
                   "    if at <= cur then\n"
                   "      local len = redis.call('LLEN', KEYS[5])\n"
                   "      local tail = redis.call('LRANGE', KEYS[5], -(cur - at + 1), -1)\n"
                   "      local plain = string.find(ARGV[8], '[\"\\\\]') == nil\n"
                   "      for i = #tail, 1, -1 do\n"
                   "        if not plain or string.find(tail[i], ARGV[8], 1, true) then\n"
                   "          local ok, m = pcall(cjson.decode, tail[i])\n"
                   "          if ok and type(m) == 'table' and m['role'] == 'user' and\n"
                   "             m['message_id'] == ARGV[8] then\n"
                   "            pos = len - #tail + i - 1\n"
                   "            break\n"
                   "          end\n"
                   "        end\n"
                   "      end\n"
                   "    end\n"
                   "    if pos then\n"
                   "      local first = pos - window + 1\n"
                   "      if first < 0 then first = 0 end\n"
                   "      history = redis.call('LRANGE', KEYS[5], first, pos)\n"
                   "    else\n"
                   "      history = {ARGV[3]}\n"
                   "    end\n"
                   "  end\n"
                   "end\n"
                   "redis.call('HSETNX', KEYS[2], 'created', ARGV[7])\n"
                   "redis.call('EXPIRE', KEYS[1], ttl)\n"
                   "redis.call('EXPIRE', KEYS[2], ttl)\n"
                   "redis.call('EXPIRE', KEYS[5], ttl)\n"
                   "return {'ok', history, redis.call('HGETALL', KEYS[2])}\n";

/*
 * turn.end
 *   KEYS[1] log   KEYS[2] state   KEYS[3] idem   KEYS[4] lease   KEYS[5] ctx
 *   ARGV[1] owner     ARGV[2] ttl_s     ARGV[3] history_max   ARGV[4] now
 *   ARGV[5] reply (JSON)   ARGV[6] n messages   ARGV[7] n state fields
 *   ARGV[8] ctx mask: one byte per message, '1' = also append it to ctx
 *   ARGV[9] rebuild_max
 *   ARGV[10 .. 9+n]                messages (JSON), in order
 *   ARGV[10+n .. 9+n+2*fields]     field, value pairs
 *   KEYS[6] traces (hash: turn number -> span timeline JSON)
 *   ARGV[10+n+2*fields]            the turn's span timeline (JSON array), or ""
 *   ARGV[11+n+2*fields]            traces kept per conversation (newest turns)
 * The timeline is stored in the traces hash under field <turns after the
 * increment>, and the field of turn <turns - keep> is deleted in the same
 * step, so the hash holds at most `keep` timelines. The hash is a declared
 * key (an earlier version SET a per-turn string key whose name was built in
 * the script: not declared in KEYS, which Redis Cluster does not allow).
 * Replies: {"dup"} (already answered: nothing changes), {"lost", holder}
 * (another owner holds the lease: this turn's lease expired and another
 * turn took the conversation over; nothing changes) or
 * {"ok", handoff, handoff_at}: the state's handoff fields after the write
 * ("" when absent), so the caller can put a pending conversation on the
 * handoff queue (another slot: a second command, memory_ops.c).
 * An absent lease (expired, nobody took it) does not stop the write: no
 * other turn ran on the conversation in between.
 */
static const char s_end[] =
    SCRIPT_PRELUDE "local idem = redis.call('GET', KEYS[3])\n"
                   "if idem and not pending(idem) then\n"
                   "  return {'dup'}\n"
                   "end\n"
                   "local holder = redis.call('GET', KEYS[4])\n"
                   "if holder and holder ~= ARGV[1] then\n"
                   "  return {'lost', holder}\n"
                   "end\n"
                   "local ttl = tonumber(ARGV[2])\n"
                   "local hmax = tonumber(ARGV[3])\n"
                   "local nmsg = tonumber(ARGV[6])\n"
                   "local nfield = tonumber(ARGV[7])\n"
                   "local mask = ARGV[8]\n"
                   "local base = 9\n"
                   "ensure_ctx(KEYS[1], KEYS[5], tonumber(ARGV[9]), hmax)\n"
                   "if nmsg > 0 then\n"
                   "  append(KEYS[1], hmax, unpack(ARGV, base + 1, base + nmsg))\n"
                   "  redis.call('HINCRBY', KEYS[2], 'seq', nmsg)\n"
                   "  local keep = {}\n"
                   "  for i = 1, nmsg do\n"
                   "    if string.byte(mask, i) == 49 then keep[#keep + 1] = ARGV[base + i] end\n"
                   "  end\n"
                   "  if #keep > 0 then\n"
                   "    append(KEYS[5], hmax, unpack(keep))\n"
                   "  end\n"
                   "end\n"
                   "base = base + nmsg\n"
                   "if nfield > 0 then\n"
                   "  redis.call('HSET', KEYS[2], unpack(ARGV, base + 1, base + 2 * nfield))\n"
                   "end\n"
                   "local turns = redis.call('HINCRBY', KEYS[2], 'turns', 1)\n"
                   "local tb = base + 2 * nfield\n"
                   "if ARGV[tb + 1] and ARGV[tb + 1] ~= '' then\n"
                   "  redis.call('HSET', KEYS[6], turns, ARGV[tb + 1])\n"
                   "end\n"
                   "local keep = tonumber(ARGV[tb + 2]) or 0\n"
                   "if keep > 0 and turns > keep then\n"
                   "  redis.call('HDEL', KEYS[6], tostring(turns - keep))\n"
                   "end\n"
                   "redis.call('HSETNX', KEYS[2], 'created', ARGV[4])\n"
                   "redis.call('HSET', KEYS[2], 'updated', ARGV[4])\n"
                   "redis.call('SET', KEYS[3], ARGV[5], 'EX', ttl)\n"
                   "if holder then\n"
                   "  redis.call('DEL', KEYS[4])\n"
                   "end\n"
                   "redis.call('EXPIRE', KEYS[1], ttl)\n"
                   "redis.call('EXPIRE', KEYS[2], ttl)\n"
                   "redis.call('EXPIRE', KEYS[5], ttl)\n"
                   "redis.call('EXPIRE', KEYS[6], ttl)\n"
                   "local hs = redis.call('HMGET', KEYS[2], 'handoff', 'handoff_at')\n"
                   "return {'ok', hs[1] or '', hs[2] or ''}\n";

/*
 * turn.abort
 *   KEYS[1] lease
 *   ARGV[1] owner
 * Releases the lease when owner holds it. The idem key is left as it is: a
 * "pending:<seq>" marker stays, so a retry of the message does not append
 * the user message a second time and answers the question it asked.
 * Reply: {"ok", released (0|1)}.
 */
static const char s_abort[] = "local released = 0\n"
                              "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
                              "  redis.call('DEL', KEYS[1])\n"
                              "  released = 1\n"
                              "end\n"
                              "return {'ok', released}\n";

/*
 * conv.get (one script so messages, total and state are one snapshot)
 *   KEYS[1] log   KEYS[2] state
 *   ARGV[1] limit
 * Replies: {"none"} when neither key exists, else
 *          {"ok", total, {messages...}, {state field, value, ...}}.
 */
static const char s_get[] = "local total = redis.call('LLEN', KEYS[1])\n"
                            "local state = redis.call('HGETALL', KEYS[2])\n"
                            "if total == 0 and #state == 0 then\n"
                            "  return {'none'}\n"
                            "end\n"
                            "local limit = tonumber(ARGV[1])\n"
                            "local messages = {}\n"
                            "if limit > 0 and total > 0 then\n"
                            "  messages = redis.call('LRANGE', KEYS[1], -limit, -1)\n"
                            "end\n"
                            "return {'ok', total, messages, state}\n";

/*
 * lease.renew
 *   KEYS[1] lease
 *   ARGV[1] owner   ARGV[2] lease_ms
 * Extends the lease (PEXPIRE) only while owner still holds it; never takes
 * a lease that expired (a turn that lost it must not run on).
 * Replies: {"ok", 1} held and extended; {"ok", 0} not held, nobody holds it;
 *          {"ok", 0, holder} not held, another owner holds it.
 */
static const char s_renew[] = "local holder = redis.call('GET', KEYS[1])\n"
                              "if holder == ARGV[1] then\n"
                              "  redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
                              "  return {'ok', 1}\n"
                              "end\n"
                              "if holder then\n"
                              "  return {'ok', 0, holder}\n"
                              "end\n"
                              "return {'ok', 0}\n";

/*
 * trace.get
 *   KEYS[1] traces (hash)   KEYS[2] trace:<turn> (string, older versions)
 *   ARGV[1] turn
 * The hash field first; the per-turn string key that memory versions
 * before the traces hash wrote is read as a fallback, so timelines recorded
 * before a rolling upgrade stay readable until they expire.
 * Replies: {"none"} when no timeline is stored, else {"ok", timeline JSON, turn}.
 */
static const char s_trace[] = "local v = redis.call('HGET', KEYS[1], ARGV[1])\n"
                              "if not v then\n"
                              "  v = redis.call('GET', KEYS[2])\n"
                              "end\n"
                              "if not v then\n"
                              "  return {'none'}\n"
                              "end\n"
                              "return {'ok', v, ARGV[1]}\n";

/*
 * tool.call claim.register (keys tagged {claims}: one slot for all claims)
 *   KEYS[1] mesh:{claims}:seq   KEYS[2] mesh:{claims}:idem   KEYS[3] mesh:{claims}:records
 *   ARGV[1] idempotency field "<conv>|<policy_no>"
 *   ARGV[2] registration date yyyymmdd (UTC)
 *   ARGV[3] the record without claim_no: a JSON object, compact, non-empty
 *   ARGV[4] tries (MEMORY_CLAIM_SEQ_TRIES)
 * The claim number is "CLM" .. date .. the sequence (INCR) as at least six
 * digits; a number already taken (the seq key was reset) is skipped, at most
 * `tries` times. The record is stored as '{"claim_no":"<no>",' followed by
 * ARGV[3] without its opening brace.
 * Replies: {"ok", created (0|1), record JSON}; {"full"} when no free number
 * was found. A pair registered before whose record is gone (deleted by
 * hand) is registered again.
 */
static const char s_claim_reg[] =
    "local no = redis.call('HGET', KEYS[2], ARGV[1])\n"
    "if no then\n"
    "  local rec = redis.call('HGET', KEYS[3], no)\n"
    "  if rec then return {'ok', 0, rec} end\n"
    "end\n"
    "local tries = tonumber(ARGV[4])\n"
    "no = nil\n"
    "for i = 1, tries do\n"
    "  local seq = redis.call('INCR', KEYS[1])\n"
    "  local cand = string.format('CLM%s%06d', ARGV[2], seq)\n"
    "  if redis.call('HEXISTS', KEYS[3], cand) == 0 then no = cand break end\n"
    "end\n"
    "if not no then return {'full'} end\n"
    "local rec = '{\"claim_no\":\"' .. no .. '\",' .. string.sub(ARGV[3], 2)\n"
    "redis.call('HSET', KEYS[3], no, rec)\n"
    "redis.call('HSET', KEYS[2], ARGV[1], no)\n"
    "return {'ok', 1, rec}\n";

/*
 * tool.call claim.get
 *   KEYS[1] mesh:{claims}:records   ARGV[1] claim number
 * Replies: {"ok", record JSON} or {"none"}.
 */
static const char s_claim_get[] = "local rec = redis.call('HGET', KEYS[1], ARGV[1])\n"
                                  "if not rec then return {'none'} end\n"
                                  "return {'ok', rec}\n";

/*
 * handoff.claim (pending -> human)
 *   KEYS[1] state   ARGV[1] person   ARGV[2] now
 * Replies: {"ok", handoff_at} (the wait started then; "" when unknown) or
 * {"state", handoff, holder} when the conversation is not pending (nothing
 * changes).
 */
static const char s_ho_claim[] =
    "local st = redis.call('HMGET', KEYS[1], 'handoff', 'handoff_at', 'handoff_person')\n"
    "if st[1] ~= 'pending' then\n"
    "  return {'state', st[1] or '', st[3] or ''}\n"
    "end\n"
    "redis.call('HSET', KEYS[1], 'handoff', 'human', 'handoff_person', ARGV[1],\n"
    "           'updated', ARGV[2])\n"
    "return {'ok', st[2] or ''}\n";

/*
 * handoff.reply (a person's answer: to the log and to ctx)
 *   KEYS[1] log   KEYS[2] state   KEYS[3] ctx   KEYS[4] hidem:<message_id>
 *   ARGV[1] person   ARGV[2] message JSON   ARGV[3] ttl_s   ARGV[4] history_max
 *   ARGV[5] now      ARGV[6] rebuild_max
 * The hidem key makes the reply idempotent on message_id (checked first,
 * so a retry after a release is still a duplicate, not an error).
 * Replies: {"dup"}, {"state", handoff, holder} (not held by person: nothing
 * changes) or {"ok"}.
 */
static const char s_ho_reply[] =
    SCRIPT_PRELUDE "if redis.call('EXISTS', KEYS[4]) == 1 then return {'dup'} end\n"
                   "local st = redis.call('HMGET', KEYS[2], 'handoff', 'handoff_person')\n"
                   "if st[1] ~= 'human' or st[2] ~= ARGV[1] then\n"
                   "  return {'state', st[1] or '', st[2] or ''}\n"
                   "end\n"
                   "local ttl = tonumber(ARGV[3])\n"
                   "local hmax = tonumber(ARGV[4])\n"
                   "ensure_ctx(KEYS[1], KEYS[3], tonumber(ARGV[6]), hmax)\n"
                   "append(KEYS[1], hmax, ARGV[2])\n"
                   "append(KEYS[3], hmax, ARGV[2])\n"
                   "local seq = redis.call('HINCRBY', KEYS[2], 'seq', 1)\n"
                   "redis.call('HSET', KEYS[2], 'updated', ARGV[5])\n"
                   "redis.call('SET', KEYS[4], seq, 'EX', ttl)\n"
                   "redis.call('EXPIRE', KEYS[1], ttl)\n"
                   "redis.call('EXPIRE', KEYS[2], ttl)\n"
                   "redis.call('EXPIRE', KEYS[3], ttl)\n"
                   "return {'ok'}\n";

/*
 * handoff.note (an internal note: to the log only, never to the model)
 *   KEYS[1] log   KEYS[2] state
 *   ARGV[1] note JSON   ARGV[2] ttl_s   ARGV[3] history_max   ARGV[4] now
 * Replies: {"none"} (no such conversation) or {"ok"}.
 */
static const char s_ho_note[] =
    SCRIPT_PRELUDE "if redis.call('EXISTS', KEYS[2]) == 0 then return {'none'} end\n"
                   "local ttl = tonumber(ARGV[2])\n"
                   "append(KEYS[1], tonumber(ARGV[3]), ARGV[1])\n"
                   "redis.call('HINCRBY', KEYS[2], 'seq', 1)\n"
                   "redis.call('HSET', KEYS[2], 'updated', ARGV[4])\n"
                   "redis.call('EXPIRE', KEYS[1], ttl)\n"
                   "redis.call('EXPIRE', KEYS[2], ttl)\n"
                   "return {'ok'}\n";

/*
 * handoff.release (human -> bot)
 *   KEYS[1] log   KEYS[2] state
 *   ARGV[1] person   ARGV[2] note JSON (the summary)   ARGV[3] ttl_s
 *   ARGV[4] history_max   ARGV[5] now
 * Clears handoff, handoff_reason, handoff_at and handoff_person and appends
 * the note, only when person holds the conversation.
 * Replies: {"state", handoff, holder} (nothing changes) or {"ok"}.
 */
static const char s_ho_release[] =
    SCRIPT_PRELUDE "local st = redis.call('HMGET', KEYS[2], 'handoff', 'handoff_person')\n"
                   "if st[1] ~= 'human' or st[2] ~= ARGV[1] then\n"
                   "  return {'state', st[1] or '', st[2] or ''}\n"
                   "end\n"
                   "local ttl = tonumber(ARGV[3])\n"
                   "redis.call('HDEL', KEYS[2], 'handoff', 'handoff_reason', 'handoff_at',\n"
                   "           'handoff_person')\n"
                   "append(KEYS[1], tonumber(ARGV[4]), ARGV[2])\n"
                   "redis.call('HINCRBY', KEYS[2], 'seq', 1)\n"
                   "redis.call('HSET', KEYS[2], 'updated', ARGV[5])\n"
                   "redis.call('EXPIRE', KEYS[1], ttl)\n"
                   "redis.call('EXPIRE', KEYS[2], ttl)\n"
                   "return {'ok'}\n";

static const char *const s_sources[MEMORY_SCRIPT_COUNT] = {
    [MEMORY_SCRIPT_BEGIN] = s_begin,         [MEMORY_SCRIPT_END] = s_end,
    [MEMORY_SCRIPT_ABORT] = s_abort,         [MEMORY_SCRIPT_GET] = s_get,
    [MEMORY_SCRIPT_RENEW] = s_renew,         [MEMORY_SCRIPT_TRACE] = s_trace,
    [MEMORY_SCRIPT_CLAIM_REG] = s_claim_reg, [MEMORY_SCRIPT_CLAIM_GET] = s_claim_get,
    [MEMORY_SCRIPT_HO_CLAIM] = s_ho_claim,   [MEMORY_SCRIPT_HO_REPLY] = s_ho_reply,
    [MEMORY_SCRIPT_HO_NOTE] = s_ho_note,     [MEMORY_SCRIPT_HO_RELEASE] = s_ho_release,
};

static const char *const s_names[MEMORY_SCRIPT_COUNT] = {
    [MEMORY_SCRIPT_BEGIN] = "turn.begin",         [MEMORY_SCRIPT_END] = "turn.end",
    [MEMORY_SCRIPT_ABORT] = "turn.abort",         [MEMORY_SCRIPT_GET] = "conv.get",
    [MEMORY_SCRIPT_RENEW] = "lease.renew",        [MEMORY_SCRIPT_TRACE] = "trace.get",
    [MEMORY_SCRIPT_CLAIM_REG] = "claim.register", [MEMORY_SCRIPT_CLAIM_GET] = "claim.get",
    [MEMORY_SCRIPT_HO_CLAIM] = "handoff.claim",   [MEMORY_SCRIPT_HO_REPLY] = "handoff.reply",
    [MEMORY_SCRIPT_HO_NOTE] = "handoff.note",     [MEMORY_SCRIPT_HO_RELEASE] = "handoff.release",
};

const char *memory_script_source(memory_script_id_t id)
{
    if ((int)id < 0 || id >= MEMORY_SCRIPT_COUNT)
        return NULL;
    return s_sources[id];
}

const char *memory_script_name(memory_script_id_t id)
{
    if ((int)id < 0 || id >= MEMORY_SCRIPT_COUNT)
        return "unknown";
    return s_names[id];
}
