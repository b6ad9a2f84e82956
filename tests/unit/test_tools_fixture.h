/*
 * test_tools_fixture.h - shared helpers of the tools worker's unit tests
 * (test_feecalc.c, test_tools_*.c): where the shipped data lives, and
 * throw-away data directories built from it with hand-written policies.
 *
 * Header-only (static functions) so each test stays one executable.
 */
#ifndef TEST_TOOLS_FIXTURE_H
#define TEST_TOOLS_FIXTURE_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FIXTURE_PATH_MAX 1024

/* The shipped data directory: $MESH_DATA_DIR (set by ctest), else <this file>/../../data. */
static void fixture_data_dir(char out[FIXTURE_PATH_MAX])
{
    const char *env = getenv("MESH_DATA_DIR");
    if (env != NULL && env[0] != '\0') {
        snprintf(out, FIXTURE_PATH_MAX, "%s", env);
        return;
    }
    char here[FIXTURE_PATH_MAX / 2];
    snprintf(here, sizeof(here), "%s", __FILE__);
    char *slash = strrchr(here, '/');
    if (slash != NULL)
        *slash = '\0';
    else
        snprintf(here, sizeof(here), ".");
    snprintf(out, FIXTURE_PATH_MAX, "%s/../../data", here);
}

/* Write text to dir/rel. 0 or -1. */
static int fixture_write(const char *dir, const char *rel, const char *text)
{
    char path[FIXTURE_PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    size_t n = strlen(text);
    int rc = fwrite(text, 1, n, f) == n ? 0 : -1;
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

/* Read dir/rel into a new NUL-terminated buffer (caller frees), NULL on failure. */
static char *fixture_read(const char *dir, const char *rel)
{
    char path[FIXTURE_PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    char *buf = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long size = ftell(f);
        if (size >= 0 && fseek(f, 0, SEEK_SET) == 0) {
            buf = malloc((size_t)size + 1);
            if (buf != NULL && fread(buf, 1, (size_t)size, f) == (size_t)size) {
                buf[size] = '\0';
            } else {
                free(buf);
                buf = NULL;
            }
        }
    }
    fclose(f);
    return buf;
}

static int fixture_copy(const char *from_dir, const char *to_dir, const char *rel)
{
    char *text = fixture_read(from_dir, rel);
    if (text == NULL)
        return -1;
    int rc = fixture_write(to_dir, rel, text);
    free(text);
    return rc;
}

/*
 * A fresh temp directory holding the shipped tools.json, products/,
 * medical/catalogue.json and training/, and
 * policies.json = policies_json (a whole file's text; NULL copies the
 * shipped one). 0 or -1; out receives the directory.
 */
static int fixture_make(char out[FIXTURE_PATH_MAX], const char *policies_json)
{
    char src[FIXTURE_PATH_MAX];
    static const char *const PRODUCTS[] = {"products/med-million-2024.json",
                                           "products/ci-guard-2024.json",
                                           "products/motor-2024.json"};
    fixture_data_dir(src);
    snprintf(out, FIXTURE_PATH_MAX, "/tmp/mesh-tools-test-XXXXXX");
    if (mkdtemp(out) == NULL)
        return -1;
    static const char *const SUBDIRS[] = {"products", "medical", "training"};
    static const char *const OTHERS[] = {"medical/catalogue.json", "training/objections.json",
                                         "training/personas.json", "training/rubric.json"};
    char sub[FIXTURE_PATH_MAX + 16];
    for (size_t i = 0; i < sizeof(SUBDIRS) / sizeof(SUBDIRS[0]); i++) {
        snprintf(sub, sizeof(sub), "%s/%s", out, SUBDIRS[i]);
        if (mkdir(sub, 0700) != 0)
            return -1;
    }
    if (fixture_copy(src, out, "tools.json") != 0)
        return -1;
    for (size_t i = 0; i < sizeof(PRODUCTS) / sizeof(PRODUCTS[0]); i++) {
        if (fixture_copy(src, out, PRODUCTS[i]) != 0)
            return -1;
    }
    for (size_t i = 0; i < sizeof(OTHERS) / sizeof(OTHERS[0]); i++) {
        if (fixture_copy(src, out, OTHERS[i]) != 0)
            return -1;
    }
    if (policies_json == NULL)
        return fixture_copy(src, out, "policies.json");
    return fixture_write(out, "policies.json", policies_json);
}

/* Remove dir and everything in it (subdirectories too: products/, medical/, training/). */
static void fixture_remove(const char *dir)
{
    char path[FIXTURE_PATH_MAX * 2];
    DIR *dh = opendir(dir);
    if (dh == NULL)
        return;
    struct dirent *de;
    while ((de = readdir(dh)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
            fixture_remove(path);
        else
            unlink(path);
    }
    closedir(dh);
    rmdir(dir);
}

/* Hand-written policies used by several tests (valid against the shipped products). */
#define FIXTURE_POLICIES                                                                           \
    "{\"_sample\": true, \"as_of\": \"2026-11-01\", \"policies\": [\n"                             \
    "{\"policy_no\": \"P20001\", \"product_id\": \"med-million-2024\", \"status\": \"active\","    \
    " \"holder\": \"李*\", \"start_date\": \"2026-01-01\", \"end_date\": \"2026-12-31\","         \
    " \"social_insurance\": true, \"deductible_used\": 0, \"limit_used\": 0},\n"                   \
    "{\"policy_no\": \"P20002\", \"product_id\": \"med-million-2024\", \"status\": \"active\","    \
    " \"holder\": \"王*\", \"start_date\": \"2026-01-01\", \"end_date\": \"2026-12-31\","         \
    " \"social_insurance\": false, \"deductible_used\": 0, \"limit_used\": 0},\n"                  \
    "{\"policy_no\": \"P20003\", \"product_id\": \"med-million-2024\", \"status\": \"active\","    \
    " \"holder\": \"赵*\", \"start_date\": \"2026-01-01\", \"end_date\": \"2026-12-31\","         \
    " \"social_insurance\": true, \"deductible_used\": 8000, \"limit_used\": 2990000},\n"          \
    "{\"policy_no\": \"P20004\", \"product_id\": \"med-million-2024\", \"status\": \"lapsed\","    \
    " \"holder\": \"孙*\", \"start_date\": \"2026-01-01\", \"end_date\": \"2026-12-31\","         \
    " \"social_insurance\": true, \"deductible_used\": 0, \"limit_used\": 0},\n"                   \
    "{\"policy_no\": \"P20005\", \"product_id\": \"motor-2024\", \"status\": \"active\","          \
    " \"holder\": \"周*\", \"start_date\": \"2026-01-01\", \"end_date\": \"2026-12-31\","         \
    " \"social_insurance\": true, \"plate\": \"沪A·1****\","                                     \
    " \"cover_limits\": {\"vehicle_damage\": 150000, \"third_party\": 2000000}},\n"                \
    "{\"policy_no\": \"P20006\", \"product_id\": \"ci-guard-2024\", \"status\": \"active\","       \
    " \"holder\": \"吴*\", \"start_date\": \"2020-01-01\", \"end_date\": \"2039-12-31\","         \
    " \"social_insurance\": true, \"sum_assured\": 500000,"                                        \
    " \"cover_limits\": {\"severe_illness\": 500000, \"mild_illness\": 150000}}\n"                 \
    "]}\n"

/* A policies.json whose first policy names a product that does not exist. */
#define POLICIES_BAD_PRODUCT                                                                       \
    "{\"policies\": [{\"policy_no\": \"P30001\", \"product_id\": \"X\"}]}\n"

#endif
