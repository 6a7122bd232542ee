/*
 * Macros that spell the built-in modules' argument schemas: ph_function.args
 * is a JSON Schema as text (module.h), and writing it as raw C string
 * literals buries the numbers under escaped quotes. The limits are pasted
 * in with STR() from the same macros the functions check against, so a
 * limit lives in one place. The text must stay valid JSON; the registry
 * test parses every built-in schema.
 *
 *   ARGS(REQUIRED("n"),
 *        PROP("n", INTEGER(0, LIMIT) DESC("...")) ","
 *        PROP("seed", INTEGER(0, SEED_MAX) DEFAULT(0) DESC("...")))
 *
 * Descriptions are pasted into JSON strings as they are: no double quotes
 * or backslashes in them.
 */
#ifndef POOL_ARGS_SCHEMA_H
#define POOL_ARGS_SCHEMA_H

#define STR_(x) #x
#define STR(x) STR_(x)

/* The arguments object: props are PROP()s joined by ",", required a
 * REQUIRED() or NO_REQUIRED. Arguments outside props are refused by
 * pool__args_check, hence additionalProperties false. */
#define ARGS(required, props)                                                  \
    "{\"type\":\"object\",\"properties\":{" props "},"                         \
    "\"required\":[" required "],\"additionalProperties\":false}"
/* The same with a description, for a rule across arguments that the
 * schema cannot state. */
#define ARGS_DESC(text, required, props)                                       \
    "{\"type\":\"object\",\"description\":\"" text "\","                       \
    "\"properties\":{" props "},"                                              \
    "\"required\":[" required "],\"additionalProperties\":false}"

#define REQUIRED(name) "\"" name "\""
#define REQUIRED2(a, b) "\"" a "\",\"" b "\""
#define NO_REQUIRED ""

/* One property; fields is a type macro followed by DEFAULT, DESC etc. */
#define PROP(name, fields) "\"" name "\":{" fields "}"

/* Type macros: each starts the field list (no leading comma). */
#define INTEGER(min, max)                                                      \
    "\"type\":\"integer\",\"minimum\":" STR(min) ",\"maximum\":" STR(max)
#define BOOLEAN "\"type\":\"boolean\""
/* A string of at most max bytes: JSON Schema counts characters, so a
 * multi-byte text may pass the schema and still be refused. */
#define STRING(max) "\"type\":\"string\",\"maxLength\":" STR(max)
/* One of a fixed set: choices are quoted strings joined by ",". */
#define ENUM(choices) "\"type\":\"string\",\"enum\":[" choices "]"
#define NUMBERS(max_items)                                                     \
    "\"type\":\"array\",\"items\":{\"type\":\"number\"},"                      \
    "\"maxItems\":" STR(max_items)

/* Fields that follow a type macro. DEFAULT takes a number (a literal or
 * a macro for one); DEFAULT_JSON any JSON text, e.g. "false" (stdbool's
 * false is 0, so STR() cannot spell it); DEFAULT_STRING a string's text. */
#define DEFAULT(number) ",\"default\":" STR(number)
#define DEFAULT_JSON(text) ",\"default\":" text
#define DEFAULT_STRING(text) ",\"default\":\"" text "\""
#define DESC(text) ",\"description\":\"" text "\""

#endif
