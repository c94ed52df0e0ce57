#!/usr/bin/python3
"""The form in a real browser: tests/browser/form.test.js, against a collector.

This script sets up what a person would find: an organisation, an open poster
round (the QR-code flow, /u/<token>) and a code round with ballot codes issued
(/c), and a running collector. It then runs the browser test (Debian's
Chromium driven by playwright-core, at phone sizes, JavaScript off), relays its
TAP lines, and checks that the database holds exactly the ballots and comments
the browser submitted. Screenshots go to tests/artifacts/browser/.

Node, Chromium and playwright-core are installed by `make test` (tools/deps.sh
test, then npm ci in tests/browser): when one is missing this test fails, it
does not skip.
"""
import collections
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import ROOT, Tap, Workspace, sanitizer_reports  # noqa: E402

t = Tap()
BROWSER_DIR = os.path.join(ROOT, "tests", "browser")
CHROMIUM = "/usr/bin/chromium"

# ---- what the browser test needs ----------------------------------------------
node = shutil.which("node")
have = [
    t.ok(node is not None, "node is installed (make test installs nodejs)"),
    t.ok(os.access(CHROMIUM, os.X_OK), "%s is installed (make test installs chromium)" % CHROMIUM),
    t.ok(os.path.isfile(os.path.join(BROWSER_DIR, "node_modules", "playwright-core", "package.json")),
         "playwright-core is installed in tests/browser (make test runs npm ci --prefix tests/browser)"),
]
if not all(have):
    t.done()

# ---- the organisation, two rounds, codes --------------------------------------
w = Workspace()
UNITS = """id,parent,kind,name_zh,name_en
univ,,committee,中共测试大学委员会,Party Committee of Test University
g1,univ,general_branch,计算机科学与技术学院党总支,School of Computer Science and Technology General Branch
b11,g1,branch,计算机科学与技术学院教工第一党支部（人工智能与大数据系）,"Computer Science Faculty Branch No. 1 (Artificial Intelligence & Big Data)"
b12,g1,branch,计算机学院研究生党支部,Computing Graduate Branch
g2,univ,general_branch,马克思主义学院党总支,School of Marxism General Branch
b21,g2,branch,马克思主义学院本科生“红色”党支部,"School of Marxism Undergraduate ""Red"" Branch"
b22,g2,branch,马克思主义学院研究生党支部,School of Marxism Graduate Branch
"""
TITLES = ["--title-zh", "2026年春季党支部工作群众满意度测评", "--title-en", "Spring 2026 Party Branch Appraisal"]
CODE_UNITS = ["g2", "b21", "b22"]


def run_ok(*args):
    r = w.pingyi(*args)
    t.ok(r.returncode == 0, "pingyi %s" % " ".join(args[:3]), r.stderr)
    return r


run_ok("init", "--base-url", "https://pingyi.example.edu.cn")
run_ok("units", "import", w.write("units.csv", UNITS))
run_ok("round", "create", "poster", "--form", "branch", "--scope", "g1", *TITLES)
run_ok("round", "open", "poster")
run_ok("round", "create", "meeting", "--form", "branch", "--scope", "g2", "--codes", *TITLES)
run_ok("round", "open", "meeting")
r = run_ok("codes", "issue", "meeting", "--group", "教工", "--scope", "g2", "--count", "4")
codes = re.findall(r"^[0-9A-Z]{5}-[0-9A-Z]{5}-[0-9A-Z]{5}$", r.stdout, re.M)
t.eq(len(codes), 4, "four codes issued")
tokens = {}
for line in run_ok("units", "list", "--format", "csv").stdout.lstrip("\ufeff").splitlines()[1:]:
    cells = line.split(",")
    tokens[cells[0]] = cells[-2]
TOKEN_UNIT = {v: k for k, v in tokens.items()}

col = w.collector()

# ---- the browser test ----------------------------------------------------------
result = w.path("submitted.json")
env = dict(os.environ, PINGYI_URL="http://127.0.0.1:%d" % col.port, PINGYI_POSTER=tokens["b11"],
           PINGYI_CODES=",".join(codes), PINGYI_CODE_UNITS=str(len(CODE_UNITS)), PINGYI_RESULT=result)
proc = subprocess.Popen([node, os.path.join(BROWSER_DIR, "form.test.js")], cwd=ROOT, env=env,
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
plan = None
relayed = 0
try:
    for line in proc.stdout:
        line = line.rstrip("\n")
        m = re.match(r"^(not ok|ok) \d+ - (.*)$", line)
        if m:
            relayed += 1
            t.ok(m.group(1) == "ok", "browser: " + m.group(2))
        elif re.match(r"^1\.\.\d+$", line):
            plan = int(line[3:])
        else:
            print(line if line.startswith("#") else "# " + line, flush=True)
    rc = proc.wait(timeout=600)
except subprocess.TimeoutExpired:
    proc.kill()
    rc = proc.wait()
t.ok(rc == 0 and plan == relayed and relayed > 0, "the browser test ran all its %s checks and passed" % plan,
     "exit %s, %d of %s results seen" % (rc, relayed, plan))

# ---- the database holds what the browser sent ----------------------------------
submitted = json.load(open(result)) if os.path.exists(result) else []
db = sqlite3.connect(w.db)


def multiset(rows):
    return collections.Counter(rows)


poster = [s for s in submitted if s["flow"] == "poster"]
by_code = [s for s in submitted if s["flow"] == "code"]
t.eq(len(poster), 4, "four poster ballots were submitted")
t.eq(len(by_code), 4 * len(CODE_UNITS), "every code rated every unit")
got = multiset((u, json.dumps(json.loads(a), sort_keys=True))
               for u, a in db.execute("SELECT unit, answers FROM ballots WHERE round = 'poster'"))
want = multiset(("b11", json.dumps(s["answers"], sort_keys=True)) for s in poster)
t.eq(got, want, "the poster round's ballots are the answers tapped, for the unit shown")
got = multiset(db.execute("SELECT unit, body, complaint FROM comments WHERE round = 'poster'"))
want = multiset(("b11", s["comment"], 1) for s in poster)
t.eq(got, want, "the comments are stored exactly as typed, as complaints")
got = multiset((u, g, json.dumps(json.loads(a), sort_keys=True))
               for u, g, a in db.execute("SELECT unit, grp, answers FROM ballots WHERE round = 'meeting'"))
want = multiset((TOKEN_UNIT.get(s["token"]), "教工", json.dumps(s["answers"], sort_keys=True)) for s in by_code)
t.eq(got, want, "the code round's ballots are the answers tapped, unit by unit, in the code's group")
t.eq(db.execute("SELECT count(*) FROM code_uses").fetchone()[0], 4 * len(CODE_UNITS),
     "each code is spent once per unit")
db.close()

col.stop()
t.eq(sanitizer_reports(col.log_text()), [], "no sanitizer report in the collector's log")
t.done()
