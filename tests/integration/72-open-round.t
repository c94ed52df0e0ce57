#!/usr/bin/python3
"""Open (poster) rounds: best-effort duplicate control that identifies nobody.

After a stored ballot the browser gets a signed vote cookie for that unit
(the same value for everyone); with it the form says "already rated" and a
second ballot is refused. A per-address bucket held in memory stops a script,
and behind a trusted proxy the address comes from X-Forwarded-For. A form page
can be posted once, and only for its own unit."""
import csv
import io
import os
import re
import sqlite3
import sys
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import harness  # noqa: E402

QUESTIONS = ["leadership", "members", "mechanism", "performance", "reputation", "overall"]
FORM_CT = {"Content-Type": "application/x-www-form-urlencoded"}
CJK = re.compile("[\u4e00-\u9fff]")

t = harness.Tap()
w = harness.Workspace()
w.pingyi("init", "--base-url", "https://py.example.edu", check=True)
TOK = w.import_small_org()
w.open_round("r1", "--title-zh", "测评", "--title-en", "Appraisal")


def ballots(unit=None):
    con = sqlite3.connect(w.db)
    try:
        if unit:
            return con.execute("SELECT count(*) FROM ballots WHERE unit = ?", (unit,)).fetchone()[0]
        return con.execute("SELECT count(*) FROM ballots").fetchone()[0]
    finally:
        con.close()


def body(level="s", ft=None, comment=None):
    pairs = [(q, level) for q in QUESTIONS]
    if comment:
        pairs.append(("comment", comment))
    if ft:
        pairs.append(("ft", ft))
    return urllib.parse.urlencode(pairs)


def post(col, path, ft, headers=None):
    h = dict(FORM_CT)
    h.update(headers or {})
    return col.request("POST", path, body=body(ft=ft), headers=h)


def page_problems(r):
    why = []
    if not r.headers.get("content-type", "").startswith("text/html"):
        why.append("content-type %r" % r.headers.get("content-type"))
    if not r.text.lstrip().lower().startswith("<!doctype html>"):
        why.append("not an HTML document")
    m = re.search(r"<h1>(.*?)</h1>", r.text, re.S)
    if not m or not CJK.search(m.group(1)):
        why.append("no Chinese heading")
    return why


def cookie_of(r):
    """(name, value, {attribute: value}) of the reply's Set-Cookie, or None."""
    sc = r.headers.get("set-cookie")
    if not sc:
        return None
    parts = [p.strip() for p in sc.split(";")]
    name, _, value = parts[0].partition("=")
    attrs = {}
    for p in parts[1:]:
        k, _, v = p.partition("=")
        attrs[k.lower()] = v
    return name, value, attrs


col = w.collector()
U1 = "/u/" + TOK["b1"]

# ---- the vote cookie ----
r = col.post(U1, [(q, "s") for q in QUESTIONS])
c = cookie_of(r)
t.ok(r.status == 303 and c is not None, "a stored open ballot: 303 with Set-Cookie", "status %d" % r.status)
name, value, attrs = c or ("", "", {})
t.eq(name, "pv_" + TOK["b1"], "... cookie name pv_<token>")
t.ok(len(value) >= 16 and re.match(r"^[A-Za-z0-9_-]+$", value), "... a signed value", value)
t.eq(attrs.get("path"), U1, "... Path=/u/<token>")
t.ok("httponly" in attrs, "... HttpOnly", attrs)
t.eq(attrs.get("samesite", "").lower(), "lax", "... SameSite=Lax")
t.ok(attrs.get("max-age", "").isdigit() and int(attrs["max-age"]) > 0, "... Max-Age > 0", attrs)
t.ok("secure" in attrs, "... Secure, as the base URL is https", attrs)
JAR = {"Cookie": "%s=%s" % (name, value)}

r = col.get(U1, headers=JAR)
t.ok(r.status == 200 and "您已评价过该单位" in r.text and 'name="ft"' not in r.text and not page_problems(r),
     "with the cookie, GET /u/<token>: 200, says already rated, no form", "status %d" % r.status)
before = ballots()
ft = col.form_token(U1)
r = post(col, U1, ft, JAR)
t.ok(r.status == 409 and not page_problems(r) and ballots() == before,
     "with the cookie, POST /u/<token> (fresh form token): 409, nothing stored", "status %d" % r.status)
r = post(col, U1, ft)
t.eq(r.status, 303, "... the same form token without the cookie still works (the 409 did not spend it)")

def forge(v):
    """v with its last character changed."""
    return v[:-1] + ("A" if v[-1:] != "A" else "B")


for label, forged in [("a forged value", "pv_%s=%s" % (TOK["b1"], forge(value))),
                      ("an empty value", "pv_%s=" % TOK["b1"]),
                      ("another unit's cookie name", "pv_%s=%s" % (TOK["b2"], value)),
                      ("garbage", "pv_%s=%s" % (TOK["b1"], "x" * 200))]:
    r = col.get(U1, headers={"Cookie": forged})
    t.ok(r.status == 200 and 'name="ft"' in r.text, "a cookie with %s is ignored: the form is shown" % label,
         "status %d" % r.status)
U2 = "/u/" + TOK["b2"]
r = col.get(U2, headers={"Cookie": "pv_%s=%s" % (TOK["b2"], value)})
t.ok(r.status == 200 and 'name="ft"' in r.text, "unit b1's cookie value under b2's name: b2's form is shown",
     "status %d" % r.status)
before = ballots()
r = post(col, U1, col.form_token(U1), {"Cookie": "pv_%s=%s" % (TOK["b1"], forge(value))})
t.ok(r.status == 303 and ballots() == before + 1, "POST with a forged cookie: stored as usual (303)",
     "status %d" % r.status)

# A campus portal's cookies for the whole domain (SSO, analytics) come with
# every request: ~6 KB of them must not stop a ballot with a long comment.
PORTAL = "; ".join("portal_%02d=%s" % (i, "v" * 140) for i in range(40))
r = col.get(U1, headers={"Cookie": PORTAL})
t.eq(r.status, 200, "GET with %d bytes of other cookies: 200" % len(PORTAL))
before = ballots()
long_comment = "意见" * 250
r = col.request("POST", U1, body=body(ft=col.form_token(U1), comment=long_comment),
                headers=dict(FORM_CT, Cookie=PORTAL))
t.ok(r.status == 303 and ballots() == before + 1,
     "... and a ballot with a 500-character comment behind them: stored (303)", "status %d" % r.status)

a = cookie_of(col.post(U2, [(q, "b") for q in QUESTIONS]))
b = cookie_of(col.post(U2, [(q, "d") for q in QUESTIONS], headers={"User-Agent": "another phone"}))
t.ok(a and b and a[:2] == b[:2], "two devices voting for the same unit get the same cookie value (it names nobody)",
     "%r / %r" % (a, b))
t.ok(a and a[1] != value, "... and it differs from another unit's value")
rc = col.stop()
reports = harness.sanitizer_reports(col.log_text())
t.ok(rc == 0 and not reports, "collector exits 0, no sanitizer report", "\n".join(reports[:20]))

# ---- form tokens ----
col = w.collector()
before = ballots()
ft = col.form_token(U1)
r1 = post(col, U1, ft)
r2 = post(col, U1, ft)
t.ok(r1.status == 303 and r2.status == 409 and not page_problems(r2) and ballots() == before + 1,
     "a form token posted twice: 303, then 409 and nothing more stored", "status %d, %d" % (r1.status, r2.status))
before = ballots()
r = post(col, U2, col.form_token(U1))
t.ok(r.status == 400 and not page_problems(r) and ballots() == before,
     "a form token from unit b1's page posted to b2: 400, nothing stored", "status %d" % r.status)
col.stop()

# ---- the per-address bucket ----
# Without --trust-proxy every request here comes from 127.0.0.1, whatever
# X-Forwarded-For says: one bucket of 5.
col = w.collector("--ballot-limit", "5,0.5")
fts = [col.form_token(U1) for _ in range(7)]
before = ballots()
got = [post(col, U1, fts[i], {"X-Forwarded-For": "198.51.100.%d" % (i + 1)}) for i in range(6)]
t.eq([r.status for r in got[:5]], [303] * 5, "--ballot-limit 5,0.5: five ballots from one address: 303")
r = got[5]
t.ok(r.status == 429 and r.headers.get("retry-after", "").isdigit() and not page_problems(r),
     "the 6th: 429 with Retry-After and a readable page (each had its own X-Forwarded-For: ignored "
     "without --trust-proxy)", "status %d %r" % (r.status, page_problems(r)))
t.eq(ballots(), before + 5, "... the 6th was not stored")
rc = col.stop()
reports = harness.sanitizer_reports(col.log_text())
t.ok(rc == 0 and not reports, "collector exits 0, no sanitizer report", "\n".join(reports[:20]))

col = w.collector("--ballot-limit", "5,0.5", "--trust-proxy")
fts = [col.form_token(U1) for _ in range(12)]
X = {"X-Forwarded-For": "198.51.100.7"}
before = ballots()
got = [post(col, U1, fts[i], X) for i in range(5)]
spoof = post(col, U1, fts[5], {"X-Forwarded-For": "203.0.113.9, 198.51.100.7"})
sixth = post(col, U1, fts[6], X)
other = post(col, U1, fts[7], {"X-Forwarded-For": "198.51.100.8"})
real_ip = post(col, U1, fts[8], {"X-Real-IP": "198.51.100.9"})
t.eq([r.status for r in got], [303] * 5, "--trust-proxy: five ballots with X-Forwarded-For A: 303")
t.eq(sixth.status, 429, "... the 6th for A: 429")
t.eq(spoof.status, 429, "... 'X-Forwarded-For: forged, A' counts as A (the proxy appends the real address)")
t.eq(other.status, 303, "... X-Forwarded-For B from the same loopback peer: its own bucket, 303")
t.eq(real_ip.status, 303, "... X-Real-IP C: its own bucket, 303")
t.eq(ballots(), before + 7, "exactly the 303s were stored")
rc = col.stop()
reports = harness.sanitizer_reports(col.log_text())
t.ok(rc == 0 and not reports, "collector exits 0, no sanitizer report", "\n".join(reports[:20]))
t.done()
