#!/usr/bin/python3
"""The collector answers bad input with a clear 4xx page and stores nothing.

One database with a small tree and an open branch round; one collector. Every
case checks the status, that the body is a readable HTML page in the
request's language (Chinese by default, English with ?lang=en), and that
ballots, comments, counts and ballot_counts are exactly as before."""
import csv
import http.client
import io
import os
import re
import socket
import sqlite3
import sys
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import harness  # noqa: E402

QUESTIONS = ["leadership", "members", "mechanism", "performance", "reputation", "overall"]
FORM_CT = {"Content-Type": "application/x-www-form-urlencoded"}
INJECTION = "<script>alert(1)</script>' OR 1=1; DROP TABLE ballots;--"
CJK = re.compile("[\u4e00-\u9fff]")

t = harness.Tap()
w = harness.Workspace()
w.pingyi("init", check=True)
w.write("units.csv",
        "id,parent,kind,name_zh,name_en\n"
        "dw,,committee,党委,Party Committee\n"
        "zb1,dw,general_branch,机关党总支,Admin General Branch\n"
        "zb1-1,zb1,branch,第一党支部,First Branch\n"
        "zb1-2,zb1,branch,第二党支部,Second Branch\n"
        "win,dw,window,食堂窗口,Canteen Window\n")
w.pingyi("units", "import", w.path("units.csv"), check=True)
w.pingyi("round", "create", "r1", "--form", "branch", "--title-zh", "测评", "--title-en", "Appraisal",
         check=True)
w.pingyi("round", "open", "r1", check=True)
tokens = w.tokens()
TOK = tokens["zb1-1"]
U = "/u/" + TOK

col = w.collector()


def db_state():
    """Row counts and counter sums of every table a ballot touches."""
    con = sqlite3.connect(w.db)
    try:
        q = lambda sql: con.execute(sql).fetchone()[0]  # noqa: E731
        return {
            "ballots": q("SELECT count(*) FROM ballots"),
            "comments": q("SELECT count(*) FROM comments"),
            "counts": q("SELECT count(*) FROM counts"),
            "counts.n": q("SELECT coalesce(sum(n), 0) FROM counts"),
            "ballot_counts": q("SELECT count(*) FROM ballot_counts"),
            "ballot_counts.n": q("SELECT coalesce(sum(n), 0) FROM ballot_counts"),
        }
    finally:
        con.close()


def page_problems(r, lang):
    """Why r is not a readable HTML page in lang ('zh' or 'en'); [] when it is."""
    why = []
    ct = r.headers.get("content-type", "")
    if not ct.startswith("text/html"):
        why.append("content-type %r" % ct)
    body = r.text
    if not body.lstrip().lower().startswith("<!doctype html>"):
        why.append("not an HTML document")
    m = re.search(r"<h1>(.*?)</h1>", body, re.S)
    heading = m.group(1) if m else ""
    if not heading.strip():
        why.append("no heading")
    if lang == "zh":
        if '<html lang="zh-CN">' not in body:
            why.append("html lang is not zh-CN")
        if not CJK.search(heading):
            why.append("heading %r is not Chinese" % heading)
    else:
        if '<html lang="en">' not in body:
            why.append("html lang is not en")
        if CJK.search(heading) or not re.search("[A-Za-z]{3}", heading):
            why.append("heading %r is not English" % heading)
    return why


def with_lang(path, lang):
    if lang == "zh":
        return path
    return path + ("&" if "?" in path else "?") + "lang=en"


def answers(**over):
    a = {q: "s" for q in QUESTIONS}
    a.update(over)
    return [(k, v) for k, v in a.items() if v is not None]


def check(name, send, status, *, extra=None, langs=("zh", "en"), stored=False):
    """Run send(lang) for each language and check the reply and the database.

    send returns a harness.Reply; extra(reply, lang) returns a list of
    problems. stored=False: no table may change; True: exactly one ballot is added."""
    problems = []
    for lang in langs:
        before = db_state()
        try:
            r = send(lang)
        except Exception as e:  # a reset connection is a failure too
            problems.append("%s: request failed: %r" % (lang, e))
            continue
        if r.status != status:
            problems.append("%s: status %d, want %d" % (lang, r.status, status))
        if status != 303:
            problems += ["%s: %s" % (lang, p) for p in page_problems(r, lang)]
        if extra:
            problems += ["%s: %s" % (lang, p) for p in extra(r, lang)]
        after = db_state()
        if not stored and after != before:
            problems.append("%s: database changed: %r -> %r" % (lang, before, after))
        if stored and after["ballots"] != before["ballots"] + 1:
            problems.append("%s: %d ballots stored, want 1" % (lang, after["ballots"] - before["ballots"]))
    t.ok(not problems, name, "\n".join(problems))


def with_token(path, body):
    """body plus a fresh form token from path's form page, as a browser sends it."""
    ft = col.form_token(path.split("?")[0])
    if ft is None:
        return body
    return body + ("&ft=" + ft if isinstance(body, str) else b"&ft=" + ft.encode())


def post(path, body, headers=FORM_CT):
    return lambda lang: col.request("POST", with_lang(path, lang), body=with_token(path, body), headers=headers)


def get(path, method="GET"):
    return lambda lang: col.request(method, with_lang(path, lang))


# ---- the page itself works (or every later check is meaningless) ----
r = col.get(U)
t.ok(r.status == 200 and 'name="leadership"' in r.text and not page_problems(r, "zh"),
     "GET the form: 200, Chinese page with the questions", "status %d %r" % (r.status, page_problems(r, "zh")))

# ---- unknown tokens ----
for path in ["/u/zzzzzzzz", "/u/ab", "/u/../../etc/passwd", "/u/%00", "/u/ABCDEFGH", "/u/" + TOK + "x",
             "/u/" + TOK + "/other", "/u/zzzzzzzz/done"]:
    check("GET %s: 404 page" % path, get(path), 404)
check("POST to an unknown token: 404, nothing stored", post("/u/zzzzzzzz", "&".join("%s=s" % q for q in QUESTIONS)), 404)

r = col.get("/u/zzzzzzzz", headers={"Accept-Language": "en-US,en;q=0.9,zh;q=0.5"})
t.ok(r.status == 404 and not page_problems(r, "en"), "Accept-Language: en gets the 404 page in English",
     page_problems(r, "en"))

# ---- a unit that no round rates ----
check("GET a unit without a round: 404 page", get("/u/" + tokens["win"]), 404,
      extra=lambda r, lang: [] if ("没有" in r.text if lang == "zh" else "no open appraisal" in r.text)
      else ["the page does not say there is no open appraisal"])
check("POST a valid ballot to a unit without a round: 404, nothing stored",
      post("/u/" + tokens["win"], "&".join("%s=s" % q for q in QUESTIONS)), 404)
check("GET a committee (not rated by the round): 404", get("/u/" + tokens["dw"]), 404)

# ---- wrong methods ----
VALID = "&".join("%s=s" % q for q in QUESTIONS)


def allow_has(method):
    def f(r, lang):
        allow = r.headers.get("allow", "")
        return [] if method in [m.strip() for m in allow.split(",")] else ["Allow is %r" % allow]
    return f


for m in ["PUT", "DELETE", "PATCH"]:
    check("%s %s: 405 with Allow: ... POST" % (m, "/u/TOKEN"),
          lambda lang, m=m: col.request(m, with_lang(U, lang), body=VALID, headers=FORM_CT), 405,
          extra=allow_has("POST"))
check("POST /u/TOKEN/done: 405 with Allow: GET", post(U + "/done", VALID), 405, extra=allow_has("GET"))

# ---- missing answers: 422, the other answers kept ----


def kept(checked, missing_label):
    def f(r, lang):
        why = []
        for q, v in checked:
            if not re.search(r'<input type="radio" name="%s" id="%s-%s" value="%s" checked' % (q, q, v, v), r.text):
                why.append("answer %s=%s is not checked any more" % (q, v))
        label = missing_label[lang]
        if not re.search(r'class="error-summary"[^>]*>[^<]*%s' % re.escape(label), r.text):
            why.append("no error naming %r" % label)
        if 'name="members" id="members-s" value="s" checked' in r.text:
            why.append("the missing question shows an answer")
        return why
    return f


partial = [("leadership", "b"), ("mechanism", "d"), ("performance", "u"), ("reputation", "s"), ("overall", "b")]
check("missing answer: 422, form again with the other answers checked and the question named",
      post(U, "&".join("%s=%s" % p for p in partial)), 422,
      extra=kept(partial, {"zh": "党员队伍好", "en": "Strong membership"}))
check("empty answer counts as missing: 422", post(U, VALID.replace("members=s", "members=")), 422,
      extra=kept([("leadership", "s")], {"zh": "党员队伍好", "en": "Strong membership"}))
check("no answers at all: 422", post(U, ""), 422)

# ---- bad values and fields: 400 ----
for bad in ["x", "S", "5", "s%20", "satisfied"]:
    check("out-of-range level %r: 400" % bad, post(U, VALID.replace("overall=s", "overall=" + bad)), 400)
check("unknown field: 400", post(U, VALID + "&foo=1"), 400,
      extra=lambda r, lang: [] if "foo" in r.text else ["the page does not name the field"])
check("duplicate field: 400", post(U, VALID + "&overall=b"), 400)
check("duplicate field with the same value: 400", post(U, VALID + "&leadership=s"), 400)
check("duplicate comment: 400", post(U, VALID + "&comment=a&comment=b"), 400)
check("empty field name: 400", post(U, VALID + "&=s"), 400)

# ---- size ----
big = VALID + "&comment=" + "a" * (17 * 1024)
check("body over 16 KiB with Content-Length: 413", post(U, big.encode()), 413)


def chunked(lang):
    conn = http.client.HTTPConnection("127.0.0.1", col.port, timeout=30)
    pieces = [VALID.encode() + b"&comment="] + [b"b" * 1024] * 20
    conn.request("POST", with_lang(U, lang), body=iter(pieces), headers=dict(FORM_CT), encode_chunked=True)
    resp = conn.getresponse()
    r = harness.Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    conn.close()
    return r


check("body over 16 KiB, chunked: 413", chunked, 413)


def declared_only(lang):
    """Headers announcing a huge body, and no body: the answer must not wait for it."""
    s = socket.create_connection(("127.0.0.1", col.port), timeout=10)
    s.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
               "Content-Length: 100000000\r\nExpect: 100-continue\r\n\r\n" % with_lang(U, lang)).encode())
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
        if b"</html>" in data:
            break
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.decode().partition(":")
        headers[k.strip().lower()] = v.strip()
    return harness.Reply(status, headers, body)


check("100 MB announced with Expect: 100-continue: 413 at once, no 100", declared_only, 413)
TOKEN_FIELD = len("&ft=") + len(col.form_token(U))
just_under = VALID + "&comment=" + "%20" * ((16 * 1024 - len(VALID) - 9 - TOKEN_FIELD) // 3)
check("body just under 16 KiB (comment of spaces only) is read in full: 303", post(U, just_under), 303,
      langs=("zh",), stored=True)

# ---- content types ----
check("Content-Type text/plain: 415", post(U, VALID, {"Content-Type": "text/plain"}), 415)
check("Content-Type multipart/form-data: 415",
      post(U, "--xx\r\nContent-Disposition: form-data; name=\"overall\"\r\n\r\ns\r\n--xx--\r\n",
           {"Content-Type": "multipart/form-data; boundary=xx"}), 415)
check("no Content-Type: 415", post(U, VALID, {}), 415)
check("Content-Type application/x-www-form-urlencodedX: 415",
      post(U, VALID, {"Content-Type": "application/x-www-form-urlencodedX"}), 415)

# ---- encoding ----
ENC = [
    ("invalid UTF-8 %FF", VALID + "&comment=%FF"),
    ("overlong UTF-8 %C0%AF", VALID + "&comment=%C0%AF"),
    ("UTF-16 surrogate %ED%A0%80", VALID + "&comment=%ED%A0%80"),
    ("truncated UTF-8 %E5%A5", VALID + "&comment=%E5%A5"),
    ("raw byte 0xff in the body", (VALID + "&comment=a").encode() + b"\xff"),
    ("raw 0xff in a field name", VALID.encode() + b"&\xff=1"),
    ("%00 in a value", VALID + "&comment=a%00b"),
    ("%00 in a name", VALID + "&over%00all=s"),
    ("raw NUL byte in the body", (VALID + "&comment=a").encode() + b"\x00b"),
    ("control character %01", VALID + "&comment=a%01b"),
    ("DEL %7F", VALID + "&comment=a%7Fb"),
    ("escape %1B", VALID + "&comment=%1B%5B31m"),
    ("bad escape %G1", VALID + "&comment=%G1"),
    ("trailing %", VALID + "&comment=abc%"),
    ("short escape %4", VALID + "&comment=%4"),
    ("bad escape in a name", VALID + "&comm%ZZent=a"),
]
for name, body in ENC:
    check(name + ": 400", post(U, body if isinstance(body, bytes) else body.encode()), 400)

# ---- comment and complaint ----
long_comment = "很" * 501
check("501-character comment: 422, form again with the comment kept",
      lambda lang: col.post(with_lang(U, lang), answers() + [("comment", long_comment)]), 422,
      extra=lambda r, lang: [] if ">" + long_comment + "</textarea>" in r.text
      else ["the comment is not in the textarea"])
for label, comment in [("500 characters", "评" * 500), ("500 characters with CRLF line breaks", "评" * 249 + "\r\n" + "议" * 250)]:
    def send(lang, comment=comment):
        return col.post(with_lang(U, lang), answers() + [("comment", comment)])
    check("a comment of %s is accepted: 303" % label, send, 303, langs=("zh",), stored=True)
    con = sqlite3.connect(w.db)
    kept_whole = con.execute("SELECT count(*) FROM comments WHERE body = ?", (comment.replace("\r\n", "\n"),)).fetchone()[0]
    con.close()
    t.ok(kept_whole == 1, "... and stored whole")
check("complaint=1 without a comment: 422", post(U, VALID + "&complaint=1"), 422,
      extra=lambda r, lang: [] if 'name="complaint" value="1" checked' in r.text
      else ["the complaint box is not checked any more"])
check("complaint=1 with a comment of blanks only: 422", post(U, VALID + "&complaint=1&comment=+%0D%0A+"), 422)
check("complaint=2: 400", post(U, VALID + "&complaint=2&comment=x"), 400)
check("complaint=on: 400", post(U, VALID + "&complaint=on&comment=x"), 400)

# ---- HEAD ----


def head(lang):
    return col.request("HEAD", with_lang(U, lang))


r = head("zh")
t.ok(r.status == 200 and r.body == b"", "HEAD /u/TOKEN: 200 without a body",
     "status %d, %d bytes" % (r.status, len(r.body)))

# ---- injection ----
before = db_state()
r = col.post(U, answers() + [("comment", INJECTION)])
con = sqlite3.connect(w.db)
stored = [row[0] for row in con.execute("SELECT body FROM comments")]
tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}
con.close()
after = db_state()
t.ok(r.status == 303 and INJECTION in stored and after["ballots"] == before["ballots"] + 1,
     "an SQL/HTML injection in the comment is a valid ballot, stored verbatim",
     "status %d, comments %r" % (r.status, stored))
t.ok({"ballots", "comments", "counts", "ballot_counts", "ledger", "units", "rounds"} <= tables,
     "every table is still there", repr(tables))

def inj_field(lang):
    return col.request("POST", with_lang(U, lang),
                       body=with_token(U, VALID + "&" + urllib.parse.quote_plus(INJECTION) + "=s"), headers=FORM_CT)


check("an injection in a field name: 400, the name escaped in the page", inj_field, 400,
      extra=lambda r, lang: (["raw <script in the page"] if "<script" in r.text.lower() else []) +
      ([] if "&lt;script&gt;" in r.text else ["the escaped name is not shown"]))

# ---- still healthy ----
before = db_state()
# ---- form tokens: a page posts once, and only a page we rendered ----
VALID_BODY = urllib.parse.urlencode(answers())
check("no form token: 400", lambda lang: col.request("POST", with_lang(U, lang), body=VALID_BODY,
      headers=FORM_CT), 400)
check("a forged form token: 400", lambda lang: col.request("POST", with_lang(U, lang),
      body=VALID_BODY + "&ft=" + "A" * 34, headers=FORM_CT), 400)
ft = col.form_token(U)
first = col.request("POST", U, body=VALID_BODY + "&ft=" + ft, headers=FORM_CT)
t.eq(first.status, 303, "a page posted once: 303")
before = db_state()
replay = col.request("POST", U, body=VALID_BODY + "&ft=" + ft, headers=FORM_CT)
t.ok(replay.status == 409 and "已经提交" in replay.text and db_state() == before,
     "the same page posted again: 409, nothing stored", "status %d" % replay.status)

r = col.post(U + "?lang=en", answers(overall="b", members="d"))
after = db_state()
t.ok(r.status == 303 and r.headers.get("location") == U + "/done?lang=en",
     "a valid ballot after all that: 303 to the thank-you page",
     "status %d location %r" % (r.status, r.headers.get("location")))
t.ok(after["ballots"] == before["ballots"] + 1 and after["ballot_counts.n"] == before["ballot_counts.n"] + 1
     and after["counts.n"] == before["counts.n"] + len(QUESTIONS),
     "it was stored once, with one counter per question", "%r -> %r" % (before, after))
r = col.get("/healthz")
t.eq((r.status, r.body), (200, b"ok\n"), "/healthz still answers ok")

rc = col.stop()
t.eq(rc, 0, "SIGTERM: the collector exits 0")
reports = harness.sanitizer_reports(col.log_text())
t.ok(not reports, "no sanitizer report in the collector's log", "\n".join(reports[:20]))
t.done()
