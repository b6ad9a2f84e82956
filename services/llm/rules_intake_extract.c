/*
 * rules_intake_extract.c - free-text slot extraction for the claims_intake
 * engine: hand-written scanners over (pointer, length), Chinese and English,
 * many slots from one message ("昨天下午三点在延安路和人追尾了，对方全责，车灯坏了，
 * 没人受伤" fills time, place, description, liability, damage and injuries).
 *
 * Everything is deterministic and allocation-free except the jansson values
 * written into the caller's object.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mesh/mesh_err.h"
#include "rules.h"
#include "rules_intake.h"

static const char *const s_slot_names[INTAKE_SLOT_N] = {
    "accident_time", "place",     "description", "plates",        "injuries",
    "damage",        "police",    "liability",   "damage_amount", "third_party_damage_amount",
    "contact",       "policy_no",
};

const char *intake_slot_name(int slot)
{
    return slot >= 0 && slot < INTAKE_SLOT_N ? s_slot_names[slot] : NULL;
}

int intake_slot_by_name(const char *name)
{
    for (int i = 0; i < INTAKE_SLOT_N; i++) {
        if (strcmp(s_slot_names[i], name) == 0)
            return i;
    }
    return INTAKE_NONE;
}

/* Store a slot value; text that is not valid UTF-8 is not a value (skipped, not an error). */
static int set_str(json_t *found, int slot, const char *v, size_t n)
{
    if (n == 0)
        return 0;
    if (n > INTAKE_VALUE_MAX) {
        n = INTAKE_VALUE_MAX;
        while (n > 0 && ((unsigned char)v[n] & 0xC0) == 0x80)
            n--;
    }
    if (!intake_utf8_ok(v, n))
        return 0;
    json_t *j = json_stringn(v, n);
    if (j == NULL || json_object_set_new(found, s_slot_names[slot], j) != 0)
        return MESH_ENOMEM;
    return 0;
}

static int set_cstr(json_t *found, int slot, const char *v)
{
    return set_str(found, slot, v, strlen(v));
}

static const char *const s_no_injury[] = {"没人受伤",
                                          "无人受伤",
                                          "没有人受伤",
                                          "没有受伤",
                                          "没受伤",
                                          "无人伤",
                                          "没人伤",
                                          "人没事",
                                          "人都没事",
                                          "都没事",
                                          "无伤亡",
                                          "没有伤亡",
                                          "nobody was hurt",
                                          "nobody hurt",
                                          "no one was hurt",
                                          "no one hurt",
                                          "no one was injured",
                                          "nobody was injured",
                                          "no injuries",
                                          "no injury",
                                          "not injured",
                                          "no one injured",
                                          "nobody injured",
                                          "wasn't hurt",
                                          "weren't hurt",
                                          "was not hurt",
                                          "is fine",
                                          "are fine",
                                          "everyone is ok",
                                          "everyone's ok",
                                          NULL};

/* ---- plates: province character + letter + optional "·" + 5..6 alphanumerics ---- */

static const char *const s_provinces[] = {
    "京", "津", "沪", "渝", "冀", "豫", "云", "辽", "黑", "湘", "皖", "鲁", "新", "苏", "浙", "赣",
    "鄂", "桂", "甘", "晋", "蒙", "陕", "吉", "闽", "贵", "粤", "青", "藏", "川", "宁", "琼", NULL};

static char upper(char c)
{
    return (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
}

/* A plate at s+i: writes the normalised plate into out and returns its byte length in s, else 0. */
static size_t plate_at(const char *s, size_t len, size_t i, char out[16])
{
    if (!intake_cp_in(s, len, i, s_provinces))
        return 0;
    size_t j = i + 3;
    if (j >= len || !intake_is_alpha((unsigned char)s[j]))
        return 0;
    char letter = upper(s[j]);
    j++;
    if (j + 2 <= len && memcmp(s + j, "\xC2\xB7", 2) == 0) /* · */
        j += 2;
    else if (j + 3 <= len && memcmp(s + j, "\xE2\x80\xA2", 3) == 0) /* • */
        j += 3;
    else if (j < len && (s[j] == ' ' || s[j] == '-' || s[j] == '.'))
        j++;
    size_t k = 0;
    char tail[8];
    while (j < len && k < 7 &&
           (intake_is_digit((unsigned char)s[j]) || intake_is_alpha((unsigned char)s[j])))
        tail[k++] = upper(s[j++]);
    if (k < 5 || k > 6)
        return 0;
    memcpy(out, s + i, 3);
    out[3] = letter;
    memcpy(out + 4, tail, k);
    out[4 + k] = '\0';
    return j - i;
}

static int extract_plates(const char *s, size_t len, json_t *found)
{
    char joined[INTAKE_PLATES_MAX * 24] = "";
    size_t n = 0;
    for (size_t i = 0; i < len && n < INTAKE_PLATES_MAX;) {
        char p[16];
        size_t pl = plate_at(s, len, i, p);
        if (pl == 0) {
            i += intake_u8len((unsigned char)s[i]);
            continue;
        }
        if (strstr(joined, p) == NULL) {
            if (n > 0)
                strcat(joined, "、");
            strcat(joined, p);
            n++;
        }
        i += pl;
    }
    return n > 0 ? set_cstr(found, INTAKE_PLATES, joined) : 0;
}

/* ---- contact: a mainland mobile number (11 digits starting 1[3-9]) or 0xx-xxxxxxxx ---- */

static int extract_contact(const char *s, size_t len, json_t *found)
{
    for (size_t i = 0; i < len; i++) {
        if (!intake_is_digit((unsigned char)s[i]) ||
            (i > 0 && intake_is_digit((unsigned char)s[i - 1])))
            continue;
        size_t j = i;
        char d[24];
        size_t n = 0;
        while (j < len && n < sizeof(d) - 1 &&
               (intake_is_digit((unsigned char)s[j]) ||
                ((s[j] == '-' || s[j] == ' ') && j + 1 < len &&
                 intake_is_digit((unsigned char)s[j + 1]) && n > 0))) {
            if (intake_is_digit((unsigned char)s[j]))
                d[n++] = s[j];
            j++;
        }
        d[n] = '\0';
        bool mobile = n == 11 && d[0] == '1' && d[1] >= '3' && d[1] <= '9';
        bool landline = (n == 11 || n == 12) && d[0] == '0';
        if (mobile || landline)
            return set_str(found, INTAKE_CONTACT, d, n);
        i = j;
    }
    return 0;
}

/* ---- time ---- */

static const char *const s_time_anchors_zh[] = {
    "今天", "昨天", "前天", "昨晚", "今晚", "今早",   "昨夜",   "凌晨", "上午", "下午", "早上",
    "晚上", "中午", "傍晚", "刚才", "刚刚", "小时前", "分钟前", "点",   "月",   "号",   NULL};
static const char *const s_time_chars[] = {
    "今", "昨", "前", "天", "上", "下", "午", "晚", "早", "中", "凌", "晨", "傍", "点", "分",
    "半", "刻", "左", "右", "约", "月", "日", "号", "年", "一", "二", "三", "四", "五", "六",
    "七", "八", "九", "十", "两", "零", "〇", "整", "多", "钟", "夜", "刚", "才", "小", "时",
    "0",  "1",  "2",  "3",  "4",  "5",  "6",  "7",  "8",  "9",  ":",  "-",  "/",  NULL};
static const char *const s_time_strong[] = {"天", "午",     "晚",     "早", "凌晨",
                                            "刚", "小时前", "分钟前", NULL};
static const char *const s_numerals[] = {"0",  "1",  "2",  "3",  "4",  "5",  "6",  "7",
                                         "8",  "9",  "一", "二", "三", "四", "五", "六",
                                         "七", "八", "九", "十", "两", "零", NULL};

static bool valid_time_span(const char *s, size_t a, size_t b)
{
    if (llm_rules_has_any(s + a, b - a, s_time_strong))
        return true;
    /* "3点" / "三点" / "5月" / "3号" / "3日": right after a numeral */
    for (size_t i = a; i + 3 <= b; i++) {
        if ((memcmp(s + i, "点", 3) == 0 || memcmp(s + i, "月", 3) == 0 ||
             memcmp(s + i, "号", 3) == 0 || memcmp(s + i, "日", 3) == 0) &&
            i > a) {
            size_t p = intake_u8prev(s, i);
            if (intake_cp_in(s, b, p, s_numerals))
                return true;
        }
    }
    return false;
}

static int extract_time_zh(const char *s, size_t len, json_t *found)
{
    for (size_t k = 0; s_time_anchors_zh[k] != NULL; k++) {
        size_t from = 0;
        while (from < len) {
            long p = llm_rules_find(s + from, len - from, s_time_anchors_zh[k]);
            if (p < 0)
                break;
            size_t a = from + (size_t)p, b = a;
            while (a > 0) {
                size_t q = intake_u8prev(s, a);
                if (!intake_cp_in(s, len, q, s_time_chars))
                    break;
                a = q;
            }
            while (b < len && intake_cp_in(s, len, b, s_time_chars))
                b += intake_u8len((unsigned char)s[b]);
            /* "大约" / "左右" / "上" / "下" at the edges are kept only inside the span */
            /* a trailing 上/中 belongs to the next words ("在路上") unless it ends 晚上/早上 */
            while (b >= a + 6 &&
                   (memcmp(s + b - 3, "上", 3) == 0 || memcmp(s + b - 3, "中", 3) == 0) &&
                   memcmp(s + b - 6, "晚", 3) != 0 && memcmp(s + b - 6, "早", 3) != 0)
                b -= 3;
            if (b > a && valid_time_span(s, a, b))
                return set_str(found, INTAKE_ACCIDENT_TIME, s + a, b - a);
            from = (size_t)(from + (size_t)p + strlen(s_time_anchors_zh[k]));
        }
    }
    return 0;
}

static const char *const s_time_words_en[] = {
    "yesterday",    "today",      "this morning", "this afternoon",
    "this evening", "last night", "tonight",      "just now",
    "ago",          "morning",    "afternoon",    "evening",
    "noon",         "midnight",   "monday",       "tuesday",
    "wednesday",    "thursday",   "friday",       "saturday",
    "sunday",       NULL};

/* A clock time at s+i: "3pm", "3 pm", "15:30", "3:30 p.m.", "3 o'clock"; its length or 0. */
static size_t clock_at(const char *s, size_t len, size_t i)
{
    if (!intake_is_digit((unsigned char)s[i]) ||
        (i > 0 &&
         (intake_is_digit((unsigned char)s[i - 1]) || intake_is_alpha((unsigned char)s[i - 1]))))
        return 0;
    size_t j = i;
    while (j < len && j - i < 2 && intake_is_digit((unsigned char)s[j]))
        j++;
    if (j < len && intake_is_digit((unsigned char)s[j]))
        return 0;
    bool colon = false;
    if (j + 2 < len && s[j] == ':' && intake_is_digit((unsigned char)s[j + 1]) &&
        intake_is_digit((unsigned char)s[j + 2])) {
        j += 3;
        colon = true;
    }
    size_t k = j;
    while (k < len && s[k] == ' ')
        k++;
    static const char *const suf[] = {"a.m.", "p.m.", "am", "pm", "o'clock", NULL};
    for (size_t m = 0; suf[m] != NULL; m++) {
        size_t sl = strlen(suf[m]);
        if (k + sl <= len && llm_rules_find(s + k, sl, suf[m]) == 0 &&
            (k + sl == len || !intake_is_alpha((unsigned char)s[k + sl])))
            return k + sl - i;
    }
    return colon ? j - i : 0;
}

static int extract_time_en(const char *s, size_t len, json_t *found)
{
    char out[INTAKE_VALUE_MAX + 1];
    size_t o = 0, covered = 0;
    for (size_t i = 0; i < len; i++) {
        if (i < covered)
            continue;
        size_t hit = clock_at(s, len, i);
        if (hit == 0 && (i == 0 || !intake_is_alpha((unsigned char)s[i - 1]))) {
            for (size_t k = 0; s_time_words_en[k] != NULL; k++) {
                size_t kl = strlen(s_time_words_en[k]);
                if (i + kl <= len && llm_rules_find(s + i, kl, s_time_words_en[k]) == 0 &&
                    (i + kl == len || !intake_is_alpha((unsigned char)s[i + kl]))) {
                    hit = kl;
                    break;
                }
            }
        }
        if (hit == 0)
            continue;
        if (o + hit + 1 >= sizeof(out))
            break;
        if (o > 0)
            out[o++] = ' ';
        memcpy(out + o, s + i, hit);
        o += hit;
        covered = i + hit;
    }
    return o > 0 ? set_str(found, INTAKE_ACCIDENT_TIME, out, o) : 0;
}

/* ---- place ---- */

static const char *const s_place_suffix_zh[] = {
    "交叉口", "十字路口", "路口", "大道", "高速", "高架", "隧道", "广场", "停车场", "小区",
    "环路",   "公路",     "门口", "附近", "路",   "街",   "桥",   "巷",   "弄",     NULL};
/* Place suffixes that may end a place name (longest first in s_place_suffix_zh). */

static int extract_place_zh(const char *s, size_t len, int asked, json_t *found)
{
    /* "地点是X" / "地点：X" / "在X<suffix>" */
    static const char *const intro[] = {
        "地点是", "地点在", "地点：", "地点:", "位置在", "在", NULL};
    for (size_t k = 0; intro[k] != NULL; k++) {
        size_t from = 0;
        while (from < len) {
            long p = llm_rules_find(s + from, len - from, intro[k]);
            if (p < 0)
                break;
            size_t a = from + (size_t)p + strlen(intro[k]);
            if (a + 3 <= len && memcmp(s + a, "在", 3) == 0)
                a += 3;
            size_t ca, cb;
            intake_clause_at(s, len, a < len ? a : len - 1, &ca, &cb);
            /* the last place suffix within the clause after a, at most 60 bytes on */
            size_t lim = cb < a + 60 ? cb : a + 60;
            size_t best = 0;
            for (size_t i = a; i < lim;) {
                for (size_t m = 0; s_place_suffix_zh[m] != NULL; m++) {
                    size_t sl = strlen(s_place_suffix_zh[m]);
                    if (i + sl <= lim && memcmp(s + i, s_place_suffix_zh[m], sl) == 0) {
                        best = i + sl;
                        break;
                    }
                }
                i += intake_u8len((unsigned char)s[i]);
            }
            if (best > a + 3)
                return set_str(found, INTAKE_PLACE, s + a, best - a);
            from = a;
        }
    }
    if (asked == INTAKE_PLACE) {
        size_t a = 0, b = len;
        intake_trim(s, &a, &b);
        return set_str(found, INTAKE_PLACE, s + a, b - a);
    }
    return 0;
}

static const char *const s_place_suffix_en[] = {
    "road",        "rd",     "street",    "st",           "avenue",   "ave",        "highway",
    "expressway",  "bridge", "junction",  "intersection", "crossing", "roundabout", "car park",
    "parking lot", "lane",   "boulevard", "tunnel",       "square",   "ring road",  NULL};

static int extract_place_en(const char *s, size_t len, int asked, json_t *found)
{
    for (size_t i = 0; i < len; i++) {
        if (i > 0 && intake_is_alpha((unsigned char)s[i - 1]))
            continue;
        for (size_t m = 0; s_place_suffix_en[m] != NULL; m++) {
            size_t sl = strlen(s_place_suffix_en[m]);
            if (i + sl > len || llm_rules_find(s + i, sl, s_place_suffix_en[m]) != 0 ||
                (i + sl < len && intake_is_alpha((unsigned char)s[i + sl])))
                continue;
            /* back to the nearest " on " / " at " / " near " / " in " within 60 bytes */
            size_t w0 = i > 60 ? i - 60 : 0;
            static const char *const preps[] = {" on ", " at ", " near ", " in ", " by ", NULL};
            size_t best = 0;
            bool got = false;
            for (size_t k = 0; preps[k] != NULL; k++) {
                size_t from = w0;
                while (from < i) {
                    long p = llm_rules_find(s + from, i - from, preps[k]);
                    if (p < 0)
                        break;
                    size_t at = from + (size_t)p + strlen(preps[k]);
                    if (!got || at > best) {
                        best = at;
                        got = true;
                    }
                    from = at;
                }
            }
            /* skip a clock time right after the preposition ("at 3pm on X Road" takes "on") */
            if (got) {
                size_t a = best, b = i + sl;
                if (a + 4 <= b && llm_rules_find(s + a, 4, "the ") == 0)
                    a += 4;
                return set_str(found, INTAKE_PLACE, s + a, b - a);
            }
        }
    }
    if (asked == INTAKE_PLACE) {
        size_t a = 0, b = len;
        intake_trim(s, &a, &b);
        return set_str(found, INTAKE_PLACE, s + a, b - a);
    }
    return 0;
}

/* ---- description (how it happened) and damage: the clause holding a cue word ---- */

static const char *const s_accident_cues[] = {
    "追尾",       "剐蹭",        "刮蹭",       "擦碰",      "碰撞",      "相撞",        "撞",
    "碰",         "刮",          "蹭",         "倒车",      "变道",      "侧翻",        "翻车",
    "rear-ended", "rear ended",  "collided",   "collision", "crashed",   "crash",       "hit ",
    "scraped",    "side-swiped", "sideswiped", "bumped",    "reversing", "backed into", NULL};
static const char *const s_damage_cues[] = {
    "坏了", "坏",      "碎",      "凹",      "划痕",      "刮花",    "掉漆",   "变形",
    "损坏", "撞瘪",    "瘪",      "裂",      "脱落",      "damaged", "broken", "broke",
    "dent", "scratch", "cracked", "smashed", "shattered", NULL};

static int clause_with(const char *s, size_t len, const char *const *cues, size_t *ca, size_t *cb)
{
    size_t kl = 0;
    long p = intake_find_any(s, len, cues, &kl);
    if (p < 0)
        return 0;
    intake_clause_at(s, len, (size_t)p, ca, cb);
    intake_trim(s, ca, cb);
    return *cb > *ca;
}

static int extract_description(const char *s, size_t len, int asked, const json_t *found,
                               json_t *out)
{
    if (asked == INTAKE_DESCRIPTION) {
        size_t a = 0, b = len;
        intake_trim(s, &a, &b);
        return set_str(out, INTAKE_DESCRIPTION, s + a, b - a);
    }
    size_t a, b;
    if (!clause_with(s, len, s_accident_cues, &a, &b))
        return 0;
    /* "后保险杠撞凹了" is damage, not how it happened */
    const json_t *dmg = json_object_get(found, "damage");
    if (json_is_string(dmg) && json_string_length(dmg) == b - a &&
        memcmp(json_string_value(dmg), s + a, b - a) == 0)
        return 0;
    /* Drop the time and place the clause starts with: "昨天下午三点在延安路和人追尾了" ->
     * "和人追尾了"; keep the clause when little would be left. */
    const json_t *pl = json_object_get(found, "place");
    const json_t *tm = json_object_get(found, "accident_time");
    size_t cut = a;
    const json_t *parts[2] = {pl, tm};
    for (int k = 0; k < 2; k++) {
        if (!json_is_string(parts[k]))
            continue;
        long p = llm_rules_find(s + a, b - a, json_string_value(parts[k]));
        if (p >= 0 && a + (size_t)p + json_string_length(parts[k]) > cut)
            cut = a + (size_t)p + json_string_length(parts[k]);
    }
    if (cut > a && b > cut + 3)
        a = cut;
    intake_trim(s, &a, &b);
    return set_str(out, INTAKE_DESCRIPTION, s + a, b - a);
}

static int extract_damage(const char *s, size_t len, int asked, json_t *out)
{
    size_t a, b;
    if (clause_with(s, len, s_damage_cues, &a, &b))
        return set_str(out, INTAKE_DAMAGE, s + a, b - a);
    if (asked == INTAKE_DAMAGE) {
        a = 0;
        b = len;
        intake_trim(s, &a, &b);
        return set_str(out, INTAKE_DAMAGE, s + a, b - a);
    }
    return 0;
}

/* ---- injuries and police ---- */

static int extract_injuries(const char *s, size_t len, int asked, json_t *out)
{
    intake_intents_t it;
    intake_intents(s, len, &it);
    if (it.death)
        return set_cstr(out, INTAKE_INJURIES, "death");
    if (it.injury)
        return set_cstr(out, INTAKE_INJURIES, "injured");
    if (llm_rules_has_any(s, len, s_no_injury))
        return set_cstr(out, INTAKE_INJURIES, "none");
    if (asked == INTAKE_INJURIES) {
        static const char *const no[] = {"没有", "没", "无", "no", "nobody", "none", NULL};
        static const char *const yes[] = {"有", "yes", NULL};
        if (llm_rules_has_any(s, len, no))
            return set_cstr(out, INTAKE_INJURIES, "none");
        if (llm_rules_has_any(s, len, yes))
            return set_cstr(out, INTAKE_INJURIES, "injured");
    }
    return 0;
}

static const char *const s_police_no[] = {"没报警",
                                          "没有报警",
                                          "未报警",
                                          "没叫交警",
                                          "交警没来",
                                          "没有交警",
                                          "警察没来",
                                          "自行协商",
                                          "私了",
                                          "协商解决",
                                          "没找交警",
                                          "不报警",
                                          "didn't call the police",
                                          "did not call the police",
                                          "no police",
                                          "police didn't come",
                                          "police did not come",
                                          "without the police",
                                          "settled it ourselves",
                                          NULL};
static const char *const s_police_yes[] = {"报警了",
                                           "已报警",
                                           "报了警",
                                           "交警来了",
                                           "交警到了",
                                           "交警已",
                                           "交警认定",
                                           "交警定",
                                           "交警判",
                                           "警察来了",
                                           "交警处理",
                                           "责任认定书",
                                           "110",
                                           "122",
                                           "police came",
                                           "called the police",
                                           "police report",
                                           "police were",
                                           "police was",
                                           "police arrived",
                                           "police officer",
                                           "the police said",
                                           "police decided",
                                           NULL};

static int extract_police(const char *s, size_t len, int asked, json_t *out)
{
    if (llm_rules_has_any(s, len, s_police_no))
        return set_cstr(out, INTAKE_POLICE, "no");
    if (llm_rules_has_any(s, len, s_police_yes))
        return set_cstr(out, INTAKE_POLICE, "yes");
    if (asked == INTAKE_POLICE) {
        static const char *const no[] = {"没有", "没", "未", "no", NULL};
        static const char *const yes[] = {"来了", "来过", "到了", "有", "是", "yes", "came", NULL};
        if (llm_rules_has_any(s, len, no))
            return set_cstr(out, INTAKE_POLICE, "no");
        if (llm_rules_has_any(s, len, yes))
            return set_cstr(out, INTAKE_POLICE, "yes");
    }
    return 0;
}

/* ---- liability (the insured's share) ---- */

typedef struct {
    const char *phrase;
    const char *code;
} phrase_code_t;

static const phrase_code_t s_liability_zh[] = {{"对方全责", "none"},
                                               {"对方负全责", "none"},
                                               {"对方全部责任", "none"},
                                               {"对方负全部责任", "none"},
                                               {"对方负责", "none"},
                                               {"他全责", "none"},
                                               {"对方主责", "minor"},
                                               {"对方负主要责任", "minor"},
                                               {"对方主要责任", "minor"},
                                               {"对方次责", "major"},
                                               {"对方次要责任", "major"},
                                               {"对方无责", "full"},
                                               {"对方没责任", "full"},
                                               {"对方没有责任", "full"},
                                               {"我全责", "full"},
                                               {"我方全责", "full"},
                                               {"我负全责", "full"},
                                               {"我的全责", "full"},
                                               {"我是全责", "full"},
                                               {"我负全部责任", "full"},
                                               {"全是我的责任", "full"},
                                               {"我主责", "major"},
                                               {"我方主责", "major"},
                                               {"我负主要责任", "major"},
                                               {"我是主责", "major"},
                                               {"我次责", "minor"},
                                               {"我方次责", "minor"},
                                               {"我负次要责任", "minor"},
                                               {"我是次责", "minor"},
                                               {"我无责", "none"},
                                               {"我方无责", "none"},
                                               {"我没责任", "none"},
                                               {"我没有责任", "none"},
                                               {"不是我的责任", "none"},
                                               {"同责", "equal"},
                                               {"同等责任", "equal"},
                                               {"各占一半", "equal"},
                                               {"各负一半", "equal"},
                                               {"一半一半", "equal"},
                                               {"五五开", "equal"},
                                               {"责任对等", "equal"},
                                               {"还没定责", "undetermined"},
                                               {"没有定责", "undetermined"},
                                               {"尚未认定", "undetermined"},
                                               {"还没认定", "undetermined"},
                                               {"责任未定", "undetermined"},
                                               {NULL, NULL}};
static const phrase_code_t s_liability_bare[] = {{"全责", "full"},
                                                 {"全部责任", "full"},
                                                 {"主责", "major"},
                                                 {"主要责任", "major"},
                                                 {"次责", "minor"},
                                                 {"次要责任", "minor"},
                                                 {"无责", "none"},
                                                 {"没责任", "none"},
                                                 {"没有责任", "none"},
                                                 {"不知道", "undetermined"},
                                                 {"不清楚", "undetermined"},
                                                 {"还没", "undetermined"},
                                                 {"未定", "undetermined"},
                                                 {"待定", "undetermined"},
                                                 {"not yet", "undetermined"},
                                                 {"don't know", "undetermined"},
                                                 {"not sure", "undetermined"},
                                                 {"undetermined", "undetermined"},
                                                 {"full", "full"},
                                                 {"major", "major"},
                                                 {"minor", "minor"},
                                                 {"equal", "equal"},
                                                 {"none", "none"},
                                                 {NULL, NULL}};

static const char *other_side(const char *code)
{
    if (strcmp(code, "full") == 0)
        return "none";
    if (strcmp(code, "major") == 0)
        return "minor";
    if (strcmp(code, "minor") == 0)
        return "major";
    if (strcmp(code, "none") == 0)
        return "full";
    return code;
}

static const char *liability_en(const char *s, size_t len)
{
    static const char *const eq[] = {"50/50",         "50-50",        "fifty-fifty",
                                     "equally",       "equal fault",  "equal liability",
                                     "both at fault", "shared fault", NULL};
    if (llm_rules_has_any(s, len, eq))
        return "equal";
    static const char *const me_none[] = {"not my fault",      "wasn't my fault",
                                          "no fault of mine",  "i was not at fault",
                                          "i wasn't at fault", NULL};
    if (llm_rules_has_any(s, len, me_none))
        return "none";
    long f = llm_rules_find(s, len, "fault");
    if (f < 0)
        f = llm_rules_find(s, len, "liab");
    if (f < 0)
        f = llm_rules_find(s, len, "responsib");
    if (f < 0)
        return NULL;
    size_t ca, cb;
    intake_clause_at(s, len, (size_t)f, &ca, &cb);
    const char *c = s + ca;
    size_t cl = cb - ca;
    static const char *const other[] = {"other",   "their",     "they",      "he was",
                                        "she was", "his fault", "her fault", NULL};
    static const char *const mine[] = {"my", "i was", "i'm", "i am", "me", NULL};
    bool is_other = llm_rules_has_any(c, cl, other);
    bool is_me = !is_other && llm_rules_has_any(c, cl, mine);
    if (!is_other && !is_me)
        return NULL;
    const char *deg = "full";
    static const char *const major[] = {"mostly", "mainly", "major", "primar", NULL};
    static const char *const minor[] = {"partly", "partially", "minor", "slightly", "a bit", NULL};
    if (llm_rules_has_any(c, cl, major))
        deg = "major";
    else if (llm_rules_has_any(c, cl, minor))
        deg = "minor";
    return is_other ? other_side(deg) : deg;
}

static int extract_liability(const char *s, size_t len, int asked, json_t *out)
{
    for (size_t k = 0; s_liability_zh[k].phrase != NULL; k++) {
        if (llm_rules_find(s, len, s_liability_zh[k].phrase) >= 0)
            return set_cstr(out, INTAKE_LIABILITY, s_liability_zh[k].code);
    }
    const char *en = liability_en(s, len);
    if (en != NULL)
        return set_cstr(out, INTAKE_LIABILITY, en);
    if (asked == INTAKE_LIABILITY) {
        for (size_t k = 0; s_liability_bare[k].phrase != NULL; k++) {
            if (llm_rules_find(s, len, s_liability_bare[k].phrase) >= 0)
                return set_cstr(out, INTAKE_LIABILITY, s_liability_bare[k].code);
        }
    }
    return 0;
}

int intake_liability_share(const char *code)
{
    static const struct {
        const char *code;
        int share;
    } t[] = {{"full", 100}, {"major", 70}, {"equal", 50}, {"minor", 30}, {"none", 0}};
    for (size_t i = 0; code != NULL && i < sizeof(t) / sizeof(t[0]); i++) {
        if (strcmp(code, t[i].code) == 0)
            return t[i].share;
    }
    return -1;
}

/* ---- amounts ---- */

static const char *const s_amount_ctx[] = {"修",    "损失",   "费用",    "花",       "大概",
                                           "大约",  "估计",   "cost",    "repair",   "damage",
                                           "about", "around", "roughly", "estimate", NULL};
static const char *const s_third_ctx[] = {"对方", "对面",  "他的",  "他车",  "别人",
                                          "三者", "other", "their", "third", NULL};
static const char *const s_unknown[] = {"不清楚",     "不知道",   "不确定",  "说不好",  "还不知道",
                                        "don't know", "not sure", "no idea", "unknown", NULL};

static const char *const s_own_ctx[] = {"我的", "我车", "本车", "自己的", "my ", "mine", NULL};

/* Last offset + 1 of any keyword in s[a..b), 0 if none. */
static size_t last_of(const char *s, size_t a, size_t b, const char *const *kws)
{
    size_t best = 0;
    for (size_t k = 0; kws[k] != NULL; k++) {
        size_t from = a;
        while (from < b) {
            long p = llm_rules_find(s + from, b - from, kws[k]);
            if (p < 0)
                break;
            size_t at = from + (size_t)p;
            if (at + 1 > best)
                best = at + 1;
            from = at + strlen(kws[k]);
        }
    }
    return best;
}

/* Whether the amount at i is about the other party: the nearer of a third-party cue
 * ("对方...") and an own cue ("我的车...") within 48 bytes before it; own by default. */
static bool third_party_before(const char *s, size_t i)
{
    size_t a = i > 48 ? i - 48 : 0;
    while (a > 0 && ((unsigned char)s[a] & 0xC0) == 0x80)
        a--;
    size_t tp = last_of(s, a, i, s_third_ctx), own = last_of(s, a, i, s_own_ctx);
    return tp > own;
}

/*
 * Parse a number at s+i ("3000", "3,000", "1.5", "1.2万", "5千", "3k") with an
 * optional currency marker around it. *end is set past it; *has_unit when a
 * currency marker or a 万/千/k multiplier is present. Returns 0 if none.
 */
static int amount_at(const char *s, size_t len, size_t i, double *v, size_t *end, bool *has_unit)
{
    if (!intake_is_digit((unsigned char)s[i]) ||
        (i > 0 && (intake_is_digit((unsigned char)s[i - 1]) ||
                   intake_is_alpha((unsigned char)s[i - 1]) || s[i - 1] == '.' || s[i - 1] == ',')))
        return 0;
    char buf[32];
    size_t n = 0, j = i;
    while (j < len && n < sizeof(buf) - 1) {
        if (intake_is_digit((unsigned char)s[j]) || s[j] == '.')
            buf[n++] = s[j];
        else if (!(s[j] == ',' && j + 3 < len && intake_is_digit((unsigned char)s[j + 1])))
            break;
        j++;
    }
    buf[n] = '\0';
    if (n > 9) /* phone numbers, ids */
        return 0;
    double x = strtod(buf, NULL);
    *has_unit = false;
    size_t k = j;
    while (k < len && s[k] == ' ')
        k++;
    if (k + 3 <= len && memcmp(s + k, "万", 3) == 0) {
        x *= 10000;
        k += 3;
        *has_unit = true;
    } else if (k + 3 <= len && memcmp(s + k, "千", 3) == 0) {
        x *= 1000;
        k += 3;
        *has_unit = true;
    } else if (k < len && (s[k] == 'k' || s[k] == 'K') &&
               (k + 1 == len || !intake_is_alpha((unsigned char)s[k + 1]))) {
        x *= 1000;
        k += 1;
        *has_unit = true;
    }
    static const char *const units[] = {"元", "块", "yuan", "rmb", "cny", NULL};
    size_t k2 = k;
    while (k2 < len && s[k2] == ' ')
        k2++;
    for (size_t u = 0; units[u] != NULL; u++) {
        size_t ul = strlen(units[u]);
        if (k2 + ul <= len && llm_rules_find(s + k2, ul, units[u]) == 0) {
            *has_unit = true;
            k = k2 + ul;
            break;
        }
    }
    /* a currency marker just before: CNY / RMB / ¥ / ￥ */
    size_t w0 = i > 5 ? i - 5 : 0;
    static const char *const pre[] = {"cny", "rmb", "\xC2\xA5", "\xEF\xBF\xA5", NULL};
    if (llm_rules_has_any(s + w0, i - w0, pre))
        *has_unit = true;
    /* a time, a date or a count, not money */
    static const char *const not_money[] = {"点", "号", "月", "日", "年", "分",      "辆",
                                            "人", "个", ":",  "pm", "am", "o'clock", NULL};
    size_t k3 = j;
    while (k3 < len && s[k3] == ' ')
        k3++;
    for (size_t u = 0; !*has_unit && not_money[u] != NULL; u++) {
        size_t ul = strlen(not_money[u]);
        if (k3 + ul <= len && llm_rules_find(s + k3, ul, not_money[u]) == 0)
            return 0;
    }
    if (x < 0 || x > INTAKE_AMOUNT_MAX)
        return 0;
    *v = x;
    *end = k;
    return 1;
}

static int set_amount(json_t *out, int slot, double v)
{
    char buf[32];
    long long fen = (long long)(v * 100.0 + 0.5);
    if (fen % 100 == 0)
        snprintf(buf, sizeof(buf), "%lld", fen / 100);
    else
        snprintf(buf, sizeof(buf), "%lld.%02lld", fen / 100, fen % 100);
    /* drop a trailing 0 of the cents */
    size_t bl = strlen(buf);
    if (strchr(buf, '.') != NULL && buf[bl - 1] == '0')
        buf[bl - 1] = '\0';
    return set_cstr(out, slot, buf);
}

static int extract_amounts(const char *s, size_t len, int asked, json_t *out)
{
    bool asked_amount = asked == INTAKE_DAMAGE_AMOUNT || asked == INTAKE_TP_AMOUNT;
    bool got_own = false, got_tp = false;
    for (size_t i = 0; i < len; i++) {
        double v;
        size_t end;
        bool unit;
        if (!amount_at(s, len, i, &v, &end, &unit))
            continue;
        size_t ca, cb;
        intake_clause_at(s, len, i, &ca, &cb);
        size_t w0 = i > 24 && i - 24 > ca ? i - 24 : ca;
        bool ctx = llm_rules_has_any(s + w0, i - w0, s_amount_ctx);
        if (!unit && !ctx && !asked_amount) {
            i = end;
            continue;
        }
        bool tp = third_party_before(s, i);
        if (!tp && asked == INTAKE_TP_AMOUNT && llm_rules_find(s + ca, i - ca, "我") < 0 &&
            llm_rules_find(s + ca, i - ca, "my") < 0)
            tp = true;
        int rc = 0;
        if (tp && !got_tp) {
            rc = set_amount(out, INTAKE_TP_AMOUNT, v);
            got_tp = true;
        } else if (!tp && !got_own) {
            rc = set_amount(out, INTAKE_DAMAGE_AMOUNT, v);
            got_own = true;
        }
        if (rc != 0)
            return rc;
        i = end;
    }
    if (asked_amount && !got_own && !got_tp) {
        static const char *const zero[] = {"没有损失",  "没损失",  "没什么损失", "没事",
                                           "no damage", "nothing", NULL};
        if (llm_rules_has_any(s, len, zero))
            return set_cstr(out, asked, "0");
        if (llm_rules_has_any(s, len, s_unknown))
            return set_cstr(out, asked, "unknown");
    }
    return 0;
}

/* ---- the whole message ---- */

static bool mostly_ascii(const char *s, size_t len)
{
    size_t hi = 0;
    for (size_t i = 0; i < len; i++)
        hi += ((unsigned char)s[i] >= 0x80);
    return hi * 4 < len;
}

int intake_extract(const char *s, size_t len, int asked, json_t *found)
{
    if (len > INTAKE_TEXT_MAX) {
        len = INTAKE_TEXT_MAX;
        while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80)
            len--;
    }
    char pno[LLM_POLICY_NO_LEN + 1];
    int rc = 0;
    if (llm_rules_find_policy_no(s, len, pno))
        rc = set_cstr(found, INTAKE_POLICY_NO, pno);
    bool en = mostly_ascii(s, len);
    if (rc == 0)
        rc = extract_plates(s, len, found);
    if (rc == 0)
        rc = extract_contact(s, len, found);
    if (rc == 0)
        rc = en ? extract_time_en(s, len, found) : extract_time_zh(s, len, found);
    if (rc == 0 && asked == INTAKE_ACCIDENT_TIME &&
        json_object_get(found, "accident_time") == NULL) {
        size_t a = 0, b = len;
        intake_trim(s, &a, &b);
        rc = set_str(found, INTAKE_ACCIDENT_TIME, s + a, b - a);
    }
    if (rc == 0)
        rc = en ? extract_place_en(s, len, asked, found) : extract_place_zh(s, len, asked, found);
    if (rc == 0)
        rc = extract_injuries(s, len, asked, found);
    if (rc == 0)
        rc = extract_police(s, len, asked, found);
    if (rc == 0)
        rc = extract_liability(s, len, asked, found);
    if (rc == 0)
        rc = extract_damage(s, len, asked, found);
    if (rc == 0)
        rc = extract_amounts(s, len, asked, found);
    if (rc == 0)
        rc = extract_description(s, len, asked, found, found);
    /* A bare answer to a free-text question must not also be read as the description. */
    return rc;
}
