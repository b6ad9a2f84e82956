/*
 * tools_money.h - CNY amounts as integer fen, ratios as integer parts per
 * million, and their JSON and text renderings.
 *
 * Settlement arithmetic never touches floating point after the inputs are
 * converted: a JSON number is turned into fen once (rounded half-up to the
 * fen), every later step is integer, and results go back to JSON as CNY
 * numbers (integers when whole yuan, else two-decimal reals).
 */
#ifndef TOOLS_MONEY_H
#define TOOLS_MONEY_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define TOOLS_FEN_PER_CNY 100
/* Largest amount accepted anywhere: CNY 10,000,000,000 (1e12 fen). Bounded so
 * that fen * ratio_ppm stays far below INT64_MAX (1e12 * 1e6 = 1e18). */
#define TOOLS_CNY_MAX    10000000000.0
#define TOOLS_FEN_MAX    ((int64_t)1000000000000)
#define TOOLS_PPM        1000000 /* ratio 1.0 */
#define TOOLS_MONEY_TEXT 32      /* buffer for one rendered amount or percentage */

/*
 * Convert a JSON number of CNY into fen, half-up. 0 on success, MESH_EINVAL
 * if v is not a number, negative, or above TOOLS_CNY_MAX.
 */
int tools_money_from_json(const json_t *v, int64_t *fen);

/* Convert a ratio in [0, 1] into parts per million (nearest). 0 or MESH_EINVAL. */
int tools_ratio_from_json(const json_t *v, int64_t *ppm);

/* A new JSON number of CNY for fen: integer for whole yuan, else a real. NULL on ENOMEM. */
json_t *tools_money_to_json(int64_t fen);

/* A new JSON real for ppm (700000 -> 0.7). */
json_t *tools_ratio_to_json(int64_t ppm);

/* fen * ppm / 1e6 rounded half-up (fen >= 0, 0 <= ppm <= TOOLS_PPM). */
int64_t tools_money_apply_ratio(int64_t fen, int64_t ppm);

/* "86000.00" (always two decimals, no grouping) into out[TOOLS_MONEY_TEXT]; returns out. */
char *tools_money_fmt(int64_t fen, char *out);

/* "70%" / "65.5%" into out[TOOLS_MONEY_TEXT]; returns out. */
char *tools_ratio_fmt(int64_t ppm, char *out);

#endif
