/* pages.c - the HTML around the form, and the collector's message pages.
 *
 * Pages are small (no JavaScript, one stylesheet, no external assets) and
 * readable on a 320 px screen in WeChat's browser. Text from outside goes
 * through %h; the stylesheet is static/form.css. */
#include "col.h"

#include "common/fmt.h"
#include "common/http.h"

void col_page_open(buf *out, enum form_lang lang, const char *title, const char *heading,
	const char *subheading, const char *lang_switch_url)
{
	bool en = lang == FORM_EN;
	buf_fmt(out, "<!doctype html>\n<html lang=\"%s\"><head><meta charset=\"utf-8\">"
		"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
		"<title>%h</title><link rel=\"stylesheet\" href=\"/static/form.css\"></head>"
		"<body><main><header>", en ? "en" : "zh-CN", title);
	if (lang_switch_url)
		buf_fmt(out, "<nav class=\"lang\"><a href=\"%h\" lang=\"%s\">%s</a></nav>",
			lang_switch_url, en ? "zh-CN" : "en", en ? "中文" : "English");
	if (subheading)
		buf_fmt(out, "<p class=\"round\">%h</p>", subheading);
	buf_fmt(out, "<h1>%h</h1></header>", heading);
}

void col_page_close(buf *out, enum form_lang lang)
{
	buf_fmt(out, "<footer>%s</footer></main></body></html>\n", lang == FORM_EN
		? "Anonymous appraisal: no name, device or address is recorded."
		: "匿名测评：不记录姓名、设备或网络地址。");
}

void col_page_message(buf *out, enum form_lang lang, const char *heading, const char *html)
{
	col_page_open(out, lang, heading, heading, NULL, NULL);
	buf_fmt(out, "<p class=\"message\">%s</p>", html);
	col_page_close(out, lang);
}

enum MHD_Result col_send_page(struct MHD_Connection *c, unsigned status, buf *page,
	const char *const *headers)
{
	size_t len = page->len;
	return http_send_owned(c, status, "text/html; charset=utf-8", buf_take(page), len, HTTP_NO_STORE, headers);
}

enum MHD_Result col_message(struct MHD_Connection *c, unsigned status, enum form_lang lang,
	const char *heading, const char *html)
{
	buf page;
	buf_init(&page, COL_PAGE_MAX);
	col_page_message(&page, lang, heading, html);
	return col_send_page(c, status, &page, NULL);
}

enum MHD_Result col_not_allowed(struct MHD_Connection *c, enum form_lang lang, const char *allow)
{
	buf page;
	buf_init(&page, COL_PAGE_MAX);
	col_page_message(&page, lang, ZH_EN(lang, "不支持的请求方式", "Method not allowed"),
		ZH_EN(lang, "此地址只能用浏览器打开。请扫描二维码或从测评页面提交。",
			"This address is for a web browser. Scan the QR code or submit from the form page."));
	return col_send_page(c, 405, &page, (const char *const[]){ "Allow", allow, NULL });
}
