/*
 * tools_motor.h - motor (车险) payout estimate for one accident with one
 * other party, pure and in integer fen (fee.calc with mode "motor";
 * docs/tools.md, reference A1.2/A1.3, data/products/motor-2024.json).
 *
 * Third-party losses, per head h in {death_disability, medical, property}:
 *   compulsory (own 交强险) pays min(loss_h, limit_h), limit_h the with-liability
 *       sub-limit when the insured has any liability, else the no-liability one;
 *   third_party (commercial 三者险) pays
 *       base = sum_h max(0, loss_h - limit_h) * share,
 *       min(base, third-party limit) * (1 - liability deductible rate).
 * Own vehicle damage D:
 *   other party's 交强险 (when it is insured) pays min(D, its property
 *       sub-limit): with-liability 2,000 unless the insured is fully liable
 *       (the other party then has no liability: 100);
 *   R = D - that;
 *   vehicle_damage (车损险) pays R * share when the other party is insured (it
 *       pays its own share, 1 - share, through its 三者险), R in full when it
 *       is not (the insurer pays and recovers: 代位求偿); capped by the sum
 *       insured, times (1 - liability deductible rate).
 * The liability deductible rates (事故责任免赔率) are those of pre-2020
 * ("legacy") products only; motor-2024 has none.
 */
#ifndef TOOLS_MOTOR_H
#define TOOLS_MOTOR_H

#include <stdbool.h>
#include <stdint.h>

enum { TOOLS_MOTOR_DEATH = 0, TOOLS_MOTOR_MEDICAL, TOOLS_MOTOR_PROPERTY, TOOLS_MOTOR_HEADS };

typedef struct {
    int64_t share_ppm;                         /* insured's liability share 0..TOOLS_PPM */
    bool at_fault;                             /* any liability: with-liability limits */
    bool fully_liable;                         /* the other party has no liability */
    int64_t with_limits[TOOLS_MOTOR_HEADS];    /* 交强险 sub-limits, fen */
    int64_t without_limits[TOOLS_MOTOR_HEADS]; /* no-liability sub-limits, fen */
    int64_t third_party_limit;                 /* 三者险 per accident, fen */
    int64_t vehicle_damage_limit;              /* 车损险 sum insured, fen */
    int64_t deductible_ppm;                    /* 事故责任免赔率 (legacy), 0 otherwise */
    bool other_party_insured;
    int64_t loss[TOOLS_MOTOR_HEADS]; /* third-party losses, fen */
    int64_t own_damage;              /* own vehicle, fen */
} tools_motor_in_t;

typedef struct {
    int64_t limit_used[TOOLS_MOTOR_HEADS]; /* the 交强险 sub-limits applied */
    int64_t compulsory[TOOLS_MOTOR_HEADS]; /* own 交强险 pays per head */
    int64_t excess;                        /* sum of losses above the sub-limits */
    int64_t tp_base;                       /* excess * share */
    int64_t tp_payable;                    /* 三者险 pays */
    bool tp_capped;
    int64_t other_compulsory; /* other party's 交强险 pays on own damage */
    int64_t other_limit;      /* its property sub-limit applied */
    int64_t own_remaining;    /* own damage - other_compulsory */
    int64_t vd_base;          /* before cap and deductible */
    int64_t vd_payable;       /* 车损险 pays */
    bool vd_capped;
    int64_t other_share; /* other party's 三者险 (its share), estimate */
    int64_t total;       /* paid under the insured's policy */
    int64_t total_other; /* paid by the other party's insurer */
} tools_motor_out_t;

/* Compute the estimate. Returns 0, or MESH_EINVAL when an input is out of range. */
int tools_motor_compute(const tools_motor_in_t *in, tools_motor_out_t *out);

#endif
