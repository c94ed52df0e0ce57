/* form.h - questionnaires as data: parse, validate, render.
 *
 * A questionnaire is a text file under forms/ (format in forms/README.md).
 * form_parse turns it into a table of fields; form_validate checks a
 * submission against that table and yields typed values before any handler
 * sees it; form_render writes the <form> element of the page. The page
 * around it (head, styles, language switch) belongs to the collector, and
 * what the answers mean for a tally belongs to the aggregator.
 *
 * This library never logs and never exits: errors come back as values. */
#ifndef PINGYI_FORM_H
#define PINGYI_FORM_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"
#include "common/kv.h"

enum form_lang { FORM_ZH = 0, FORM_EN = 1 };

enum {
	FORM_MAX_LEVELS = 8,
	FORM_MAX_QUESTIONS = 24,
	FORM_MAX_KINDS = 8,
	FORM_MAX_FIELDS = FORM_MAX_QUESTIONS + 2,
	FORM_NAME_MAX = 32,   /* bytes, including the NUL */
};

/* How a scale level counts in a tally (DESIGN.md §2). */
enum form_counts {
	FORM_SATISFIED,    /* valid, satisfied */
	FORM_NEUTRAL,      /* valid, neither (e.g. 一般 on a 5-level scale) */
	FORM_DISSATISFIED, /* valid, dissatisfied (counts towards the veto) */
	FORM_INVALID,      /* not a valid answer for rates (不了解) */
};

typedef struct form_level {
	char key[FORM_NAME_MAX];     /* stored in ballots and counters, e.g. "s" */
	char *label[2];              /* [FORM_ZH], [FORM_EN] */
	enum form_counts counts;
	int points;                  /* 0..100; 0 for FORM_INVALID */
} form_level;

typedef struct form_question {
	char name[FORM_NAME_MAX];    /* the field name, e.g. "leadership" */
	char *label[2];
	char *hint[2];               /* NULL when the file gives none */
	bool overall;                /* the form's overall question */
} form_question;

enum form_field_type { FORM_CHOICE, FORM_TEXT, FORM_FLAG };

/* One accepted field of a submission. Choices take a level key, text is
 * free UTF-8 of at most max_chars code points, a flag takes "1". */
typedef struct form_field {
	char name[FORM_NAME_MAX];
	enum form_field_type type;
	bool required;
	int max_chars;               /* FORM_TEXT only */
	int question;                /* FORM_CHOICE: index into questions */
} form_field;

typedef struct form {
	char id[FORM_NAME_MAX];
	char *title[2];
	char *intro[2];              /* NULL when none */
	char kinds[FORM_MAX_KINDS][FORM_NAME_MAX]; /* unit kinds it rates */
	size_t n_kinds;
	form_level levels[FORM_MAX_LEVELS];
	size_t n_levels;
	form_question questions[FORM_MAX_QUESTIONS];
	size_t n_questions;
	int overall;                 /* index of the overall question, or -1 */
	bool has_comment;
	int comment_max;             /* code points */
	char *comment_label[2];
	char *complaint_label[2];
	form_field fields[FORM_MAX_FIELDS]; /* questions, then comment, complaint */
	size_t n_fields;
} form;

/* Parse a definition. filename is used only in messages. Returns a form the
 * caller frees with form_free, or NULL with err set to "file:line: why". */
form *form_parse(const char *text, const char *filename, char *err, size_t errsize);
/* Read and parse a file; on success *text (if not NULL) receives the file's
 * text, which the caller frees (rounds store it to freeze the form). */
form *form_load(const char *path, char **text, char *err, size_t errsize);
void form_free(form *f);

/* True when the form rates units of this kind. */
bool form_rates_kind(const form *f, const char *kind);
/* Index of the level with this key, or -1. */
int form_level_index(const form *f, const char *key);

/* A submission that passed validation. */
typedef struct form_ballot {
	int answer[FORM_MAX_QUESTIONS]; /* level index per question */
	char *comment;                  /* NULL when empty; owned */
	bool complaint;
} form_ballot;

enum form_problem {
	FORM_OK = 0,
	FORM_MISSING_ANSWER,     /* a question was not answered */
	FORM_BAD_ANSWER,         /* a value that is not one of the levels */
	FORM_UNKNOWN_FIELD,      /* a field the form does not have */
	FORM_COMMENT_TOO_LONG,
	FORM_BAD_FLAG,           /* complaint with a value other than "1" */
	FORM_COMPLAINT_EMPTY,    /* marked as a complaint without a comment */
};

typedef struct form_error {
	enum form_problem problem;
	int question;            /* question index, or -1 */
	char field[FORM_NAME_MAX]; /* the offending field name (truncated) */
} form_error;

/* Validate fields against f's field table. Returns 0 and fills *out (free
 * with form_ballot_free), or -1 and fills *why with the first problem in
 * table order (unknown fields are reported before missing answers). */
int form_validate(const form *f, const kv_list *fields, form_ballot *out, form_error *why);
void form_ballot_free(form_ballot *b);
/* Append a sentence explaining why in the given language (HTML-escaped, so
 * it can go straight into a page). */
void form_error_html(const form *f, const form_error *why, enum form_lang lang, buf *out);

/* The answers as a JSON object {"question":"level key",...} in question
 * order: what ballots.answers stores. Caller frees. */
char *form_answers_json(const form *f, const form_ballot *b);

/* What form_render needs besides the form. */
typedef struct form_view {
	enum form_lang lang;
	const char *action;        /* URL the form posts to; HTML-escaped on output */
	const kv_list *values;     /* a rejected submission to fill in again, or NULL */
	const form_error *error;   /* the problem to show, or NULL */
	const char *hidden_name;   /* an extra hidden field (e.g. a form token), or NULL */
	const char *hidden_value;
} form_view;

/* Append the <form> element: each question as a fieldset of radio buttons
 * with labels tied to inputs, the comment box and complaint flag, and the
 * submit button. All text is escaped. No script, no inline style. */
void form_render(const form *f, const form_view *v, buf *out);

#endif
