#!/usr/bin/env python3
"""Generate data/policies.json: fictional sample policies for the tools worker.

Deterministic: the same --seed gives byte-identical output (Python's
random.Random with a fixed seed, no clock, no environment). Standard library only.

    python3 scripts/gen_policies.py                 # writes data/policies.json (seed 2024)
    python3 scripts/gen_policies.py --seed 7 --out /tmp/p.json --count 1000

The generated file is checked in; regenerate it only when the shape changes
and commit the result together with this script. Products come from
data/products/*.json (ids med-million-2024, ci-guard-2024, motor-2024).

Fixed points the tests and the demo rely on (kept whatever the seed; with
the default seed the generator produces exactly these anyway):
  P10023  active med-million-2024 policy, holder has social insurance,
          deductible_used 0, limit_used 0, 2026-03-01 .. 2027-02-28.
  P10003  active motor-2024 policy, plate 川Z·S****, vehicle_damage 450000,
          third_party 1000000.
  P10001  active ci-guard-2024 policy, sum assured 500000.
All holder names and plates are masked ("张*", "沪A·1****"); nothing here is
about a real person.
"""

import argparse
import datetime as dt
import json
import os
import random
import sys

AS_OF = dt.date(2026, 11, 1)  # the date the statuses are true for
FIRST_NO = 10000
DEFAULT_COUNT = 400

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾萧田董潘袁蔡蒋余于杜叶程魏苏吕丁任沈姚卢"
COMPOUND_SURNAMES = ["欧阳", "司马", "诸葛", "上官"]
# (province abbreviation, city letters seen in that province)
PLATE_REGIONS = [
    ("沪", "ABCDEFGHJKLMN"), ("京", "ABCEFGHJKLMNPQ"), ("粤", "ABCDEFGHJKLMNPQRSTUVWXY"),
    ("浙", "ABCDEFGHJKL"), ("苏", "ABCDEFGHJKLMN"), ("川", "ABCDEFHJKLMQRSTUVWXYZ"),
    ("鄂", "ABCDEFGHJKLMNPQRS"), ("鲁", "ABCDEFGHJKLMNPQRSUV"),
]
PLATE_FIRST = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"

MEDICAL = "med-million-2024"
CRITICAL = "ci-guard-2024"
MOTOR = "motor-2024"
MED_DEDUCTIBLE = 10000
MED_LIMIT = 3000000
CI_SUMS = [300000, 500000, 800000, 1000000]
CI_MILD_RATIO = 0.3
CI_YEARS = 20
VEHICLE_VALUES = [80000, 120000, 150000, 180000, 220000, 260000, 320000, 450000]
THIRD_PARTY_LIMITS = [1000000, 1500000, 2000000, 3000000]


def holder(rng):
    if rng.random() < 0.03:
        return rng.choice(COMPOUND_SURNAMES) + "*"
    return rng.choice(SURNAMES) + "*"


def plate(rng):
    prov, cities = rng.choice(PLATE_REGIONS)
    return "%s%s·%s****" % (prov, rng.choice(cities), rng.choice(PLATE_FIRST))


def add_years(d, years):
    try:
        return d.replace(year=d.year + years)
    except ValueError:  # 29 February
        return d.replace(year=d.year + years, day=28)


def term(rng, status, years):
    """Start and end dates consistent with status as of AS_OF."""
    if status == "expired":
        # ended before AS_OF
        end = AS_OF - dt.timedelta(days=rng.randint(1, 700))
        start = add_years(end + dt.timedelta(days=1), -years)
    else:
        # active or lapsed: the term covers AS_OF (lapsed = premium unpaid)
        start = AS_OF - dt.timedelta(days=rng.randint(0, 364 if years == 1 else 3000))
        end = add_years(start, years) - dt.timedelta(days=1)
    return start.isoformat(), end.isoformat()


def money(rng, lo, hi, step=1):
    """A CNY amount in [lo, hi]; about one in four has fen."""
    v = rng.randrange(lo, hi + 1, step)
    if rng.random() < 0.25 and v > 0:
        return round(v - rng.randint(1, 99) / 100.0, 2)
    return v


def medical(rng, status):
    used = rng.random()
    if status == "active" and used < 0.55:
        ded, lim = 0, 0
    elif used < 0.8:
        ded = money(rng, 100, MED_DEDUCTIBLE - 100, 100)
        lim = 0
    else:
        ded = MED_DEDUCTIBLE
        lim = money(rng, 500, 120000, 10)
    return {
        "social_insurance": rng.random() < 0.85,
        "deductible_used": ded,
        "limit_used": lim,
    }


def critical(rng):
    sa = rng.choice(CI_SUMS)
    return {
        "social_insurance": rng.random() < 0.85,
        "sum_assured": sa,
        "cover_limits": {"severe_illness": sa, "mild_illness": int(sa * CI_MILD_RATIO)},
    }


def motor(rng):
    return {
        "social_insurance": rng.random() < 0.85,
        "plate": plate(rng),
        "cover_limits": {
            "vehicle_damage": rng.choice(VEHICLE_VALUES),
            "third_party": rng.choice(THIRD_PARTY_LIMITS),
        },
    }


def one_policy(rng, no):
    r = rng.random()
    product = MEDICAL if r < 0.5 else (CRITICAL if r < 0.75 else MOTOR)
    s = rng.random()
    if product == CRITICAL:  # long-term: rarely expired
        status = "active" if s < 0.85 else "lapsed"
    else:
        status = "active" if s < 0.72 else ("lapsed" if s < 0.82 else "expired")
    years = CI_YEARS if product == CRITICAL else 1
    start, end = term(rng, status, years)
    p = {
        "policy_no": "P%05d" % no,
        "product_id": product,
        "status": status,
        "holder": holder(rng),
        "start_date": start,
        "end_date": end,
    }
    if product == MEDICAL:
        p.update(medical(rng, status))
    elif product == CRITICAL:
        p.update(critical(rng))
    else:
        p.update(motor(rng))
    return p


FIXED = {
    # active med-million policy, social insurance, nothing used yet (health review scenarios)
    "P10023": {
        "product_id": MEDICAL, "status": "active", "holder": "张*",
        "start_date": "2026-03-01", "end_date": "2027-02-28", "social_insurance": True,
        "deductible_used": 0, "limit_used": 0,
    },
    # active motor policy (claims intake scenarios, fee.calc motor estimates)
    "P10003": {
        "product_id": MOTOR, "status": "active", "holder": "韩*",
        "start_date": "2026-02-02", "end_date": "2027-02-01", "social_insurance": False,
        "plate": "川Z·S****",
        "cover_limits": {"vehicle_damage": 450000, "third_party": 1000000},
    },
    # active critical-illness policy (life-agent trainer, policy Q&A)
    "P10001": {
        "product_id": CRITICAL, "status": "active", "holder": "吕*",
        "start_date": "2022-11-12", "end_date": "2042-11-11", "social_insurance": True,
        "sum_assured": 500000,
        "cover_limits": {"severe_illness": 500000, "mild_illness": 150000},
    },
}
# keys a fixed point must not keep from whatever the seed generated there
TYPE_KEYS = ("deductible_used", "limit_used", "sum_assured", "cover_limits", "plate")


def fixed_points(policies):
    """Overwrite the policies that tests and the demo name explicitly (data/README.md,
    "Scenario policies"). With the default seed these are exactly what the generator
    produces anyway, so the output is unchanged; with another seed they are forced."""
    for p in policies:
        want = FIXED.get(p["policy_no"])
        if want is None:
            continue
        for k in TYPE_KEYS:
            if k not in want:
                p.pop(k, None)
        p.update(want)


def generate(seed, count):
    rng = random.Random(seed)
    policies = [one_policy(rng, FIRST_NO + i) for i in range(count)]
    fixed_points(policies)
    return policies


def render(policies, seed):
    # One policy per line: small diffs, fast to load, still readable.
    head = {
        "_sample": True,
        "_note": "Fictional sample policies (masked names, no real persons). Generated by "
                 "scripts/gen_policies.py --seed %d; do not edit by hand." % seed,
        "as_of": AS_OF.isoformat(),
    }
    out = ["{"]
    for k, v in head.items():
        out.append("  %s: %s," % (json.dumps(k), json.dumps(v, ensure_ascii=False)))
    out.append('  "policies": [')
    lines = [
        "    " + json.dumps(p, ensure_ascii=False, separators=(", ", ": ")) for p in policies
    ]
    out.append(",\n".join(lines))
    out.append("  ]")
    out.append("}")
    return "\n".join(out) + "\n"


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--count", type=int, default=DEFAULT_COUNT)
    ap.add_argument("--out", default=os.path.join(here, "..", "data", "policies.json"))
    args = ap.parse_args(argv)
    if not 24 <= args.count <= 90000:
        ap.error("--count must be in 24..90000 (policy numbers P10000..P99999, P10023 included)")
    text = render(generate(args.seed, args.count), args.seed)
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
