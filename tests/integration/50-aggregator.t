#!/usr/bin/python3
"""The aggregator daemon: closing rounds on time, and its tally page.

Two rounds run side by side: a long one (the tally page is checked on it) and
a short one whose closing time is a few seconds ahead, which the aggregator
(--tick 1) must close on its own, writing round.closed to the ledger, after
which the collector refuses its ballots with 410.
"""
import html
import json
import os
import re
import sqlite3
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import Tap, Workspace, sanitizer_reports  # noqa: E402

t = Tap()
w = Workspace()

ORG = """id,parent,kind,name_zh,name_en
univ,,committee,中共测试大学委员会,Party Committee of Test University
ga,univ,general_branch,文学院党总支,School of Letters General Branch
ba1,ga,branch,文学院教工党支部,Letters Faculty Branch
ba2,ga,branch,"文学院""本科生""党支部",Letters <Undergraduate> Branch
gb,univ,general_branch,物理学院党总支,School of Physics General Branch
bb1,gb,branch,物理学院教工党支部,Physics Faculty Branch
bb2,gb,branch,物理学院研究生党支部,Physics Graduate Branch
"""
QS = ["leadership", "members", "mechanism", "performance", "reputation", "overall"]


def run_ok(*args):
    r = w.pingyi(*args)
    t.ok(r.returncode == 0, "pingyi %s" % " ".join(args), r.stderr)
    return r


def states():
    r = w.pingyi("round", "list")
    return {f[0]: f[1] for f in (l.split() for l in r.stdout.splitlines()[1:]) if len(f) >= 2}


def ballot(overall):
    return [(q, "s" if q != "overall" else overall) for q in QS]


run_ok("init")
run_ok("units", "import", w.write("org.csv", ORG))
units = {}
for line in w.pingyi("units", "list", "--format", "csv").stdout.lstrip("\ufeff").splitlines()[1:]:
    f = line.split(",")
    units[f[0]] = "/u/" + f[5]
run_ok("round", "create", "long", "--form", "branch", "--scope", "ga", "--closes", "+7d",
       "--title-zh", "文学院党支部测评", "--title-en", "Letters branch appraisal")
run_ok("round", "open", "long")

col = w.collector()
agg = w.aggregator("--tick", "1")

# The short round is created once both daemons run, so its few seconds are
# spent on ballots, not on start-up.
closes_at = int(time.time()) + 4
run_ok("round", "create", "short", "--form", "branch", "--scope", "gb", "--closes", "@%d" % closes_at,
       "--title-zh", "物理学院党支部测评", "--title-en", "Physics branch appraisal")
run_ok("round", "open", "short")

sent = {"ba1": ["s", "s", "s", "s", "b", "d"], "ba2": ["s", "s", "b"],
        "bb1": ["s", "s", "s", "b", "b", "u"], "bb2": ["d", "s"]}
codes = {u: [col.post(units[u], ballot(a)).status for a in answers] for u, answers in sent.items()}
t.eq(codes, {u: [303] * len(a) for u, a in sent.items()}, "ballots for both rounds are taken (303)")
if time.time() < closes_at - 0.5:
    t.eq(states().get("short"), "open", "the short round is still open before its time")

# ---- the tally page ------------------------------------------------------------


def row(page, name):
    """The cells of the table row of the unit called name (None if absent)."""
    for m in re.finditer(r'<tr[^>]*><th scope="row">(.*?)</th>(.*?)</tr>', page, re.S):
        if html.unescape(m.group(1)) == name:
            return re.findall(r"<td[^>]*>(.*?)</td>", m.group(2), re.S)
    return None


rep = agg.get("/")
page = rep.text
t.eq(rep.status, 200, "GET / answers 200")
t.ok(rep.headers.get("content-type", "").startswith("text/html"), "GET / is HTML", rep.headers)
t.ok('lang="zh' in page and "文学院党支部测评" in page, "the page is in Chinese by default, naming the long round")
cells = row(page, "文学院教工党支部")
# ba1: 6 valid, 4 s + 1 b satisfied -> 83.33 %, score (400 + 75) / 6 = 79.2
t.eq(cells[:4] if cells else cells, ["6", "6", "83.33%", "79.2"], "ba1's row shows its ballots, rate and score")
cells = row(page, "文学院\"本科生\"党支部")
t.ok(cells is not None and cells[2:4] == ["—", "—"] and not any(re.search(r"\d%|\d\.\d", c) for c in cells),
     "ba2 (3 ballots, under k) shows — and no figure", cells)
cells = row(page, "文学院党总支")
# ga is rated itself (no ballots: under k, 未定); its subtree pools ba1 and ba2
# (9 valid), but shown next to ba1's figures it would give away ba2's three
# ballots by difference (DESIGN.md §2), so it is hidden too.
t.eq(cells, ["0", "0", "—", "—", "未定", "9", "9", "—", "—"],
     "ga's own figures are hidden, and so is its subtree, which would reveal ba2 by difference")
t.ok("文学院&quot;本科生&quot;党支部" in page or "文学院&#34;本科生&#34;党支部" in page, "unit names are HTML-escaped")

for what, headers, path in (("?lang=en", {}, "/?lang=en"), ("Accept-Language: en", {"Accept-Language": "en-US,en;q=0.9"}, "/")):
    r = agg.get(path, headers=headers)
    t.ok(r.status == 200 and 'lang="en"' in r.text and "Letters branch appraisal" in r.text
         and "Letters &lt;Undergraduate&gt; Branch" in r.text and "文学院教工党支部" not in r.text,
         "GET / with %s is in English" % what, r.text[:400])

csp = rep.headers.get("content-security-policy", "")
t.ok("default-src 'none'" in csp, "the page has a Content-Security-Policy", csp)
t.eq(rep.headers.get("x-content-type-options"), "nosniff", "the page has X-Content-Type-Options: nosniff")
t.eq(rep.headers.get("cache-control"), "no-store", "the page has Cache-Control: no-store")

r = agg.post("/", {"x": "1"})
t.ok(r.status == 405 and "GET" in r.headers.get("allow", ""), "POST / answers 405 with Allow", (r.status, r.headers))
t.eq(agg.get("/nope").status, 404, "GET /nope answers 404")
r = agg.get("/healthz")
t.eq(r.status, 200, "GET /healthz answers 200")

# ---- closing on time ------------------------------------------------------------
deadline = time.time() + 15
while states().get("short") != "closed" and time.time() < deadline:
    time.sleep(0.2)
t.eq(states(), {"long": "open", "short": "closed"}, "the aggregator closed the short round on time, not the long one")

db = sqlite3.connect("file:%s?mode=ro" % w.db, uri=True)
closed_at = db.execute("SELECT closed_at FROM rounds WHERE id = 'short'").fetchone()[0]
entries = db.execute("SELECT kind, round, body FROM ledger ORDER BY seq").fetchall()
db.close()
t.ok(closed_at is not None and closed_at >= closes_at, "closed at or after its closing time",
     (closed_at, closes_at))
t.eq([(k, r) for k, r, _ in entries], [("round.opened", "long"), ("round.opened", "short"), ("round.closed", "short")],
     "the ledger has round.opened and round.closed")
r = w.pingyi("ledger", "verify")
t.ok(r.returncode == 0 and "ledger intact: 3 entries" in r.stdout, "ledger verify passes", r.stdout + r.stderr)
try:
    body = json.loads(entries[-1][2])
except (ValueError, IndexError) as e:
    body = {"error": str(e)}
r = w.pingyi("tally", "short", "--format", "json")
t.ok(r.returncode == 0 and json.loads(r.stdout) == body, "round.closed holds the round's final tally",
     r.stdout[:500] + "\n" + str(body)[:500])
figs = {u.get("id"): (u.get("own") or {}).get("ballots") for u in body.get("units", [])}
t.eq(figs, {"gb": 0, "bb1": 6, "bb2": 2}, "the final tally lists the scope's units and counts every ballot sent")
t.eq(body.get("state"), "closed", "the final tally says closed")

r = col.post(units["bb1"], ballot("s"))
t.eq(r.status, 410, "the collector answers 410 to a ballot for the closed round")
t.eq(col.get(units["bb1"]).status, 410, "the collector answers 410 for the closed round's form")
t.eq(col.get(units["ba1"]).status, 200, "the long round's form is still served")
page = agg.get("/").text
t.ok("物理学院党支部测评" not in page and "文学院党支部测评" in page, "GET / lists only the open round now")

# ---- stopping ------------------------------------------------------------------------
t.eq(agg.stop(), 0, "the aggregator exits 0 on SIGTERM")
log = agg.log_text()
t.ok("closed 1 round" in log, "the aggregator logged the closing", log)
t.eq(sanitizer_reports(log), [], "no sanitizer report in the aggregator's log")
t.eq(col.stop(), 0, "the collector exits 0 on SIGTERM")
t.eq(sanitizer_reports(col.log_text()), [], "no sanitizer report in the collector's log")
t.done()
