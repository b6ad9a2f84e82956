/*
 * memory_handoff.h - the handoff queue of the memory service: conversations
 * waiting for a person (state handoff = "pending") or held by one
 * ("human"), and the ops a person's tools use on them (docs/memory.md,
 * "Handoff queue"; the builders are in memory_op_int.h).
 *
 *   handoff.list    {limit}                    the queue, oldest first
 *   handoff.claim   {person}                   pending -> human
 *   handoff.reply   {person, text, message_id} a person's answer (log + ctx)
 *   handoff.note    {person, text}             an internal note (log only)
 *   handoff.release {person, summary}          human -> bot
 */
#ifndef MEMORY_HANDOFF_H
#define MEMORY_HANDOFF_H

#define MEMORY_PERSON_MAX         128 /* handoff person id, bytes */
#define MEMORY_HANDOFF_LIST_DEF   50  /* handoff.list limit default */
#define MEMORY_HANDOFF_LIST_MAX   500 /* handoff.list limit maximum */
#define MEMORY_HANDOFF_REASON_MAX 500 /* handoff_reason bytes shown by handoff.list */

#endif
