/* tools_motor.c - motor payout arithmetic (tools_motor.h). */
#include "tools_motor.h"

#include "mesh/mesh_err.h"
#include "tools_money.h"

static bool amount_ok(int64_t fen)
{
    return fen >= 0 && fen <= TOOLS_FEN_MAX;
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

static bool inputs_ok(const tools_motor_in_t *in)
{
    if (in->share_ppm < 0 || in->share_ppm > TOOLS_PPM || in->deductible_ppm < 0 ||
        in->deductible_ppm > TOOLS_PPM || !amount_ok(in->third_party_limit) ||
        !amount_ok(in->vehicle_damage_limit) || !amount_ok(in->own_damage))
        return false;
    for (int h = 0; h < TOOLS_MOTOR_HEADS; h++) {
        if (!amount_ok(in->loss[h]) || !amount_ok(in->with_limits[h]) ||
            !amount_ok(in->without_limits[h]))
            return false;
    }
    return true;
}

int tools_motor_compute(const tools_motor_in_t *in, tools_motor_out_t *out)
{
    tools_motor_out_t o = {0};
    const int64_t keep = TOOLS_PPM - in->deductible_ppm;

    if (!inputs_ok(in))
        return MESH_EINVAL;
    /* Third party: own 交强险 per head, then 三者险 on the part above each sub-limit. */
    for (int h = 0; h < TOOLS_MOTOR_HEADS; h++) {
        o.limit_used[h] = in->at_fault ? in->with_limits[h] : in->without_limits[h];
        o.compulsory[h] = min64(in->loss[h], o.limit_used[h]);
        o.excess += in->loss[h] - o.compulsory[h];
    }
    o.tp_base = tools_money_apply_ratio(o.excess, in->share_ppm);
    o.tp_payable = o.tp_base;
    if (o.tp_payable > in->third_party_limit) {
        o.tp_payable = in->third_party_limit;
        o.tp_capped = true;
    }
    o.tp_payable = tools_money_apply_ratio(o.tp_payable, keep);

    /* Own vehicle: the other party's 交强险 first, then 车损险 for the insured's share. */
    if (in->other_party_insured) {
        o.other_limit = in->fully_liable ? in->without_limits[TOOLS_MOTOR_PROPERTY]
                                         : in->with_limits[TOOLS_MOTOR_PROPERTY];
        o.other_compulsory = min64(in->own_damage, o.other_limit);
    }
    o.own_remaining = in->own_damage - o.other_compulsory;
    if (in->other_party_insured) {
        o.vd_base = tools_money_apply_ratio(o.own_remaining, in->share_ppm);
        o.other_share = o.own_remaining - o.vd_base;
    } else {
        o.vd_base = o.own_remaining;
    }
    o.vd_payable = o.vd_base;
    if (o.vd_payable > in->vehicle_damage_limit) {
        o.vd_payable = in->vehicle_damage_limit;
        o.vd_capped = true;
    }
    o.vd_payable = tools_money_apply_ratio(o.vd_payable, keep);

    for (int h = 0; h < TOOLS_MOTOR_HEADS; h++)
        o.total += o.compulsory[h];
    o.total += o.tp_payable + o.vd_payable;
    o.total_other = o.other_compulsory + o.other_share;
    *out = o;
    return 0;
}
