#!/usr/bin/python3
"""Ballot codes (测评码): one person, one vote per unit, and nothing that gives a code away.

`pingyi codes issue` prints codes once (text, CSV, QR images) and stores only
keyed hashes: the ledger gets the count, neither it nor any table holds a code.
In the collector a code walks its holder through every rated unit of its
scope, once each; what people mistype (case, spaces, full-width characters,
O/0, I/L/1) still finds the code, and every refusal -- invalid, used up,
out of scope, closed round -- is the same page, so a guesser learns nothing.
200 racing requests for one code store exactly one ballot per unit; the
per-address failure bucket stops guessing without telling a valid code apart.
A code round takes no poster ballots."""
import csv
import hashlib
import hmac
import io
import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import harness  # noqa: E402

QUESTIONS = ["leadership", "members", "mechanism", "performance", "reputation", "overall"]
BASE = "https://py.example.edu"
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
PRINTED = re.compile(r"^[%s]{5}-[%s]{5}-[%s]{5}$" % ((re.escape(ALPHABET),) * 3))
FORM_CT = {"Content-Type": "application/x-www-form-urlencoded"}
CJK = re.compile("[\u4e00-\u9fff]")

t = harness.Tap()
w = harness.Workspace()
w.pingyi("init", "--base-url", BASE, check=True)
TOK = w.import_small_org("zb2,dw,general_branch,学院党总支,School General Branch",
                         "b4,zb2,branch,第四党支部,Fourth Branch",
                         "dept,dw,department,后勤处,Logistics",
                         "win,dept,window,食堂窗口,Canteen Window")
SCOPE_ZB = ["zb", "b1", "b2", "b3"]     # the rated units of zb's subtree, in tree order


def q(sql, *args):
    con = sqlite3.connect(w.db)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def plain(code):
    return code.replace("-", "")


def code_hash(code):
    """HMAC-SHA256 as common/codes.c computes it, from the secret pingyi init stored."""
    secret = bytes.fromhex(q("SELECT value FROM meta WHERE key = 'secret'")[0][0])
    return hmac.new(secret, b"pingyi-code-v1:" + plain(code).encode(), hashlib.sha256).digest()


def issue(round_id, group, scope, count, *extra):
    return w.pingyi("codes", "issue", round_id, "--group", group, "--scope", scope, "--count", str(count), *extra)


def show(r):
    return "rc %d\nstdout: %s\nstderr: %s" % (r.returncode, r.stdout[:2000], r.stderr)


ISSUED = []   # every code printed by any command here, printed form


# ---- rounds ----
# rx: a code round on the window, opened, given a code, then closed.
w.open_round("rx", "--title-zh", "窗口测评", "--title-en", "Windows", "--codes", form="window")
r = issue("rx", "群众", "win", 1)
CLOSED_CODE = r.stdout.strip()
ISSUED.append(CLOSED_CODE)
w.pingyi("round", "close", "rx", check=True)
# rc: the code round used below, rating every branch and general branch.
w.open_round("rc", "--title-zh", "党支部测评", "--title-en", "Branch appraisal", "--codes")
# ro: an open (poster) round; rs: a code round limited to zb2 (drafts both).
w.pingyi("round", "create", "ro", "--form", "window", "--title-zh", "开放", "--title-en", "Open", check=True)
w.pingyi("round", "create", "rs", "--form", "branch", "--title-zh", "范围", "--title-en", "Scoped",
         "--codes", "--scope", "zb2", check=True)

# ---- codes issue: text ----
r = issue("rc", "党员", "zb", 100)
text_codes = r.stdout.splitlines()
t.ok(r.returncode == 0 and len(text_codes) == 100 and all(PRINTED.match(c) for c in text_codes),
     "codes issue --format text: 100 lines of 15 Crockford base32 characters in three hyphenated groups", show(r))
t.eq(len(set(map(plain, text_codes))), 100, "... all different")
t.ok("100" in r.stderr and "党员" in r.stderr, "... stderr says how many were issued, for which group", r.stderr)
ISSUED += text_codes

# ---- csv ----
# (bytes: the harness's text mode would turn CRLF into LF)
r = subprocess.run([os.path.join(harness.BIN, "pingyi"), "--db", w.db, "codes", "issue", "rc",
                    "--group", "中层干部", "--scope", "zb", "--count", "4", "--format", "csv"],
                   cwd=harness.ROOT, capture_output=True, timeout=60)
r = subprocess.CompletedProcess(r.args, r.returncode, r.stdout.decode("utf-8", "replace"),
                                r.stderr.decode("utf-8", "replace"))
raw = r.stdout
t.ok(r.returncode == 0 and raw.startswith("\ufeff"), "codes issue --format csv: UTF-8 BOM first", show(r))
t.ok(raw.count("\r\n") == 5 and "\n" not in raw.replace("\r\n", ""), "... CRLF line ends, header + 4 rows",
     repr(raw[:300]))
rows = list(csv.reader(io.StringIO(raw.lstrip("\ufeff"), newline="")))
t.eq(rows[0] if rows else None, ["code", "url", "group", "scope"], "... header code,url,group,scope")
csv_rows = rows[1:]
bad = [row for row in csv_rows if len(row) != 4 or not PRINTED.match(row[0])
       or row[1] != BASE + "/c/" + plain(row[0]) or row[2] != "中层干部" or row[3] != "zb"]
t.ok(len(csv_rows) == 4 and not bad, "... each row: printed code, BASE/c/<15 characters>, group, scope", bad)
ISSUED += [row[0] for row in csv_rows if row]

# ---- QR images of the codes' URLs ----
qr_dir = w.path("slips")
r = issue("rc", "中层干部", "zb", 3, "--format", "csv", "--qr", qr_dir)
rows = list(csv.reader(io.StringIO(r.stdout.lstrip("\ufeff"), newline="")))[1:]
t.ok(r.returncode == 0 and len(rows) == 3, "codes issue --qr DIR --format csv: exit 0, 3 rows", show(r))
ISSUED += [row[0] for row in rows if row]
pngs = sorted(os.listdir(qr_dir)) if os.path.isdir(qr_dir) else []
t.eq(pngs, ["0001.png", "0002.png", "0003.png"], "--qr DIR writes 0001.png ... one per code")
decoded = []
for name in pngs:
    z = subprocess.run(["zbarimg", "--quiet", "--raw", os.path.join(qr_dir, name)], capture_output=True, text=True)
    decoded.append(z.stdout.strip() if z.returncode == 0 else "zbarimg failed: " + z.stderr)
t.ok(len(decoded) == 3 and decoded == [row[1] for row in rows if len(row) > 1],
     "every PNG decodes (zbarimg) to its row's url, in order", "decoded %r\nurls %r" % (decoded, rows))
t.eq(q("SELECT count(*) FROM codes")[0][0], len(ISSUED), "the database holds exactly the codes that were printed")

# ---- refusals of codes issue ----


def state():
    return (q("SELECT count(*) FROM codes")[0][0], q("SELECT count(*) FROM ledger")[0][0])


for label, args, rc, why in [
        ("an open-mode round", ["ro", "--group", "党员", "--scope", "win", "--count", "1"], 1, "--codes"),
        ("a closed round", ["rx", "--group", "党员", "--scope", "win", "--count", "1"], 1, "closed"),
        ("a scope outside the round", ["rs", "--group", "党员", "--scope", "zb", "--count", "1"], 1, "scope"),
        ("an unknown scope", ["rc", "--group", "党员", "--scope", "nope", "--count", "1"], 1, "nope"),
        ("an unknown round", ["r-none", "--group", "党员", "--scope", "zb", "--count", "1"], 1, "r-none"),
        ("--count 0", ["rc", "--group", "党员", "--scope", "zb", "--count", "0"], 1, "--count"),
        ("--count 100001", ["rc", "--group", "党员", "--scope", "zb", "--count", "100001"], 1, "--count"),
        ("no --group", ["rc", "--scope", "zb", "--count", "1"], 2, "usage"),
        ("an empty --group", ["rc", "--group", "", "--scope", "zb", "--count", "1"], None, None)]:
    before = state()
    r = w.pingyi("codes", "issue", *args)
    if rc is None:
        ok = r.returncode in (1, 2) and r.stderr.startswith(("pingyi:", "usage:"))
    else:
        ok = r.returncode == rc and why in r.stderr and \
            (r.stderr.startswith("pingyi: ") if rc == 1 else r.stderr.startswith("usage:"))
    t.ok(ok and r.stdout == "" and state() == before,
         "codes issue for %s: exit %s, says why, prints no code, stores nothing" % (label, rc or "1/2"),
         show(r) + "\nstate %r -> %r" % (before, state()))

# ---- the ledger and the database hold no code ----
ledger = q("SELECT kind, body FROM ledger ORDER BY seq")
issued_entries = [json.loads(b) for k, b in ledger if k == "codes.issued"]
t.eq([(e.get("round"), e.get("group"), e.get("scope"), e.get("count")) for e in issued_entries],
     [("rx", "群众", "win", 1), ("rc", "党员", "zb", 100), ("rc", "中层干部", "zb", 4),
      ("rc", "中层干部", "zb", 3)],
     "the ledger has one codes.issued entry per issue, with round, group, scope and count")


def forms_of(code):
    p = plain(code)
    return {code, p, code.lower(), p.lower()}


def leaks(text):
    text_l = text.lower()
    return sorted(c for c in ISSUED if any(f.lower() in text_l for f in forms_of(c)))


t.eq(leaks("\n".join(b for _, b in ledger)), [], "no ledger entry holds an issued code (any form)")


def dump():
    r = subprocess.run(["sqlite3", w.db, ".dump"], capture_output=True, text=True)
    return r.stdout


d = dump()
t.ok("INSERT INTO codes" in d and not leaks(d),
     "the database (sqlite3 .dump of every table) holds no issued code, with or without hyphens",
     leaks(d)[:5])
t.eq(q("SELECT count(*) FROM codes WHERE hash = ?", code_hash(text_codes[0]))[0][0], 1,
     "... a code is stored as its keyed hash (HMAC-SHA256 under the server secret)")

# ---- the collector ----
# A generous failure bucket here: the refusals below are many on purpose.
col = w.collector("--code-limit", "100000,1000")


def page_problems(r, lang="zh"):
    why = []
    if not r.headers.get("content-type", "").startswith("text/html"):
        why.append("content-type %r" % r.headers.get("content-type"))
    if not r.text.lstrip().lower().startswith("<!doctype html>"):
        why.append("not an HTML document")
    m = re.search(r"<h1>(.*?)</h1>", r.text, re.S)
    h = m.group(1) if m else ""
    if lang == "zh" and not CJK.search(h):
        why.append("heading %r is not Chinese" % h)
    if lang == "en" and (CJK.search(h) or not h.strip()):
        why.append("heading %r is not English" % h)
    return why


def answers(level="s"):
    return [(qn, level) for qn in QUESTIONS]


def ballots(**where):
    sql = "SELECT unit, grp, answers FROM ballots" + \
        (" WHERE " + " AND ".join("%s = ?" % k for k in where) if where else "")
    return q(sql, *where.values())


# ---- a code round takes no poster ballots ----
before = q("SELECT count(*) FROM ballots")[0][0]
r = col.get("/u/" + TOK["b1"])
t.ok(r.status == 403 and "/c" in r.text and not page_problems(r) and 'name="ft"' not in r.text,
     "GET /u/<token> of a unit in a code round: 403 page pointing to /c, no form", "status %d" % r.status)
r = col.post("/u/" + TOK["b1"], answers())
r2 = col.request("POST", "/u/" + TOK["b1"], body=urllib.parse.urlencode(answers()), headers=FORM_CT)
t.ok(r.status == 403 and r2.status == 403 and q("SELECT count(*) FROM ballots")[0][0] == before,
     "POST /u/<token> of a unit in a code round: 403, nothing stored", "status %d / %d" % (r.status, r2.status))

# ---- the refusal page, for reference ----
NOT_ISSUED = "7" * 5 + "-" + "Z" * 5 + "-" + "9" * 5
REF = {"zh": col.get("/c/" + plain(NOT_ISSUED)), "en": col.get("/c/" + plain(NOT_ISSUED) + "?lang=en")}
t.ok(REF["zh"].status == 404 and not page_problems(REF["zh"], "zh") and
     REF["en"].status == 404 and not page_problems(REF["en"], "en"),
     "a code that was never issued: 404, a readable page (zh, and en with ?lang=en)",
     "%d %r / %d %r" % (REF["zh"].status, page_problems(REF["zh"]), REF["en"].status, page_problems(REF["en"], "en")))


def refused(r, lang="zh"):
    return r.status == REF[lang].status and r.body == REF[lang].body


# ---- the walk: one code through every unit of its scope ----
WALKER = text_codes[0]
WP = plain(WALKER)
r = col.get("/c/" + WP)
links = re.findall(r'<a href="/c/%s/([a-z0-9]{8})\?lang=zh">' % WP, r.text)
t.ok(r.status == 200 and links == [TOK[u] for u in SCOPE_ZB] and not page_problems(r),
     "GET /c/<CODE>: 200, lists the %d rated units of its scope in tree order" % len(SCOPE_ZB),
     "status %d links %r" % (r.status, links))
m = re.search(r'<a class="button" href="([^"]+)"', r.text)
path = m.group(1) if m else None
visited, problems, level_of = [], [], {}
for step in range(len(SCOPE_ZB) + 2):
    if not path or not path.startswith("/c/" + WP + "/"):
        break
    unit_tok = path.split("?")[0].rsplit("/", 1)[1]
    form = col.get(path)
    if form.status != 200 or 'name="ft"' not in form.text:
        problems.append("GET %s: %d" % (path, form.status))
        break
    if "第 %d 个，共 %d 个单位" % (step + 1, len(SCOPE_ZB)) not in form.text:
        problems.append("%s does not say unit %d of %d" % (path, step + 1, len(SCOPE_ZB)))
    level = "sbdu"[step % 4]
    r = col.post(path, answers(level))
    visited.append(unit_tok)
    level_of[unit_tok] = level
    if r.status != 303:
        problems.append("POST %s: %d" % (path, r.status))
        break
    path = r.headers.get("location")
t.ok(not problems and visited == [TOK[u] for u in SCOPE_ZB] and path == "/c/done?lang=zh",
     "following the 303 chain rates each unit once, in order, and ends at /c/done",
     "%s\nvisited %r, last location %r" % ("\n".join(problems), visited, path))
r = col.get("/c/done?lang=zh")
t.ok(r.status == 200 and not page_problems(r), "/c/done: 200 thank-you page", "status %d" % r.status)
got = sorted((u, g, json.loads(a)["overall"]) for u, g, a in ballots(grp="党员"))
want = sorted((u, "党员", level_of.get(TOK[u])) for u in SCOPE_ZB)
t.eq(got, want, "one ballot per unit stored, in the code's group (ballots.grp = 党员), answers as sent")
t.eq(sorted(u for (u,) in q("SELECT unit FROM code_uses WHERE hash = ?", code_hash(WALKER))), sorted(SCOPE_ZB),
     "one code_uses row per unit for the code's hash")
bc = dict(((u, g), n) for u, g, n in q("SELECT unit, grp, n FROM ballot_counts WHERE round = 'rc'"))
t.eq({u: bc.get((u, "党员")) for u in SCOPE_ZB}, {u: 1 for u in SCOPE_ZB}, "ballot_counts: 1 per unit for 党员")
r = col.get("/c/" + WP)
t.ok(refused(r), "afterwards GET /c/<CODE>: the refusal page (404, same bytes)", "status %d" % r.status)
r = col.post("/c/%s/%s" % (WP, TOK["b1"]), answers(), token=False)
t.ok(refused(r) and len(ballots(grp="党员")) == len(SCOPE_ZB),
     "afterwards POST /c/<CODE>/<unit>: refused, nothing stored", "status %d" % r.status)

# ---- look-alikes reach the same code ----


def with_0_and_1(codes):
    for c in codes:
        p = plain(c)
        if "0" in p and "1" in p:
            return c
    return None


LOOK = with_0_and_1(text_codes[1:])
t.ok(LOOK is not None, "one of the 100 codes has both a 0 and a 1 (for the O and I/L look-alikes)")
LOOK = LOOK or text_codes[1]
LP = plain(LOOK)
canon = col.get("/c/" + LP)
t.ok(canon.status == 200, "GET /c/<CODE> for a fresh code: 200", "status %d" % canon.status)


def full_width(s):
    return "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in s)


def swap_1(s):
    out, alt = [], "ILil"
    for ch in s:
        if ch == "1":
            out.append(alt[len(out) % 4])
        else:
            out.append(ch)
    return "".join(out)


VARIANTS = [
    ("lowercase", LOOK.lower()),
    ("without hyphens", LP),
    ("spaces for hyphens", LOOK.replace("-", " ")),
    ("leading, trailing and doubled spaces", "  " + LOOK.replace("-", "  ") + " "),
    ("hyphens in other places", "-".join([LP[:2], LP[2:9], LP[9:11], LP[11:]])),
    ("full-width digits and letters", full_width(LOOK)),
    ("full-width, lowercase, ideographic space", full_width(LP[:5].lower()) + "\u3000" + full_width(LP[5:])),
    ("O for 0", LOOK.replace("0", "O")),
    ("o for 0", LOOK.replace("0", "o")),
    ("I, L, i, l for 1", swap_1(LOOK)),
    ("full-width O and I for 0 and 1", full_width(swap_1(LOOK.replace("0", "O")).upper())),
]
bad_typed, bad_url = [], []
for label, v in VARIANTS:
    for lang in ("zh", "en"):
        r = col.post("/c?lang=" + lang, {"code": v})
        want = "/c/%s?lang=%s" % (LP, lang)
        if r.status != 303 or r.headers.get("location") != want:
            bad_typed.append("%s %r (%s): %d %r" % (label, v, lang, r.status, r.headers.get("location")))
    r = col.get("/c/" + urllib.parse.quote(v, safe=""))
    if r.status != 200 or r.body != canon.body:
        bad_url.append("%s %r: %d" % (label, v, r.status))
t.ok(not bad_typed, "POST /c with each look-alike (case, spaces, hyphens, full-width, O/0, I/L/1): 303 to /c/<CODE>",
     "\n".join(bad_typed))
t.ok(not bad_url, "GET /c/<look-alike> in the URL: the same page as /c/<CODE>, byte for byte", "\n".join(bad_url))

NOT_CODES = [
    ("a U", LP[:7] + "U" + LP[8:]),
    ("a u", LP[:7] + "u" + LP[8:]),
    ("14 characters", LP[:14]),
    ("16 characters", LP + "0"),
    ("17 characters with hyphens", LOOK + "-7"),
    ("a full-width U", full_width(LP[:14] + "U")),
    ("a character outside the alphabet", LP[:14] + "#"),
]
bad_typed, bad_url = [], []
for label, v in NOT_CODES:
    r = col.post("/c", {"code": v})
    if r.status != 422 or page_problems(r) or 'name="code"' not in r.text:
        bad_typed.append("%s %r: %d %r" % (label, v, r.status, page_problems(r)))
    r = col.get("/c/" + urllib.parse.quote(v, safe=""))
    if not refused(r):
        bad_url.append("%s %r: %d" % (label, v, r.status))
t.ok(not bad_typed, "POST /c with U, 14 or 16 characters or a stray sign: 422, the entry form again",
     "\n".join(bad_typed))
t.ok(not bad_url, "GET /c/<the same>: the refusal page", "\n".join(bad_url))
r = col.post("/c", {"code": LP})
t.eq((r.status, r.headers.get("location")), (303, "/c/%s?lang=zh" % LP), "the plain code typed at /c: 303")
# Spaces are ignored, but a 16th character is a 16th character wherever it is.
padded = LP + " " * 113 + "X"
r = col.post("/c", {"code": padded})
t.ok(r.status == 422, "a 16th character typed after 113 spaces (past byte 128): still 422, not cut off",
     "status %d location %r" % (r.status, r.headers.get("location")))

# ---- identical refusals ----
PART = text_codes[2]          # rates b1 only, then is refused for b1 and b4
r = col.post("/c/%s/%s" % (plain(PART), TOK["b1"]), answers())
t.eq(r.status, 303, "a second code rates one unit: 303")
cases = {
    "an invalid code": ["/c/" + plain(NOT_ISSUED), "/c/%s/%s" % (plain(NOT_ISSUED), TOK["b1"])],
    "a used-up code": ["/c/" + WP, "/c/%s/%s" % (WP, TOK["b2"])],
    "a valid code, unit outside its scope": ["/c/%s/%s" % (plain(PART), TOK["b4"])],
    "a valid code, a unit it already rated": ["/c/%s/%s" % (plain(PART), TOK["b1"])],
    "a valid code, a unit token that does not exist": ["/c/%s/zzzzzzzz" % plain(PART)],
    "a valid code of a closed round": ["/c/" + plain(CLOSED_CODE), "/c/%s/%s" % (plain(CLOSED_CODE), TOK["win"])],
}
for label, paths in cases.items():
    diffs = []
    for p in paths:
        for lang in ("zh", "en"):
            url = p + ("?lang=en" if lang == "en" else "")
            got = [("GET", col.get(url))]
            if p.count("/") == 3:
                body = urllib.parse.urlencode(answers() + [("ft", "A" * 34)])
                got.append(("POST", col.request("POST", url, body=body, headers=FORM_CT)))
            for method, r in got:
                if not refused(r, lang):
                    diffs.append("%s %s: %d, %d bytes (want %d, %d bytes)" %
                                 (method, url, r.status, len(r.body), REF[lang].status, len(REF[lang].body)))
    t.ok(not diffs, "%s: same status and byte-identical body as an invalid code (zh, en; GET, POST)" % label,
         "\n".join(diffs))
t.eq(len(ballots(grp="党员")), len(SCOPE_ZB) + 1, "none of the refused POSTs stored a ballot")

# ---- replay: 200 racing requests for one code ----
RACE = issue("rc", "复测组", "zb", 1).stdout.strip()
ISSUED.append(RACE)
RP = plain(RACE)
N = len(SCOPE_ZB)
unit_paths = ["/c/%s/%s" % (RP, TOK[u]) for u in SCOPE_ZB]
jobs = []
for i in range(200):
    if i < 140:
        jobs.append(("post", unit_paths[i % N], i))          # its own form token
    elif i < 160:
        jobs.append(("post", unit_paths[(i - 140) % N], i - 140))   # reuses job i-140's token
    elif i < 180:
        jobs.append(("get", "/c/" + RP, None))
    else:
        jobs.append(("get", unit_paths[i % N], None))
tokens = [None] * 140
lock = threading.Lock()


def fetch(i):
    tok = col.form_token(unit_paths[i % N])
    with lock:
        tokens[i] = tok


fetchers = [threading.Thread(target=fetch, args=(i,)) for i in range(140)]
for th in fetchers:
    th.start()
for th in fetchers:
    th.join()
t.ok(all(tokens), "140 form tokens fetched for the code's %d units before any ballot" % N,
     "%d missing" % tokens.count(None))
results = [None] * len(jobs)
barrier = threading.Barrier(len(jobs))


def race(k):
    kind, p, ti = jobs[k]
    try:
        barrier.wait(timeout=60)
        if kind == "post":
            body = urllib.parse.urlencode(answers() + [("ft", tokens[ti] or "")])
            results[k] = col.request("POST", p, body=body, headers=FORM_CT)
        else:
            results[k] = col.get(p)
    except Exception as e:  # a reset or timeout is a failure too
        results[k] = e


threads = [threading.Thread(target=race, args=(k,)) for k in range(len(jobs))]
for th in threads:
    th.start()
for th in threads:
    th.join()
errors = [(jobs[k][:2], repr(r)) for k, r in enumerate(results) if not isinstance(r, harness.Reply)]
t.ok(not errors, "all 200 requests were answered", errors[:5])
replies = [(jobs[k], r) for k, r in enumerate(results) if isinstance(r, harness.Reply)]
stored_303 = sorted(j[1] for j, r in replies if j[0] == "post" and r.status == 303)
t.eq(stored_303, sorted(unit_paths), "exactly one POST per unit got 303")
odd = ["%s %s: %d" % (j[0], j[1], r.status) for j, r in replies if j[0] == "post" and r.status != 303
       and not refused(r) and r.status != 409]
t.ok(not odd, "every other POST got the refusal page or 409", "\n".join(odd[:10]))
five = ["%s %s: %d" % (j[0], j[1], r.status) for j, r in replies if r.status >= 500]
t.ok(not five, "no request got a 5xx", "\n".join(five[:10]))
odd = ["%s: %d" % (j[1], r.status) for j, r in replies if j[0] == "get" and r.status != 200 and not refused(r)]
t.ok(not odd, "every GET got its page (200) or the refusal page", "\n".join(odd[:10]))
t.eq(sorted(u for u, _, _ in ballots(grp="复测组")), sorted(SCOPE_ZB), "ballots: exactly one per unit for the code")
t.eq(sorted(q("SELECT unit, n FROM ballot_counts WHERE grp = '复测组'")), sorted((u, 1) for u in SCOPE_ZB),
     "ballot_counts: 1 per unit")
t.eq(q("SELECT sum(n) FROM counts WHERE grp = '复测组'")[0][0], N * len(QUESTIONS),
     "counts: one per question per unit")
t.eq(sorted(u for (u,) in q("SELECT unit FROM code_uses WHERE hash = ?", code_hash(RACE))), sorted(SCOPE_ZB),
     "code_uses: one row per unit")
t.ok(refused(col.get("/c/" + RP)), "the raced code is used up now: refusal page")

# ---- no code anywhere, after all that ----
d = dump()
t.eq(leaks(d), [], "after the ballots, the database still holds no code text")
t.eq(leaks(col.log_text()), [], "the collector's log holds no code")

rc = col.stop()
t.eq(rc, 0, "SIGTERM: the collector exits 0")
reports = harness.sanitizer_reports(col.log_text())
t.ok(not reports, "no sanitizer report in the collector's log", "\n".join(reports[:20]))

# ---- throttling: refusals cost the address, and a valid code does not leak through ----
tc = w.collector("--code-limit", "10,0.5")
FRESH = text_codes[3]
misses = [tc.get("/c/%s%04d" % ("Z" * 11, i)) for i in range(12)]
t.ok(all(refused(r) for r in misses[:10]), "10 invalid codes from one address: the refusal page each time",
     [r.status for r in misses[:10]])
t.ok(all(r.status == 429 for r in misses[10:]) and all(r.headers.get("retry-after", "").isdigit()
                                                      for r in misses[10:]),
     "the 11th and 12th: 429 with Retry-After", [(r.status, r.headers.get("retry-after")) for r in misses[10:]])
t.ok(not page_problems(misses[-1]), "... a readable page", page_problems(misses[-1]))
r = tc.get("/c/" + plain(FRESH))
r2 = tc.get("/c/%s/%s" % (plain(FRESH), TOK["b1"]))
t.ok(r.status == 429 and r2.status == 429 and r.body == misses[-1].body,
     "then a VALID code gets the same 429 too (the bucket does not tell codes apart)",
     "status %d / %d" % (r.status, r2.status))
time.sleep(2.6)
r = tc.get("/c/" + plain(FRESH))
t.ok(r.status == 200 and "/c/%s/" % plain(FRESH) in r.text, "after ~2.6 s (rate 0.5/s) one try works again",
     "status %d" % r.status)
rc = tc.stop()
reports = harness.sanitizer_reports(tc.log_text())
t.ok(rc == 0 and not reports, "the second collector exits 0 without sanitizer reports", "\n".join(reports[:20]))
t.done()
