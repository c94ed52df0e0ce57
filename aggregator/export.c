/* export.c - the tables the office sends upward: the 分类定级汇总表 (grades)
 * and the 整改汇总表 (rectification), as an XLSX workbook (libxlsxwriter)
 * or as CSV for Excel.
 *
 * Computing a tally is tally.c; its other writers (JSON, the plain CSV of
 * every figure, the terminal table, HTML) are report.c. Tickets, reviews
 * and rectification records are kept by complaints.c; this file only reads
 * them. The privacy rules are the tally's: a figure it did not mark shown
 * is written as "—" text and never as a number, in every sheet and table.
 *
 * Both formats are built from the same rows of cells (grade_row,
 * rect_rows), so the CSV and the workbook cannot disagree. */
#include "agg.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xlsxwriter.h>

#include "common/db.h"
#include "common/fmt.h"
#include "common/mem.h"
#include "common/str.h"

/* ---- numbers as a person reads them ---- */

/* Shares (rates, the dissatisfied share, participation) are cut, not
 * rounded, to 0.01 % before they are stored, and scores to 0.1 point: the
 * same rule as report.c's percent(). The workbook stores these cut values
 * as numbers under the formats 0.00% and 0.0, so Excel, which rounds for
 * display, shows exactly what the value is. Storing the exact rate would
 * show 0.94996 as "95.00%" beside 是否达标 "否" (and a score of 89.96 as
 * "90.0" beside a grade that needed 90); with the cut value a filter or a
 * formula on the cell agrees with 是否达标 and the grade for any target or
 * threshold of at most two decimals of a percent (one of a point). The
 * exact figures are in `pingyi tally --format json`. The small nudge
 * undoes binary rounding at exact boundaries (0.95 must stay 95.00%). */
static double cut(double x, double scale)
{
	double v = x >= 0 ? floor(x * scale + 1e-9) / scale : -floor(-x * scale + 1e-9) / scale;
	return v == 0 ? 0 : v;   /* no -0: Excel would show "-0.00%" */
}

static double cut_share(double x) { return cut(x, 10000); }
static double cut_score(double x) { return cut(x, 10); }

/* A share for the notes: "95%", "33.33%", or "1/3" when it is a simple
 * fraction that two decimals of a percent would not state exactly. */
static void share_text(char *dst, size_t size, double v)
{
	for (int d = 3; d <= 12; d++) {
		double n = v * d;
		if (fabs(n - floor(n + 0.5)) < 1e-9 && fabs(v * 10000 - floor(v * 10000 + 0.5)) > 1e-6) {
			snprintf(dst, size, "%d/%d", (int)floor(n + 0.5), d);
			return;
		}
	}
	snprintf(dst, size, "%.2f", v * 100);
	char *end = dst + strlen(dst);
	while (end > dst && end[-1] == '0')
		*--end = '\0';
	if (end > dst && end[-1] == '.')
		*--end = '\0';
	str_copy(end, size - (size_t)(end - dst), "%");
}

/* A number for the notes without trailing zeros: 0.3, 90, 82.5. */
static void number_text(char *dst, size_t size, double v)
{
	snprintf(dst, size, "%.4f", v);
	char *end = dst + strlen(dst);
	while (end > dst && end[-1] == '0')
		*--end = '\0';
	if (end > dst && end[-1] == '.')
		*--end = '\0';
}

static void local_time(char *dst, size_t size, int64_t when)
{
	time_t tt = (time_t)when;
	struct tm tm;
	if (!localtime_r(&tt, &tm) || !strftime(dst, size, "%Y-%m-%d %H:%M", &tm))
		str_copy(dst, size, "?");
}

static const char *kind_zh(const char *kind)
{
	static const char *const names[][2] = {
		{ "committee", "党委" }, { "general_branch", "党总支" }, { "branch", "党支部" },
		{ "department", "部门" }, { "window", "服务窗口" },
	};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (str_eq(kind, names[i][0]))
			return names[i][1];
	return kind;
}

static const char *state_zh(const char *state)
{
	return str_eq(state, "draft") ? "草稿" : str_eq(state, "open") ? "进行中" :
		str_eq(state, "closed") ? "已结束" : state;
}

/* ---- cells: what both formats write ---- */

enum cell_kind {
	C_EMPTY,    /* nothing: the column does not apply */
	C_TEXT,     /* text from the database or a literal */
	C_NAME,     /* a unit's name, indented by its depth in the workbook */
	C_HIDDEN,   /* a figure the tally hid: "—", never the number */
	C_INT,      /* a count */
	C_SHARE,    /* a cut share, 0.00% */
	C_SCORE,    /* a cut score, 0.0 */
	C_DELTA,    /* a change of rate, +0.00% */
	C_HOURS,    /* hours, 0.0 */
	C_KINDS
};

typedef struct cell {
	enum cell_kind kind;
	const char *text;   /* C_TEXT, C_NAME; borrowed */
	double v;           /* numbers */
} cell;

static const char DASH[] = "—";

static cell text_cell(const char *s) { return (cell){ C_TEXT, s, 0 }; }
static cell int_cell(int64_t n) { return (cell){ C_INT, NULL, (double)n }; }
static cell empty_cell(void) { return (cell){ C_EMPTY, NULL, 0 }; }
static cell hidden_cell(void) { return (cell){ C_HIDDEN, DASH, 0 }; }

/* The rate, score, dissatisfied share and target of f, or "—" each. */
static void figure_cells(const agg_figures *f, cell *rate, cell *score, cell *dis, cell *met)
{
	if (!f->shown) {
		*rate = hidden_cell();
		if (score)
			*score = hidden_cell();
		if (dis)
			*dis = hidden_cell();
		if (met)
			*met = hidden_cell();
		return;
	}
	*rate = (cell){ C_SHARE, NULL, cut_share(f->rate) };
	if (score)
		*score = (cell){ C_SCORE, NULL, cut_score(f->score) };
	if (dis)
		*dis = (cell){ C_SHARE, NULL, cut_share(f->dissatisfied_share) };
	if (met)
		*met = text_cell(f->met ? "是" : "否");
}

/* ---- the 分类定级汇总表 ---- */

enum {
	G_ID, G_NAME, G_PARENT, G_KIND, G_BALLOTS, G_VALID, G_RATE, G_SCORE, G_DIS, G_MET, G_GRADE,
	G_RANK, G_DELTA, G_LAGGARDS, G_SUB_BALLOTS, G_SUB_VALID, G_SUB_RATE, G_SUB_SCORE, G_SUB_MET,
	G_COLS
};

static const char *const grade_head[G_COLS] = {
	"单位编号", "单位", "上级编号", "类别", "票数", "有效票", "满意率", "得分", "不满意率", "是否达标",
	"等级", "排名", "较上轮变化", "连续后进次数", "含下级票数", "含下级有效票", "含下级满意率",
	"含下级得分", "含下级是否达标",
};

static const double grade_width[G_COLS] = {
	12, 24, 12, 10, 7, 7, 9, 7, 9, 9, 7, 6, 11, 8, 9, 9, 9, 9, 9,
};

/* One unit's row. The own columns are empty for a unit the round does not
 * rate, the 含下级 columns for one without rated units below it. */
static void grade_row(const agg_unit *u, cell *c)
{
	for (int i = 0; i < G_COLS; i++)
		c[i] = empty_cell();
	c[G_ID] = text_cell(u->id);
	c[G_NAME] = (cell){ C_NAME, u->name_zh, 0 };
	c[G_PARENT] = text_cell(u->parent ? u->parent : "");
	c[G_KIND] = text_cell(kind_zh(u->kind));
	if (u->rated) {
		c[G_BALLOTS] = int_cell(u->own.ballots);
		c[G_VALID] = int_cell(u->own.valid);
		figure_cells(&u->own, &c[G_RATE], &c[G_SCORE], &c[G_DIS], &c[G_MET]);
		c[G_GRADE] = text_cell(u->grade ? u->grade : "");
		if (u->rank > 0)
			c[G_RANK] = int_cell(u->rank);
		if (u->has_trend)
			c[G_DELTA] = u->trend_shown ? (cell){ C_DELTA, NULL, cut_share(u->delta) } : hidden_cell();
		if (u->laggards > 0)
			c[G_LAGGARDS] = int_cell(u->laggards);
	}
	if (u->has_subtree) {
		c[G_SUB_BALLOTS] = int_cell(u->subtree.ballots);
		c[G_SUB_VALID] = int_cell(u->subtree.valid);
		figure_cells(&u->subtree, &c[G_SUB_RATE], &c[G_SUB_SCORE], NULL, &c[G_SUB_MET]);
	}
}

/* Below target: a rated unit by its own rate, a unit above rated ones
 * (not rated itself) by its subtree's; only when that rate is shown. */
static bool below_target(const agg_unit *u)
{
	if (u->rated)
		return u->own.shown && !u->own.met;
	return u->has_subtree && u->subtree.shown && !u->subtree.met;
}

/* The rules behind the sheet, one line each, for the note under it. */
static size_t rule_notes(const agg_tally *t, buf *lines, size_t max)
{
	const agg_rules *r = &t->rules;
	char a[32], b[32];
	size_t n = 0;
	share_text(a, sizeof a, r->target);
	buf_fmt(&lines[n++], "目标满意率 %s：本单位满意率不低于 %s 为达标（是否达标“是”）。满意率 = "
		"（满意 + 基本满意）÷ 有效票，“不了解”不计入有效票。", a, a);
	buf_fmt(&lines[n++], "“—”表示有效票少于 %d 票，或可由表中其他数字推算出有效票少于 %d 票的数字，"
		"均不显示，以免从中识别出评议人。", r->k_scores, r->k_scores);
	buf *g = &lines[n++];
	buf_puts(g, "等级（按本单位选票，自上而下取第一个符合的）：");
	for (size_t i = 0; i < r->n_grades; i++) {
		const agg_grade_rule *gr = &r->grades[i];
		share_text(a, sizeof a, gr->min_rate);
		number_text(b, sizeof b, gr->min_score);
		buf_fmt(g, "%s%s", i ? "；" : "", gr->name);
		if (gr->min_rate > 0 && gr->min_score > 0)
			buf_fmt(g, " 满意率≥%s 且得分≥%s", a, b);
		else if (gr->min_rate > 0)
			buf_fmt(g, " 满意率≥%s", a);
		else if (gr->min_score > 0)
			buf_fmt(g, " 得分≥%s", b);
	}
	buf_fmt(g, "%s其余为%s", r->n_grades ? "；" : "", r->fallback);
	if (r->veto < 1) {
		share_text(a, sizeof a, r->veto);
		buf_fmt(g, "；不满意率超过 %s 的一律为%s", a, r->fallback);
	}
	buf_fmt(g, "；有效票少于 %d 票为%s。", r->min_valid, r->ungraded);
	if (r->cap > 0 && r->n_grades > 0) {
		share_text(a, sizeof a, r->cap);
		buf_fmt(&lines[n++], "同类单位中%s不超过已定级单位的 %s（按排名）。", r->grades[0].name, a);
	}
	if (r->n_weights > 0) {
		buf *w = &lines[n++];
		buf_puts(w, "满意率按参评群体加权：");
		for (size_t i = 0; i < r->n_weights; i++) {
			number_text(a, sizeof a, r->weights[i].weight);
			buf_fmt(w, "%s%s %s", i ? "、" : "", r->weights[i].group, a);
		}
		buf_puts(w, "（只计有有效票的群体）；得分为全部有效票的平均分。");
	}
	buf_puts(&lines[n++], r->rollup == AGG_MEAN ? "含下级：取本单位及各下级单位数字的平均。"
		: "含下级：本单位及全部下级单位的选票合并计算。");
	buf_puts(&lines[n++], "满意率、不满意率截取（不四舍五入）到 0.01%，得分截取到 0.1 分；"
		"浅红底色为满意率未达目标的单位（未参评单位按含下级满意率）。");
	if (str_eq(t->state, "open"))
		buf_puts(&lines[n++], "本轮评议尚未结束，表中为导出时的数字。");
	return n < max ? n : max;
}

enum { MAX_NOTES = 10 };

/* ---- the 整改汇总表 ---- */

enum {
	R_ID, R_NAME, R_TICKETS, R_RESOLVED, R_OPEN, R_MEDIAN, R_MAX, R_WAITING, R_RECORDS, R_REVIEWS,
	R_COLS
};

static const char *const rect_head[R_COLS] = {
	"单位编号", "单位", "投诉件数", "已办结", "未办结", "办结用时中位数（小时）", "最长办结用时（小时）",
	"未办结最长等待（小时）", "整改记录", "领导点评",
};

static const double rect_width[R_COLS] = { 12, 24, 8, 7, 7, 11, 11, 11, 60, 50 };

/* Excel reads "_xHHHH_" in a string as the character U+HHHH (the OOXML
 * escape for characters XML cannot hold), and libxlsxwriter 1.1.4 writes
 * text as it is: "_x0041_" typed by someone would show as "A". Such a "_"
 * is written as "_x005F_" (an escaped "_"), so the text reads as typed. */
static bool xl_escape_at(const char *s)
{
	if (s[0] != '_' || s[1] != 'x')
		return false;
	for (int i = 2; i < 6; i++)
		if (!isxdigit((unsigned char)s[i]))
			return false;
	return s[6] == '_';
}

/* s as the workbook stores it; caller frees. */
static char *xl_text(const char *s)
{
	buf b;
	buf_init(&b, (size_t)-1 / 2);
	for (; *s; s++) {
		if (xl_escape_at(s))
			buf_puts(&b, "_x005F");
		buf_putc(&b, *s);
	}
	return buf_take(&b);
}

/* Characters s takes in a cell once escaped. */
static size_t xl_length(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += ((unsigned char)*s & 0xC0) != 0x80 ? (xl_escape_at(s) ? 7 : 1) : 0;
	return n;
}

/* Excel holds at most 32767 characters in a cell; libxlsxwriter refuses
 * more. A longer list of records is cut there, saying so (in the CSV too,
 * which Excel would cut there anyway). */
enum { CELL_MAX_CHARS = 32767 };
static const char CUT_NOTE[] = "……（内容超出单元格长度，全文见台账：pingyi ledger）";

typedef struct note {
	char *unit;         /* NULL: about the round as a whole */
	bool review;        /* review.added; else rectification.recorded */
	int64_t at;
	char *who, *text;
} note;

typedef struct rect_row {
	const char *id, *name;
	int depth;
	const agg_resolve_time *times;   /* NULL: no tickets */
	buf records, reviews;            /* "YYYY-MM-DD HH:MM who：text" lines */
} rect_row;

static void notes_free(note *n, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		free(n[i].unit);
		free(n[i].who);
		free(n[i].text);
	}
	free(n);
}

/* The round's reviews and rectification records, in ledger order. An entry
 * whose body cannot be read is an error: the ledger is the only record. */
static int load_notes(sqlite3 *db, const char *round, note **out, size_t *n, char *err, size_t errsize)
{
	sqlite3_stmt *st = db_prepare(db, "SELECT seq, at, kind, body FROM ledger WHERE round = ? "
		"AND kind IN ('review.added', 'rectification.recorded') ORDER BY seq", "t", round);
	note *v = NULL;
	size_t count = 0;
	int rc = 0, step;
	while (rc == 0 && (step = db_step(st)) == SQLITE_ROW) {
		json_t *body = json_loads(db_col_text(st, 3), 0, NULL);
		json_t *unit = json_object_get(body, "unit");
		const char *who = json_string_value(json_object_get(body, "who"));
		const char *text = json_string_value(json_object_get(body, "text"));
		if (!who || !text || !(json_is_string(unit) || json_is_null(unit))) {
			fmt_into(err, errsize, "ledger entry %lld (%s) cannot be read",
				(long long)sqlite3_column_int64(st, 0), db_col_text(st, 2));
			rc = -1;
		} else {
			v = xrealloc(v, (count + 1) * sizeof *v);
			v[count++] = (note){
				.unit = json_is_string(unit) ? xstrdup(json_string_value(unit)) : NULL,
				.review = str_eq(db_col_text(st, 2), "review.added"),
				.at = sqlite3_column_int64(st, 1),
				.who = xstrdup(who),
				.text = xstrdup(text),
			};
		}
		json_decref(body);
	}
	if (rc == 0 && step != SQLITE_DONE) {
		fmt_into(err, errsize, "cannot read the ledger: %s", sqlite3_errmsg(db));
		rc = -1;
	}
	db_finalize(st);
	if (rc != 0) {
		notes_free(v, count);
		return -1;
	}
	*out = v;
	*n = count;
	return 0;
}

/* Append one record to a cell's lines, keeping the cell within Excel's
 * limit: once it would pass it, the cell ends with CUT_NOTE. */
static void add_line(buf *cellbuf, const note *n)
{
	size_t cut_len = sizeof CUT_NOTE - 1;
	if (cellbuf->len >= cut_len && memcmp(cellbuf->data + cellbuf->len - cut_len, CUT_NOTE, cut_len) == 0)
		return;   /* already cut: later records are in the ledger only */
	char when[32];
	local_time(when, sizeof when, n->at);
	buf line;
	buf_init(&line, 1 << 20);
	buf_fmt(&line, "%s%s %s：%s", cellbuf->len ? "\n" : "", when, n->who, n->text);
	size_t room = CELL_MAX_CHARS - utf8_length(CUT_NOTE);
	size_t have = xl_length(buf_str(cellbuf));
	if (have + xl_length(buf_str(&line)) <= room) {
		buf_append(cellbuf, line.data, line.len);
	} else {
		/* keep whole characters up to the room left, then say it was cut */
		const char *p = buf_str(&line);
		size_t i = 0;
		while (p[i] && have + (xl_escape_at(p + i) ? 7 : 1) <= room) {
			have += xl_escape_at(p + i) ? 7 : 1;
			for (i++; ((unsigned char)p[i] & 0xC0) == 0x80; i++)
				;
		}
		buf_append(cellbuf, p, i);
		buf_puts(cellbuf, CUT_NOTE);
	}
	buf_free(&line);
}

static const agg_resolve_time *times_of(const agg_resolve_time *rt, size_t n, const char *unit)
{
	for (size_t i = 0; i < n; i++)
		if (str_eq(rt[i].unit, unit))
			return &rt[i];
	return NULL;
}

/* Rows of the 整改汇总表: each unit of the tally (in its order) with
 * tickets or records, then the reviews of the round as a whole. Units with
 * tickets that the tally does not list (none, normally) come last. */
static rect_row *rect_rows(const agg_tally *t, const agg_resolve_time *rt, size_t n_rt,
	const note *notes, size_t n_notes, size_t *n_rows)
{
	rect_row *rows = xcalloc(t->n_units + n_rt + 1, sizeof *rows);
	size_t n = 0;
	for (size_t i = 0; i < t->n_units + n_rt + 1; i++) {
		const char *id, *name;
		int depth = 0;
		const agg_resolve_time *times;
		if (i < t->n_units) {
			id = t->units[i].id;
			name = t->units[i].name_zh;
			depth = t->units[i].depth;
			times = times_of(rt, n_rt, id);
		} else if (i < t->n_units + n_rt) {
			bool listed = false;
			for (size_t k = 0; k < t->n_units && !listed; k++)
				listed = str_eq(t->units[k].id, rt[i - t->n_units].unit);
			if (listed)
				continue;
			times = &rt[i - t->n_units];
			id = name = times->unit;
		} else {
			id = "";
			name = "（本轮总体）";
			times = NULL;
		}
		rect_row *r = &rows[n];
		*r = (rect_row){ .id = id, .name = name, .depth = depth, .times = times };
		buf_init(&r->records, 1 << 20);
		buf_init(&r->reviews, 1 << 20);
		for (size_t k = 0; k < n_notes; k++) {
			bool mine = i < t->n_units + n_rt ? notes[k].unit && str_eq(notes[k].unit, id) : !notes[k].unit;
			if (mine)
				add_line(notes[k].review ? &r->reviews : &r->records, &notes[k]);
		}
		if (times || r->records.len || r->reviews.len)
			n++;
		else {
			buf_free(&r->records);
			buf_free(&r->reviews);
		}
	}
	*n_rows = n;
	return rows;
}

static void rect_rows_free(rect_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		buf_free(&rows[i].records);
		buf_free(&rows[i].reviews);
	}
	free(rows);
}

static void rect_cells(const rect_row *r, cell *c)
{
	for (int i = 0; i < R_COLS; i++)
		c[i] = empty_cell();
	c[R_ID] = text_cell(r->id);
	c[R_NAME] = (cell){ C_NAME, r->name, 0 };
	const agg_resolve_time *x = r->times;
	if (x) {
		c[R_TICKETS] = int_cell(x->tickets);
		c[R_RESOLVED] = int_cell(x->resolved);
		c[R_OPEN] = int_cell(x->tickets - x->resolved);
		if (x->resolved > 0) {
			c[R_MEDIAN] = (cell){ C_HOURS, NULL, x->median_hours };
			c[R_MAX] = (cell){ C_HOURS, NULL, x->max_hours };
		}
		if (x->tickets > x->resolved)
			c[R_WAITING] = (cell){ C_HOURS, NULL, x->oldest_open_hours };
	}
	c[R_RECORDS] = text_cell(buf_str(&r->records));
	c[R_REVIEWS] = text_cell(buf_str(&r->reviews));
}

/* Everything the 整改汇总表 needs, loaded at once. */
typedef struct rect_data {
	agg_resolve_time *rt;
	size_t n_rt;
	note *notes;
	size_t n_notes;
	rect_row *rows;
	size_t n_rows;
} rect_data;

static int rect_load(sqlite3 *db, const agg_tally *t, rect_data *d, char *err, size_t errsize)
{
	*d = (rect_data){ 0 };
	if (agg_resolve_times(db, t->round, (int64_t)time(NULL), &d->rt, &d->n_rt, err, errsize) != 0)
		return -1;
	if (load_notes(db, t->round, &d->notes, &d->n_notes, err, errsize) != 0) {
		agg_resolve_times_free(d->rt, d->n_rt);
		return -1;
	}
	d->rows = rect_rows(t, d->rt, d->n_rt, d->notes, d->n_notes, &d->n_rows);
	return 0;
}

static void rect_free(rect_data *d)
{
	rect_rows_free(d->rows, d->n_rows);
	notes_free(d->notes, d->n_notes);
	agg_resolve_times_free(d->rt, d->n_rt);
}

/* ---- CSV ---- */

static void csv_cell(buf *out, const cell *c)
{
	switch (c->kind) {
	case C_EMPTY: break;
	case C_TEXT:
	case C_NAME: buf_fmt(out, "%C", c->text); break;
	case C_HIDDEN: buf_puts(out, DASH); break;
	case C_INT: buf_fmt(out, "%lld", (long long)c->v); break;
	case C_SHARE: buf_fmt(out, "%.2f%%", c->v * 100); break;
	case C_SCORE:
	case C_HOURS: buf_fmt(out, "%.1f", c->v); break;
	case C_DELTA: buf_fmt(out, "%s%.2f%%", c->v < 0 ? "-" : c->v > 0 ? "+" : "", fabs(c->v) * 100); break;
	case C_KINDS: break;
	}
}

static void csv_row(buf *out, const cell *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (i)
			buf_putc(out, ',');
		csv_cell(out, &c[i]);
	}
	buf_puts(out, "\r\n");
}

static void csv_head(buf *out, const char *const *head, size_t n)
{
	for (size_t i = 0; i < n; i++)
		buf_fmt(out, "%s%C", i ? "," : "", head[i]);
	buf_puts(out, "\r\n");
}

int agg_export_csv(sqlite3 *db, const agg_tally *t, const char *which, buf *out, char *err, size_t errsize)
{
	if (!str_eq(which, "grades") && !str_eq(which, "rectification")) {
		fmt_into(err, errsize, "unknown table \"%s\" (use grades or rectification)", which);
		return -1;
	}
	buf_puts(out, "\xEF\xBB\xBF");
	if (str_eq(which, "grades")) {
		cell c[G_COLS];
		csv_head(out, grade_head, G_COLS);
		for (size_t i = 0; i < t->n_units; i++) {
			grade_row(&t->units[i], c);
			csv_row(out, c, G_COLS);
		}
	} else {
		rect_data d;
		if (rect_load(db, t, &d, err, errsize) != 0)
			return -1;
		cell c[R_COLS];
		csv_head(out, rect_head, R_COLS);
		for (size_t i = 0; i < d.n_rows; i++) {
			rect_cells(&d.rows[i], c);
			csv_row(out, c, R_COLS);
		}
		rect_free(&d);
	}
	if (out->overflow) {
		fmt_into(err, errsize, "the table is larger than the output buffer allows");
		return -1;
	}
	return 0;
}

/* ---- XLSX ---- */

enum { MAX_INDENT = 15 };    /* Excel's deepest indent */

static const lxw_color_t LIGHT_RED = 0xFFC7CE;   /* Excel's "light red fill" */
static const lxw_color_t HEAD_FILL = 0xDDEBF7;

typedef struct xl {
	lxw_workbook *wb;
	lxw_error first;                         /* the first failed write, or LXW_NO_ERROR */
	lxw_format *cells[C_KINDS][2];           /* [kind][below target] */
	lxw_format *names[MAX_INDENT + 1][2];    /* unit names by depth */
	lxw_format *title, *info, *head, *note, *wrap;
} xl;

static void check(xl *x, lxw_error e)
{
	if (e != LXW_NO_ERROR && x->first == LXW_NO_ERROR)
		x->first = e;
}

static lxw_format *new_format(xl *x, bool fill)
{
	lxw_format *f = workbook_add_format(x->wb);
	format_set_border(f, LXW_BORDER_THIN);
	format_set_border_color(f, 0xBFBFBF);
	format_set_align(f, LXW_ALIGN_VERTICAL_CENTER);
	if (fill) {
		format_set_pattern(f, LXW_PATTERN_SOLID);
		format_set_bg_color(f, LIGHT_RED);
	}
	return f;
}

/* The format of a cell of this kind, made on first use. */
static lxw_format *cell_format(xl *x, const cell *c, int depth, bool fill)
{
	if (c->kind == C_NAME) {
		int d = depth < 0 ? 0 : depth > MAX_INDENT ? MAX_INDENT : depth;
		if (!x->names[d][fill]) {
			x->names[d][fill] = new_format(x, fill);
			if (d)
				format_set_indent(x->names[d][fill], (uint8_t)d);
		}
		return x->names[d][fill];
	}
	lxw_format **f = &x->cells[c->kind][fill];
	if (!*f) {
		*f = new_format(x, fill);
		switch (c->kind) {
		case C_INT: format_set_num_format(*f, "0"); break;
		case C_SHARE: format_set_num_format(*f, "0.00%"); break;
		case C_SCORE:
		case C_HOURS: format_set_num_format(*f, "0.0"); break;
		case C_DELTA: format_set_num_format(*f, "+0.00%;-0.00%;0.00%"); break;
		case C_HIDDEN: format_set_align(*f, LXW_ALIGN_CENTER); break;
		case C_TEXT: format_set_text_wrap(*f); break;
		default: break;
		}
	}
	return *f;
}

/* Strings given to libxlsxwriter are plain text: it escapes them for the
 * sheet's XML itself (and xl_text for Excel's own _xHHHH_), so they are
 * composed with %s, not an escaping conversion of fmt.h. */

static void xl_string(xl *x, lxw_worksheet *ws, lxw_row_t row, lxw_col_t col, const char *s, lxw_format *f)
{
	char *text = xl_text(s);
	check(x, worksheet_write_string(ws, row, col, text, f));
	free(text);
}

static void xl_merge(xl *x, lxw_worksheet *ws, lxw_row_t r1, lxw_col_t c1, lxw_row_t r2, lxw_col_t c2,
	const char *s, lxw_format *f)
{
	char *text = xl_text(s);
	check(x, worksheet_merge_range(ws, r1, c1, r2, c2, text, f));
	free(text);
}

/* Write c at (row, col). Text is always a string cell, never a formula,
 * whatever it starts with; hidden figures are the text "—". */
static void xl_cell(xl *x, lxw_worksheet *ws, lxw_row_t row, lxw_col_t col, const cell *c, int depth,
	bool fill)
{
	lxw_format *f = cell_format(x, c, depth, fill);
	switch (c->kind) {
	case C_EMPTY: check(x, worksheet_write_blank(ws, row, col, f)); break;
	case C_TEXT:
	case C_NAME:
	case C_HIDDEN:
		if (c->text && *c->text)
			xl_string(x, ws, row, col, c->text, f);
		else
			check(x, worksheet_write_blank(ws, row, col, f));
		break;
	default: check(x, worksheet_write_number(ws, row, col, c->v, f)); break;
	}
}

/* The title, an information line and the header of a sheet; returns the
 * first row of data. The header row (and the columns before first_col)
 * stay in view when scrolling, and print on every page. */
static lxw_row_t xl_top(xl *x, lxw_worksheet *ws, const agg_tally *t, const char *title,
	const char *const *head, const double *width, size_t cols, lxw_col_t frozen_cols)
{
	char now[32];
	local_time(now, sizeof now, (int64_t)time(NULL));
	char *tt = fmt_alloc("%s　%s", t->title_zh, title);
	xl_merge(x, ws, 0, 0, 0, (lxw_col_t)(cols - 1), tt, x->title);
	free(tt);
	char *info = fmt_alloc("轮次：%s　状态：%s　导出时间：%s", t->round, state_zh(t->state), now);
	xl_merge(x, ws, 1, 0, 1, (lxw_col_t)(cols - 1), info, x->info);
	free(info);
	check(x, worksheet_set_row(ws, 0, 24, NULL));
	for (size_t i = 0; i < cols; i++) {
		xl_string(x, ws, 2, (lxw_col_t)i, head[i], x->head);
		check(x, worksheet_set_column(ws, (lxw_col_t)i, (lxw_col_t)i, width[i], NULL));
	}
	check(x, worksheet_set_row(ws, 2, 32, NULL));
	worksheet_freeze_panes(ws, 3, frozen_cols);
	check(x, worksheet_repeat_rows(ws, 0, 2));
	worksheet_set_landscape(ws);
	worksheet_set_paper(ws, 9);     /* A4 */
	worksheet_fit_to_pages(ws, 1, 0);
	return 3;
}

/* Widen the name column to the longest indented name (CJK counts two). */
static void xl_name_width(xl *x, lxw_worksheet *ws, lxw_col_t col, const agg_tally *t, double min)
{
	double w = min;
	for (size_t i = 0; i < t->n_units; i++) {
		double need = (double)utf8_width(t->units[i].name_zh) + 2.0 * t->units[i].depth + 2;
		if (need > w)
			w = need;
	}
	check(x, worksheet_set_column(ws, col, col, w > 60 ? 60 : w, NULL));
}

static void xl_grades(xl *x, const agg_tally *t)
{
	lxw_worksheet *ws = workbook_add_worksheet(x->wb, "分类定级汇总表");
	lxw_row_t row = xl_top(x, ws, t, "分类定级汇总表", grade_head, grade_width, G_COLS, 2);
	xl_name_width(x, ws, G_NAME, t, grade_width[G_NAME]);
	cell c[G_COLS];
	for (size_t i = 0; i < t->n_units; i++, row++) {
		const agg_unit *u = &t->units[i];
		grade_row(u, c);
		bool fill = below_target(u);
		for (int k = 0; k < G_COLS; k++)
			xl_cell(x, ws, row, (lxw_col_t)k, &c[k], u->depth, fill);
	}
	if (t->n_units)
		check(x, worksheet_autofilter(ws, 2, 0, row - 1, G_COLS - 1));
	buf lines[MAX_NOTES];
	for (size_t i = 0; i < MAX_NOTES; i++)
		buf_init(&lines[i], 1 << 16);
	size_t n = rule_notes(t, lines, MAX_NOTES);
	double across = 0;   /* the merged note's width, in characters */
	for (int k = 0; k < G_COLS; k++)
		across += grade_width[k];
	row++;
	xl_merge(x, ws, row, 0, row, G_COLS - 1, "说明：", x->note);
	for (size_t i = 0; i < n; i++) {
		char *s = fmt_alloc("%zu. %s", i + 1, buf_str(&lines[i]));
		row++;
		xl_merge(x, ws, row, 0, row, G_COLS - 1, s, x->note);
		check(x, worksheet_set_row(ws, row, 15 * ceil((double)utf8_width(s) / across) + 2, NULL));
		free(s);
	}
	for (size_t i = 0; i < MAX_NOTES; i++)
		buf_free(&lines[i]);
}

static void xl_rectification(xl *x, const agg_tally *t, const rect_data *d)
{
	lxw_worksheet *ws = workbook_add_worksheet(x->wb, "整改汇总表");
	lxw_row_t row = xl_top(x, ws, t, "整改汇总表", rect_head, rect_width, R_COLS, 2);
	xl_name_width(x, ws, R_NAME, t, rect_width[R_NAME]);
	cell c[R_COLS];
	for (size_t i = 0; i < d->n_rows; i++, row++) {
		rect_cells(&d->rows[i], c);
		for (int k = 0; k < R_COLS; k++)
			xl_cell(x, ws, row, (lxw_col_t)k, &c[k], d->rows[i].depth, false);
	}
	if (d->n_rows == 0)
		xl_merge(x, ws, row, 0, row, R_COLS - 1,
			"本轮没有投诉、整改记录或领导点评。", x->note);
	else
		xl_merge(x, ws, row + 1, 0, row + 1, R_COLS - 1,
			"说明：投诉件数等按投诉工单统计（pingyi complaints）；用时从工单生成到办结，单位为小时；"
			"整改记录和领导点评取自台账（pingyi rectify add / review add），按记录时间排列。", x->note);
}

/* 明细: per rated unit, each question's and each voter group's figures.
 * Two header rows: the question or group, then its figures. */
static void xl_details(xl *x, const agg_tally *t)
{
	lxw_worksheet *ws = workbook_add_worksheet(x->wb, "明细");
	const form *fm = t->form;
	size_t cols = 2 + 3 * fm->n_questions + 2 * t->n_groups;
	char now[32];
	local_time(now, sizeof now, (int64_t)time(NULL));
	char *tt = fmt_alloc("%s　明细（各测评项目、各参评群体）", t->title_zh);
	xl_merge(x, ws, 0, 0, 0, (lxw_col_t)(cols - 1), tt, x->title);
	free(tt);
	char *info = fmt_alloc("轮次：%s　状态：%s　导出时间：%s　“—”：有效票少于 %d 票或可由其他数字推算出，不显示",
		t->round, state_zh(t->state), now, t->rules.k_scores);
	xl_merge(x, ws, 1, 0, 1, (lxw_col_t)(cols - 1), info, x->info);
	free(info);
	check(x, worksheet_set_row(ws, 0, 24, NULL));
	xl_merge(x, ws, 2, 0, 3, 0, "单位编号", x->head);
	xl_merge(x, ws, 2, 1, 3, 1, "单位", x->head);
	check(x, worksheet_set_column(ws, 0, 0, 12, NULL));
	xl_name_width(x, ws, 1, t, 24);
	lxw_col_t col = 2;
	for (size_t q = 0; q < fm->n_questions; q++, col += 3) {
		const char *label = fm->questions[q].label[FORM_ZH] ? fm->questions[q].label[FORM_ZH]
			: fm->questions[q].name;
		xl_merge(x, ws, 2, col, 2, col + 2, label, x->head);
		xl_string(x, ws, 3, col, "有效票", x->head);
		xl_string(x, ws, 3, col + 1, "满意率", x->head);
		xl_string(x, ws, 3, col + 2, "得分", x->head);
		check(x, worksheet_set_column(ws, col, col + 2, 8, NULL));
	}
	for (size_t g = 0; g < t->n_groups; g++, col += 2) {
		char w[32];
		double weight = agg_rules_weight(&t->rules, t->groups[g]);
		number_text(w, sizeof w, weight);
		char *label = t->rules.n_weights ? fmt_alloc("参评群体：%s（权重 %s）", t->groups[g], w)
			: fmt_alloc("参评群体：%s", t->groups[g]);
		xl_merge(x, ws, 2, col, 2, col + 1, label, x->head);
		free(label);
		xl_string(x, ws, 3, col, "有效票", x->head);
		xl_string(x, ws, 3, col + 1, "满意率", x->head);
		check(x, worksheet_set_column(ws, col, col + 1, 9, NULL));
	}
	check(x, worksheet_set_row(ws, 2, 32, NULL));
	worksheet_freeze_panes(ws, 4, 2);
	check(x, worksheet_repeat_rows(ws, 0, 3));
	worksheet_set_landscape(ws);
	worksheet_set_paper(ws, 9);
	worksheet_fit_to_pages(ws, 1, 0);
	lxw_row_t row = 4;
	for (size_t i = 0; i < t->n_units; i++) {
		const agg_unit *u = &t->units[i];
		if (!u->rated)
			continue;
		cell id = text_cell(u->id), name = { C_NAME, u->name_zh, 0 };
		xl_cell(x, ws, row, 0, &id, 0, false);
		xl_cell(x, ws, row, 1, &name, u->depth, false);
		col = 2;
		for (size_t q = 0; q < fm->n_questions; q++, col += 3) {
			cell c[3] = { int_cell(u->questions[q].valid) };
			figure_cells(&u->questions[q], &c[1], &c[2], NULL, NULL);
			for (int k = 0; k < 3; k++)
				xl_cell(x, ws, row, col + (lxw_col_t)k, &c[k], 0, false);
		}
		for (size_t g = 0; g < t->n_groups; g++, col += 2) {
			cell c[2] = { int_cell(u->groups[g].valid) };
			figure_cells(&u->groups[g], &c[1], NULL, NULL, NULL);
			for (int k = 0; k < 2; k++)
				xl_cell(x, ws, row, col + (lxw_col_t)k, &c[k], 0, false);
		}
		row++;
	}
}

/* 参评率 of a code round: codes issued and used per voter group. */
static void xl_turnout(xl *x, const agg_tally *t)
{
	static const char *const head[] = { "参评群体", "发放测评码", "已使用", "参评率" };
	static const double width[] = { 16, 11, 9, 9 };
	lxw_worksheet *ws = workbook_add_worksheet(x->wb, "参评率");
	lxw_row_t row = xl_top(x, ws, t, "参评率", head, width, 4, 1);
	int64_t issued = 0, used = 0;
	for (size_t i = 0; i <= t->n_turnout; i++, row++) {
		bool total = i == t->n_turnout;
		const agg_turnout *g = total ? NULL : &t->turnout[i];
		int64_t is = total ? issued : g->issued, us = total ? used : g->used;
		cell c[4] = { text_cell(total ? "合计" : g->group), int_cell(is), int_cell(us),
			is ? (cell){ C_SHARE, NULL, cut_share((double)us / (double)is) } : empty_cell() };
		for (int k = 0; k < 4; k++)
			xl_cell(x, ws, row, (lxw_col_t)k, &c[k], 0, false);
		issued += total ? 0 : g->issued;
		used += total ? 0 : g->used;
	}
	xl_merge(x, ws, row + 1, 0, row + 1, 3,
		"参评率 = 已使用（至少评价了一个单位）的测评码 ÷ 发放的测评码，截取到 0.01%。", x->note);
}

int agg_export_xlsx(sqlite3 *db, const agg_tally *t, const char *path, char *err, size_t errsize)
{
	rect_data d;
	if (rect_load(db, t, &d, err, errsize) != 0)
		return -1;
	xl x = { .first = LXW_NO_ERROR };
	x.wb = workbook_new(path);
	if (!x.wb) {
		fmt_into(err, errsize, "cannot start the workbook (out of memory?)");
		rect_free(&d);
		return -1;
	}
	x.title = workbook_add_format(x.wb);
	format_set_bold(x.title);
	format_set_font_size(x.title, 14);
	format_set_align(x.title, LXW_ALIGN_CENTER);
	format_set_align(x.title, LXW_ALIGN_VERTICAL_CENTER);
	x.info = workbook_add_format(x.wb);
	format_set_font_color(x.info, 0x595959);
	x.head = workbook_add_format(x.wb);
	format_set_bold(x.head);
	format_set_text_wrap(x.head);
	format_set_align(x.head, LXW_ALIGN_CENTER);
	format_set_align(x.head, LXW_ALIGN_VERTICAL_CENTER);
	format_set_border(x.head, LXW_BORDER_THIN);
	format_set_pattern(x.head, LXW_PATTERN_SOLID);
	format_set_bg_color(x.head, HEAD_FILL);
	x.note = workbook_add_format(x.wb);
	format_set_text_wrap(x.note);
	format_set_align(x.note, LXW_ALIGN_VERTICAL_TOP);
	lxw_doc_properties props = { .title = t->title_zh, .subject = "分类定级汇总表 整改汇总表",
		.comments = t->round };
	check(&x, workbook_set_properties(x.wb, &props));

	xl_grades(&x, t);
	xl_rectification(&x, t, &d);
	xl_details(&x, t);
	if (t->code_round)
		xl_turnout(&x, t);
	rect_free(&d);

	errno = 0;
	lxw_error closed = workbook_close(x.wb);   /* writes the file, frees the workbook */
	int saved = errno;
	if (x.first != LXW_NO_ERROR) {
		fmt_into(err, errsize, "cannot write the workbook: %s", lxw_strerror(x.first));
		return -1;
	}
	if (closed != LXW_NO_ERROR) {
		if (saved)
			fmt_into(err, errsize, "cannot write the workbook: %s (%s)", lxw_strerror(closed), strerror(saved));
		else
			fmt_into(err, errsize, "cannot write the workbook: %s", lxw_strerror(closed));
		return -1;
	}
	return 0;
}
