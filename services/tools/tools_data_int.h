/*
 * tools_data_int.h - internals of tools_data shared by its validator files
 * (tools_data.c loads, tools_data_decl.c / _products.c / _policies.c check).
 */
#ifndef TOOLS_DATA_INT_H
#define TOOLS_DATA_INT_H

#include <jansson.h>

#include "tools_catalogue.h"
#include "tools_check.h"
#include "tools_data.h"
#include "tools_training.h"

#define TOOLS_TEXT_MAX   2000 /* characters of one zh/en text in the data */
#define TOOLS_SHORT_MAX  128  /* characters of ids, names, plates */
#define TOOLS_AMOUNT_MAX 1e10 /* CNY: the largest limit or amount in the data */

struct tools_data {
    json_t *tools;                /* tools.json array */
    json_t *tools_by_name;        /* name -> declaration */
    json_t *products;             /* id -> product */
    json_t *policies;             /* policy_no -> policy */
    json_t *policies_file;        /* the parsed policies.json (owns the policies) */
    json_t *exclusion_ids;        /* every product's exclusion ids -> true */
    tools_catalogue_t *catalogue; /* medical/catalogue.json */
    tools_training_t *training;   /* training/ (the trainer's data, tools_training.h) */
    char as_of[TOOLS_DATE_LEN + 1];
};

/* Check the tools.json array and index it into d->tools_by_name. */
int tools_data_check_tools(tools_check_t *c, json_t *tools, tools_data_t *d);

/* Check one product (file_id: the file name without ".json", which must equal its id). */
int tools_data_check_product(tools_check_t *c, const json_t *product, const char *file_id);

/* Check policies.json against the loaded products and index it into d->policies. */
int tools_data_check_policies(tools_check_t *c, json_t *root, tools_data_t *d);

#endif
