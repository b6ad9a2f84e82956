/* tools_money.c - integer fen and ppm arithmetic (tools_money.h). */
#include "tools_money.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "mesh/mesh_err.h"

/*
 * Inputs are decimal numbers written by people or models ("0.285"), stored
 * as binary doubles (0.28499999999999998). Rounding the double directly would
 * round such a value down; printing it with more digits than any CNY amount
 * carries restores the decimal the writer meant, and rounding that string
 * half-up is then exact.
 */
#define DECIMALS_SHOWN 9

int tools_money_from_json(const json_t *v, int64_t *fen)
{
    char text[64];
    if (!json_is_number(v))
        return MESH_EINVAL;
    double cny = json_number_value(v);
    if (!(cny >= 0.0) || cny > TOOLS_CNY_MAX)
        return MESH_EINVAL;
    int n = snprintf(text, sizeof(text), "%.*f", DECIMALS_SHOWN, cny);
    if (n <= 0 || (size_t)n >= sizeof(text))
        return MESH_EINVAL;
    const char *dot = strchr(text, '.');
    if (dot == NULL || strlen(dot + 1) < 3)
        return MESH_EINVAL;
    int64_t yuan = 0;
    for (const char *p = text; p < dot; p++)
        yuan = yuan * 10 + (*p - '0');
    int64_t f = yuan * TOOLS_FEN_PER_CNY + (dot[1] - '0') * 10 + (dot[2] - '0');
    if (dot[3] >= '5')
        f++;
    *fen = f;
    return 0;
}

int tools_ratio_from_json(const json_t *v, int64_t *ppm)
{
    if (!json_is_number(v))
        return MESH_EINVAL;
    double r = json_number_value(v);
    if (!(r >= 0.0) || r > 1.0)
        return MESH_EINVAL;
    *ppm = (int64_t)llround(r * TOOLS_PPM);
    return 0;
}

json_t *tools_money_to_json(int64_t fen)
{
    if (fen % TOOLS_FEN_PER_CNY == 0)
        return json_integer(fen / TOOLS_FEN_PER_CNY);
    return json_real((double)fen / TOOLS_FEN_PER_CNY);
}

json_t *tools_ratio_to_json(int64_t ppm)
{
    return json_real((double)ppm / TOOLS_PPM);
}

int64_t tools_money_apply_ratio(int64_t fen, int64_t ppm)
{
    return (fen * ppm + TOOLS_PPM / 2) / TOOLS_PPM;
}

char *tools_money_fmt(int64_t fen, char *out)
{
    const char *sign = fen < 0 ? "-" : "";
    int64_t a = fen < 0 ? -fen : fen;

    snprintf(out, TOOLS_MONEY_TEXT, "%s%lld.%02lld", sign, (long long)(a / TOOLS_FEN_PER_CNY),
             (long long)(a % TOOLS_FEN_PER_CNY));
    return out;
}

char *tools_ratio_fmt(int64_t ppm, char *out)
{
    /* percent with up to four decimals, trailing zeros dropped */
    long long whole = ppm / 10000, frac = ppm % 10000;

    if (frac == 0) {
        snprintf(out, TOOLS_MONEY_TEXT, "%lld%%", whole);
        return out;
    }
    int digits = 4;
    while (frac % 10 == 0) {
        frac /= 10;
        digits--;
    }
    snprintf(out, TOOLS_MONEY_TEXT, "%lld.%0*lld%%", whole, digits, frac);
    return out;
}
