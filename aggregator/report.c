/* report.c - writing a tally out: JSON, CSV, a terminal table, HTML.
 *
 * Every writer goes through the same rule: a figure computed from fewer
 * than k valid answers is never written (null in JSON, "—" elsewhere).
 * Computing the tally is tally.c; the XLSX exports will live beside these. */
#include "agg.h"

#include <math.h>
#include <string.h>

#include "common/fmt.h"
#include "common/str.h"

/* A rate as a person reads it: a percentage cut (not rounded) to two
 * decimals, so 94.996% shows as 94.99% beside "target not met" rather than
 * 95.00%. Rates are fractions with denominators far below 10^9, so the
 * small nudge only undoes binary rounding at exact boundaries. */
static double percent(double rate)
{
	return floor(rate * 10000 + 1e-9) / 100;
}

/* ---- JSON ---- */

static void json_figures(buf *out, const agg_figures *f)
{
	buf_fmt(out, "{\"ballots\":%lld,\"valid\":%lld,", (long long)f->ballots, (long long)f->valid);
	if (f->shown)
		buf_fmt(out, "\"rate\":%.4f,\"score\":%.2f,\"dissatisfied\":%.4f,\"met\":%s}",
			f->rate, f->score, f->dissatisfied_share, f->met ? "true" : "false");
	else
		buf_puts(out, "\"rate\":null,\"score\":null,\"dissatisfied\":null,\"met\":null}");
}

static double turnout_rate(const agg_turnout *g)
{
	return g->issued ? (double)g->used / (double)g->issued : 0;
}

void agg_tally_json(const agg_tally *t, buf *out)
{
	buf_fmt(out, "{\"round\":%J,\"series\":%J,\"title_zh\":%J,\"title_en\":%J,\"state\":%J,"
		"\"target\":%.4f,\"k\":%d,", t->round, t->series, t->title_zh, t->title_en,
		t->state, t->rules.target, t->rules.k_scores);
	buf_puts(out, "\"groups\":[");
	for (size_t g = 0; g < t->n_groups; g++)
		buf_fmt(out, "%s%J", g ? "," : "", t->groups[g]);
	buf_puts(out, "],\"previous\":");
	buf_fmt(out, t->previous ? "%J," : "null,", t->previous);
	if (t->code_round) {
		buf_puts(out, "\"participation\":[");
		for (size_t i = 0; i < t->n_turnout; i++)
			buf_fmt(out, "%s{\"group\":%J,\"issued\":%lld,\"used\":%lld,\"rate\":%.4f}", i ? "," : "",
				t->turnout[i].group, (long long)t->turnout[i].issued, (long long)t->turnout[i].used,
				turnout_rate(&t->turnout[i]));
		buf_puts(out, "],");
	}
	buf_puts(out, "\"units\":[");
	for (size_t i = 0; i < t->n_units; i++) {
		const agg_unit *u = &t->units[i];
		buf_fmt(out, "%s{\"id\":%J,\"parent\":", i ? "," : "", u->id);
		buf_fmt(out, u->parent ? "%J" : "null", u->parent);
		buf_fmt(out, ",\"kind\":%J,\"name_zh\":%J,\"name_en\":%J,\"depth\":%d,\"rated\":%s,\"own\":",
			u->kind, u->name_zh, u->name_en, u->depth, u->rated ? "true" : "false");
		if (u->rated)
			json_figures(out, &u->own);
		else
			buf_puts(out, "null");
		buf_fmt(out, ",\"grade\":");
		buf_fmt(out, u->grade ? "%J" : "null", u->grade);
		buf_fmt(out, ",\"rank\":");
		buf_fmt(out, u->rank ? "%d" : "null", u->rank);
		buf_puts(out, ",\"trend\":");
		if (!u->has_trend)
			buf_puts(out, "null");
		else if (u->trend_shown)
			buf_fmt(out, "{\"delta\":%.4f,\"laggards\":%d}", u->delta, u->laggards);
		else
			buf_fmt(out, "{\"delta\":null,\"laggards\":%d}", u->laggards);
		buf_puts(out, ",\"groups\":");
		if (u->rated) {
			buf_putc(out, '{');
			for (size_t g = 0; g < t->n_groups; g++) {
				buf_fmt(out, "%s%J:", g ? "," : "", t->groups[g]);
				json_figures(out, &u->groups[g]);
			}
			buf_putc(out, '}');
		} else {
			buf_puts(out, "null");
		}
		buf_puts(out, ",\"subtree\":");
		if (u->has_subtree)
			json_figures(out, &u->subtree);
		else
			buf_puts(out, "null");
		buf_puts(out, ",\"questions\":");
		if (u->rated) {
			buf_putc(out, '{');
			for (size_t q = 0; q < t->form->n_questions; q++) {
				buf_fmt(out, "%s%J:", q ? "," : "", t->form->questions[q].name);
				json_figures(out, &u->questions[q]);
			}
			buf_putc(out, '}');
		} else {
			buf_puts(out, "null");
		}
		buf_putc(out, '}');
	}
	buf_puts(out, "]}\n");
}

/* ---- CSV (for Excel: BOM, CRLF) ---- */

static void csv_figures(buf *out, const agg_figures *f, bool present)
{
	if (!present) {
		buf_puts(out, ",,,,");
		return;
	}
	buf_fmt(out, ",%lld,%lld", (long long)f->ballots, (long long)f->valid);
	if (f->shown)
		buf_fmt(out, ",%.2f%%,%.2f", percent(f->rate), f->score);
	else
		buf_puts(out, ",,");
}

void agg_tally_csv(const agg_tally *t, buf *out)
{
	buf_puts(out, "\xEF\xBB\xBF" "单位编号,单位名称,上级编号,类别,票数,有效票,满意率,得分,是否达标,等级,"
		"含下级票数,含下级有效票,含下级满意率,含下级得分,含下级是否达标\r\n");
	for (size_t i = 0; i < t->n_units; i++) {
		const agg_unit *u = &t->units[i];
		buf_fmt(out, "%C,%C,%C,%C", u->id, u->name_zh, u->parent ? u->parent : "", u->kind);
		csv_figures(out, &u->own, u->rated);
		buf_fmt(out, ",%s,%C", u->rated && u->own.shown ? (u->own.met ? "是" : "否") : "",
			u->grade ? u->grade : "");
		csv_figures(out, &u->subtree, u->has_subtree);
		buf_fmt(out, ",%s\r\n", u->has_subtree && u->subtree.shown ? (u->subtree.met ? "是" : "否") : "");
	}
}

/* ---- a terminal table ---- */

static void pad(buf *out, const char *s, size_t width, bool right)
{
	size_t w = utf8_width(s);
	for (size_t i = w; right && i < width; i++)
		buf_putc(out, ' ');
	buf_puts(out, s);
	for (size_t i = w; !right && i < width; i++)
		buf_putc(out, ' ');
}

static void text_figures(buf *out, const agg_figures *f, bool present)
{
	char n[32], v[32], rate[32], score[32];
	fmt_into(n, sizeof n, "%lld", (long long)f->ballots);
	fmt_into(v, sizeof v, "%lld", (long long)f->valid);
	fmt_into(rate, sizeof rate, "%.2f%%", percent(f->rate));
	fmt_into(score, sizeof score, "%.1f", f->score);
	bool show = present && f->shown;
	pad(out, present ? n : "", 7, true);
	pad(out, present ? v : "", 7, true);
	pad(out, show ? rate : "—", 9, true);
	pad(out, show ? score : "—", 7, true);
	pad(out, show ? (f->met ? "yes" : "no") : "", 5, true);
}

void agg_tally_text(const agg_tally *t, buf *out)
{
	size_t width = 24;
	for (size_t i = 0; i < t->n_units; i++) {
		size_t w = utf8_width(t->units[i].name_zh) + 2 * (size_t)t->units[i].depth;
		if (w > width)
			width = w;
	}
	buf_fmt(out, "%s  [%s, %s]  target %.1f%%, figures shown from %d valid ballots\n\n",
		t->title_zh, t->round, t->state, t->rules.target * 100, t->rules.k_scores);
	pad(out, "unit", width, false);
	buf_puts(out, "  ballots  valid     rate  score  met  grade  |  subtree: ballots  valid     rate  score  met\n");
	for (size_t i = 0; i < t->n_units; i++) {
		const agg_unit *u = &t->units[i];
		for (int d = 0; d < u->depth; d++)
			buf_puts(out, "  ");
		pad(out, u->name_zh, width - 2 * (size_t)u->depth, false);
		buf_puts(out, "  ");
		text_figures(out, &u->own, u->rated);
		buf_puts(out, "  ");
		pad(out, u->grade ? u->grade : "", 5, false);
		if (u->has_subtree) {
			buf_puts(out, "  |          ");
			text_figures(out, &u->subtree, true);
		}
		buf_putc(out, '\n');
	}
	if (t->code_round) {
		buf_puts(out, "\nparticipation (参评率) by voter group:\n");
		for (size_t i = 0; i < t->n_turnout; i++) {
			pad(out, t->turnout[i].group, 12, false);
			buf_fmt(out, "  %lld of %lld codes used  %.1f%%\n", (long long)t->turnout[i].used,
				(long long)t->turnout[i].issued, turnout_rate(&t->turnout[i]) * 100);
		}
	}
}

/* ---- HTML, for the aggregator's pages ---- */

static void html_figures(buf *out, const agg_figures *f, bool present)
{
	if (!present) {
		buf_puts(out, "<td></td><td></td><td></td><td></td>");
		return;
	}
	buf_fmt(out, "<td>%lld</td><td>%lld</td>", (long long)f->ballots, (long long)f->valid);
	if (f->shown)
		buf_fmt(out, "<td class=\"%s\">%.2f%%</td><td>%.1f</td>", f->met ? "met" : "below",
			percent(f->rate), f->score);
	else
		buf_puts(out, "<td class=\"hidden\">—</td><td class=\"hidden\">—</td>");
}

void agg_tally_html(const agg_tally *t, enum form_lang lang, buf *out)
{
	bool en = lang == FORM_EN;
	buf_fmt(out, "<section class=\"round\"><h2>%h</h2><p class=\"meta\">%h · %s %.1f%% · %s %d</p>",
		en ? t->title_en : t->title_zh, t->round, en ? "target" : "目标满意率",
		t->rules.target * 100, en ? "figures shown from valid ballots:" : "有效票不少于此数才显示：",
		t->rules.k_scores);
	buf_fmt(out, "<table><thead><tr><th>%s</th><th>%s</th><th>%s</th><th>%s</th><th>%s</th>"
		"<th>%s</th><th>%s</th><th>%s</th><th>%s</th><th>%s</th></tr></thead><tbody>",
		en ? "Unit" : "单位", en ? "Ballots" : "票数", en ? "Valid" : "有效票",
		en ? "Satisfied" : "满意率", en ? "Score" : "得分", en ? "Grade" : "等级",
		en ? "Subtree ballots" : "含下级票数", en ? "valid" : "有效票",
		en ? "satisfied" : "满意率", en ? "score" : "得分");
	for (size_t i = 0; i < t->n_units; i++) {
		const agg_unit *u = &t->units[i];
		buf_fmt(out, "<tr class=\"depth%d\"><th scope=\"row\">%h</th>", u->depth < 4 ? u->depth : 4,
			en ? u->name_en : u->name_zh);
		html_figures(out, &u->own, u->rated);
		buf_fmt(out, "<td>%h</td>", u->grade ? u->grade : "");
		html_figures(out, &u->subtree, u->has_subtree);
		buf_puts(out, "</tr>");
	}
	buf_puts(out, "</tbody></table>");
	if (t->code_round && t->n_turnout) {
		buf_fmt(out, "<table class=\"turnout\"><thead><tr><th>%s</th><th>%s</th><th>%s</th><th>%s</th></tr></thead><tbody>",
			en ? "Voter group" : "参评群体", en ? "Codes issued" : "发放测评码", en ? "Used" : "已使用",
			en ? "Participation" : "参评率");
		for (size_t i = 0; i < t->n_turnout; i++)
			buf_fmt(out, "<tr><th scope=\"row\">%h</th><td>%lld</td><td>%lld</td><td>%.1f%%</td></tr>",
				t->turnout[i].group, (long long)t->turnout[i].issued, (long long)t->turnout[i].used,
				turnout_rate(&t->turnout[i]) * 100);
		buf_puts(out, "</tbody></table>");
	}
	buf_puts(out, "</section>");
}
