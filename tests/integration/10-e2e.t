#!/usr/bin/python3
"""End to end: QR code -> form -> ballot -> tally -> closed round in the ledger.

The headline path of the product, driven through the real programs: a
generated organisation is imported, two rounds open, every unit's QR code is
decoded with a real decoder (zbarimg) and followed to the collector, a few
hundred random ballots go in through HTTP, and the tally printed by
`pingyi tally` is compared field by field with one computed here,
independently, from the ballots this script sent and DESIGN.md §2 (it never
reads the database for that). Closing the round must put the same tally in the
ledger and make the collector answer 410.
"""
import csv
import html
import io
import json
import os
import random
import re
import sqlite3
import subprocess
import sys
import urllib.parse
from fractions import Fraction

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import BIN, ROOT, Tap, Workspace, diff, sanitizer_reports  # noqa: E402

t = Tap()
w = Workspace()

# ---- the organisation ----------------------------------------------------------
# (id, parent, kind, name_zh, name_en); names with commas, quotes and & exercise
# CSV quoting on import and HTML escaping on the pages.
ORG = [
    ("univ", "", "committee", "中共测试大学委员会", "Party Committee of Test University"),
    ("g1", "univ", "general_branch", "计算机学院党总支", "School of Computing General Branch"),
    ("b11", "g1", "branch", "计算机学院教工第一党支部", "Computing Faculty Branch No. 1"),
    ("b12", "g1", "branch", "计算机学院\"教工\"第二党支部", "Computing Faculty Branch No. 2"),
    ("b13", "g1", "branch", "计算机学院本科生党支部，一年级", "Computing Undergraduates, Year 1"),
    ("b14", "g1", "branch", "计算机学院研究生党支部", "Computing Graduate Branch"),
    ("g2", "univ", "general_branch", "数学与统计学院党总支", "Mathematics & Statistics General Branch"),
    ("b21", "g2", "branch", "数学系教工党支部, 统计系", "Mathematics Faculty Branch, Statistics"),
    ("b22", "g2", "branch", "数学学院本科生党支部", "Mathematics Undergraduate Branch"),
    ("b23", "g2", "branch", "数学学院研究生党支部", "Mathematics Graduate Branch"),
    ("b24", "g2", "branch", "统计学院\"博士生\",党支部", "Statistics \"PhD\" Branch"),
    ("g3", "univ", "general_branch", "机关党总支", "Administration General Branch"),
    ("b31", "g3", "branch", "党政办公室党支部", "President's Office Branch"),
    ("b32", "g3", "branch", "组织人事党支部", "Organisation and Personnel Branch"),
    ("b33", "g3", "branch", "学生工作党支部", "Student Affairs Branch"),
    ("b34", "g3", "branch", "<财务处> & 审计处党支部", "Finance & Audit Branch"),
    ("dept", "univ", "department", "后勤管理处", "Logistics Management Office"),
    ("w1", "dept", "window", "第一食堂\"风味\"窗口", "No. 1 Canteen \"Flavours\" Window"),
    ("w2", "dept", "window", "宿舍报修服务台，东区", "Dormitory Repair Desk, East"),
]
BY_ID = {u[0]: u for u in ORG}
POS = {u[0]: i for i, u in enumerate(ORG)}
CHILDREN = {u[0]: [c[0] for c in ORG if c[1] == u[0]] for u in ORG}

BRANCH_QS = ["leadership", "members", "mechanism", "performance", "reputation", "overall"]
WINDOW_QS = ["attitude", "efficiency", "openness", "environment", "integrity", "overall"]
ROUNDS = {
    "e2e-branch": {"form": "branch", "qs": BRANCH_QS, "kinds": {"general_branch", "branch"}},
    "e2e-window": {"form": "window", "qs": WINDOW_QS, "kinds": {"window"}},
}
SATISFIED = {"s": True, "b": True, "d": False}
POINTS = {"s": 100, "b": 75, "d": 0}
TARGET, K, VETO = Fraction(95, 100), 5, Fraction(1, 3)

# How each rated unit's overall question is answered: either a fixed list of
# answers or (weights, n) drawn at random. Chosen so the units land in
# different grades, including the boundaries.
PROFILES = {
    "g1": ({"s": 97, "b": 3}, 22),                    # 先进 territory
    "b11": (["s"] * 25, None),                        # all 满意: 先进
    "b12": ({"s": 55, "b": 35, "d": 7, "u": 3}, 60),  # around the target
    "b13": ({"s": 45, "b": 30, "d": 20, "u": 5}, 50), # below the target
    "b14": ({"s": 25, "b": 10, "d": 60, "u": 5}, 30), # > 1/3 不满意: veto
    "g2": (["s"] * 3, None),                          # 3 ballots: hidden, 未定
    "b21": ({"u": 55, "s": 35, "b": 10}, 30),         # many 不了解 on overall
    "b22": (["u"] * 6, None),                         # ballots but no valid answer
    "b23": ([], None),                                # no ballot at all
    "b24": (["s"] * 9 + ["d"], None),                 # rate exactly 0.90: 较好
    "g3": (["s"] * 5 + ["u"] * 2, None),              # exactly k valid: shown
    "b31": (["s"] * 4 + ["u"] * 3, None),             # k-1 valid: hidden
    "b32": (["s"] * 18 + ["b", "d"], None),           # rate exactly 0.95, score 93.75: 先进
    "b33": (["b"] * 8 + ["d"] * 2, None),             # rate exactly 0.80: 一般
    "b34": (["b"] * 10, None),                        # rate 1 but score 75: 较好
    "w1": ({"s": 80, "b": 15, "d": 5}, 40),
    "w2": ({"s": 60, "b": 20, "d": 10, "u": 10}, 35),
}
OTHER_WEIGHTS = {"s": 60, "b": 25, "d": 10, "u": 5}  # the non-overall questions

random.seed(20260512)


def pick(weights):
    keys = sorted(weights)
    return random.choices(keys, [weights[k] for k in keys])[0]


def org_csv():
    out = io.StringIO()
    wr = csv.writer(out, lineterminator="\r\n")
    wr.writerow(["id", "parent", "kind", "name_zh", "name_en"])
    for u in ORG:
        wr.writerow(u)
    return out.getvalue()


def run_ok(*args):
    r = w.pingyi(*args)
    t.ok(r.returncode == 0, "pingyi %s" % " ".join(args), r.stderr)
    return r


def pingyi_bytes(*args):
    """Run the CLI keeping its output as bytes (harness.pingyi decodes text,
    which turns CRLF into LF and would hide a missing CR)."""
    return subprocess.run([os.path.join(BIN, "pingyi"), "--db", w.db] + list(args),
                          cwd=ROOT, capture_output=True, timeout=120)


def round_of(unit):
    kind = BY_ID[unit][2]
    for rid, spec in ROUNDS.items():
        if kind in spec["kinds"]:
            return rid
    return None


# ---- 1. workspace, collector, base URL ----------------------------------------
run_ok("init")
col = w.collector()
base = "http://127.0.0.1:%d" % col.port
run_ok("init", "--base-url", base)

# ---- 2. organisation ----------------------------------------------------------
run_ok("units", "import", w.write("org.csv", org_csv()))
r = pingyi_bytes("units", "list", "--format", "csv")
t.ok(r.returncode == 0 and r.stdout.startswith(b"\xef\xbb\xbf") and r.stdout.endswith(b"\r\n"),
     "units list --format csv: BOM and CRLF", r.stderr)
r.stdout = r.stdout.decode("utf-8").replace("\r\n", "\n")
listed = list(csv.DictReader(io.StringIO(r.stdout.lstrip("\ufeff"))))
t.eq([u["id"] for u in listed], [u[0] for u in ORG], "units list has every unit in import order")
t.eq([(u["parent"], u["kind"], u["name_zh"], u["name_en"]) for u in listed],
     [u[1:] for u in ORG], "names with commas and quotes survive the CSV round trip")
URL = {u["id"]: u["url"] for u in listed}
TOKEN = {u["id"]: u["token"] for u in listed}
t.ok(all(URL[i] == "%s/u/%s" % (base, TOKEN[i]) for i in URL), "every url is BASE_URL/u/TOKEN",
     "\n".join(URL.values()))

# ---- 3. rounds ------------------------------------------------------------------
run_ok("round", "create", "e2e-branch", "--form", "branch", "--series", "党支部测评",
       "--title-zh", "2026年上半年党支部工作测评", "--title-en", "Branch appraisal 2026 H1", "--closes", "+7d")
run_ok("round", "open", "e2e-branch")
run_ok("round", "create", "e2e-window", "--form", "window",
       "--title-zh", "2026年上半年服务窗口测评", "--title-en", "Window appraisal 2026 H1")
run_ok("round", "open", "e2e-window")
RATED = [u[0] for u in ORG if round_of(u[0])]
shown = {}
for line in run_ok("units", "list").stdout.splitlines():
    uid = re.search(r"\[([^,\]]+),", line).group(1)
    shown[uid] = line.split("/u/" + TOKEN[uid], 1)[1]
t.eq(shown, {u[0]: "  open round: %s" % round_of(u[0]) if round_of(u[0]) else "  (in no open round)" for u in ORG},
     "units list (table) names each unit's open round after its URL, or says it is in none")

# ---- 4. QR codes, decoded by a real decoder -----------------------------------
qrdir = w.path("qr")
r = run_ok("qr", "--all", "--out", qrdir)
printed = {}
for line in r.stdout.splitlines():
    f = line.split("\t")
    if len(f) == 3:
        printed[f[0]] = (f[1], f[2])
t.eq(sorted(printed), sorted(BY_ID), "qr --all prints one line per unit")
decoded = {}
for uid in BY_ID:
    png = os.path.join(qrdir, uid + ".png")
    z = subprocess.run(["zbarimg", "--quiet", "--raw", png], capture_output=True, text=True)
    decoded[uid] = z.stdout.strip() if z.returncode == 0 else "zbarimg failed (%d): %s" % (z.returncode, z.stderr)
bad = {u: (decoded[u], URL[u]) for u in BY_ID if decoded[u] != URL[u]}
t.ok(not bad, "every unit's PNG decodes (zbarimg) to its url from units list", bad)
t.ok(all(printed.get(u, ("",))[0] == URL[u] for u in BY_ID), "qr prints the same urls it encoded")

# ---- 5. following the decoded URLs ----------------------------------------------
PATH = {}
for uid in BY_ID:
    parts = urllib.parse.urlsplit(decoded[uid])
    PATH[uid] = parts.path
    if parts.netloc != "127.0.0.1:%d" % col.port:
        t.ok(False, "decoded url of %s points at the collector" % uid, decoded[uid])
form_problems = []
for uid, (_, parent, kind, name_zh, _) in BY_ID.items():
    rep = col.get(PATH[uid])
    rid = round_of(uid)
    if rid is None:
        if rep.status != 404 or "<h1>" not in rep.text:
            form_problems.append("%s (%s): %d, want a 404 page" % (uid, kind, rep.status))
        continue
    page = html.unescape(rep.text)
    radios = re.findall(r'<input type="radio" name="([a-z_]+)"[^>]*value="([a-z])"', rep.text)
    want = [(q, lv) for q in ROUNDS[rid]["qs"] for lv in "sbdu"]
    if rep.status != 200:
        form_problems.append("%s: %d, want 200" % (uid, rep.status))
    elif name_zh not in page:
        form_problems.append("%s: the page does not name %s" % (uid, name_zh))
    elif "<form" not in rep.text:
        form_problems.append("%s: no <form" % uid)
    elif "<财务处>" in rep.text:
        form_problems.append("%s: a unit name is not escaped" % uid)
    elif radios != want:
        form_problems.append("%s: radios %r, want %r" % (uid, radios, want))
t.ok(not form_problems, "rated units' forms (200, name, <form, every radio); committee and department 404",
     "\n".join(form_problems))

# ---- 6. ballots through the collector -----------------------------------------
COMMENTS = [  # (unit, comment, complaint)
    ("b12", "希望多组织一些主题党日活动，谢谢！", False),
    ("b12", "<script>alert(1)</script> & \"引号\" 'single'", False),
    ("w1", "饭菜价格偏高，排队时间太长。\r\n请改进。", True),
    ("w2", "报修后三天没人来。", True),
]
ballots = []  # (unit, {question: level}, comment or None, complaint, english)
for uid in RATED:
    prof, n = PROFILES[uid]
    overall = list(prof) if n is None else [pick(prof) for _ in range(n)]
    for a in overall:
        qs = ROUNDS[round_of(uid)]["qs"]
        answers = {q: pick(OTHER_WEIGHTS) for q in qs[:-1]}
        answers["overall"] = a
        ballots.append([uid, answers, None, False, False])
random.shuffle(ballots)
for i, b in enumerate(ballots):
    b[4] = i % 17 == 0  # some raters read English
for uid, text, complaint in COMMENTS:
    for b in ballots:
        if b[0] == uid and b[2] is None and b[1]["overall"] in "sbd":
            b[2], b[3] = text, complaint
            break
t.ok(len(ballots) >= 300, "%d ballots to send (at least 300)" % len(ballots))

post_problems, done_problems = [], []
for uid, answers, comment, complaint, english in ballots:
    fields = [(q, answers[q]) for q in ROUNDS[round_of(uid)]["qs"]]
    if comment is not None:
        fields.append(("comment", comment))
        if complaint:
            fields.append(("complaint", "1"))
    headers = {"Accept-Language": "en-GB,en;q=0.9"} if english else {}
    rep = col.post(PATH[uid], fields, headers=headers)
    want_loc = "%s/done?lang=%s" % (PATH[uid], "en" if english else "zh")
    if rep.status != 303 or rep.headers.get("location") != want_loc:
        post_problems.append("%s: %d Location %r, want 303 %r: %s" % (
            uid, rep.status, rep.headers.get("location"), want_loc, rep.text[:300]))
        continue
    done = col.get(rep.headers["location"])
    thanks = "Thank you" if english else "感谢"
    if done.status != 200 or thanks not in done.text:
        done_problems.append("%s: %d %s" % (uid, done.status, done.text[:200]))
t.ok(not post_problems, "every ballot answered 303 with the /done Location", "\n".join(post_problems[:10]))
t.ok(not done_problems, "every done page answered 200 with thanks", "\n".join(done_problems[:10]))

# ---- 7. the expected tally, computed here from DESIGN.md §2 --------------------


class Counter:
    def __init__(self, qs):
        self.ballots = 0
        self.n = {q: {"s": 0, "b": 0, "d": 0, "u": 0} for q in qs}

    def add(self, other):
        self.ballots += other.ballots
        for q in self.n:
            for lv in self.n[q]:
                self.n[q][lv] += other.n[q][lv]


def fig(ballots, levels):
    """FIG of one question's answer counts, printed as `pingyi tally` should."""
    valid = sum(levels[lv] for lv in SATISFIED)
    out = {"ballots": ballots, "valid": valid, "rate": None, "score": None, "dissatisfied": None, "met": None}
    if valid >= K:
        rate = Fraction(sum(levels[lv] for lv in SATISFIED if SATISFIED[lv]), valid)
        score = Fraction(sum(levels[lv] * POINTS[lv] for lv in POINTS), valid)
        dis = Fraction(levels["d"], valid)
        out.update(rate="%.4f" % float(rate), score="%.2f" % float(score),
                   dissatisfied="%.4f" % float(dis), met=rate >= TARGET)
    return out


def grade(levels):
    valid = sum(levels[lv] for lv in SATISFIED)
    if valid < K:
        return "未定"
    rate = Fraction(levels["s"] + levels["b"], valid)
    score = Fraction(levels["s"] * 100 + levels["b"] * 75, valid)
    if Fraction(levels["d"], valid) > VETO:
        return "后进"
    if rate >= Fraction(95, 100) and score >= 90:
        return "先进"
    if rate >= Fraction(90, 100):
        return "较好"
    if rate >= Fraction(80, 100):
        return "一般"
    return "后进"


EXACT = {}   # unit id -> its exact ranking key (rate, score, valid; negated)


def expected_tally(rid):
    spec = ROUNDS[rid]
    qs = spec["qs"]
    rated = {u[0] for u in ORG if u[2] in spec["kinds"]}
    own = {u: Counter(qs) for u in rated}
    for uid, answers, _, _, _ in ballots:
        if uid in rated:
            own[uid].ballots += 1
            for q in qs:
                own[uid].n[q][answers[q]] += 1

    def ancestors(u):
        p = BY_ID[u][1]
        while p:
            yield p
            p = BY_ID[p][1]

    listed = set(rated)
    for u in rated:
        listed.update(ancestors(u))
    pooled = {}
    for u in rated:
        for a in [u] + list(ancestors(u)):
            pooled.setdefault(a, [Counter(qs), False])
            pooled[a][0].add(own[u])
            if a != u:
                pooled[a][1] = True   # has a rated descendant
    units = []
    for u in rated:
        lv = own[u].n["overall"]
        valid = sum(lv[x] for x in SATISFIED)
        if valid:
            EXACT[u] = (-Fraction(lv["s"] + lv["b"], valid), -Fraction(lv["s"] * 100 + lv["b"] * 75, valid), -valid)

    def walk(u, depth):
        _, parent, kind, name_zh, name_en = BY_ID[u]
        is_rated = u in rated
        sub = pooled.get(u)
        units.append({
            "id": u, "parent": parent or None, "kind": kind, "name_zh": name_zh, "name_en": name_en,
            "depth": depth, "rated": is_rated,
            "own": fig(own[u].ballots, own[u].n["overall"]) if is_rated else None,
            "grade": grade(own[u].n["overall"]) if is_rated else None,
            "subtree": fig(sub[0].ballots, sub[0].n["overall"]) if sub and sub[1] else None,
            "questions": {q: fig(own[u].ballots, own[u].n[q]) for q in qs} if is_rated else None,
            # Poster ballots all belong to 群众, so that one group's figures are the
            # unit's; every rated unit lists every group the round has ballots from.
            "groups": {"群众": fig(own[u].ballots, own[u].n["overall"])} if is_rated else None,
            "rank": None,
            "trend": None,   # no earlier round of the series is closed
        })
        for c in CHILDREN[u]:
            if c in listed:
                walk(c, depth + 1)

    for u in ORG:
        if not u[1] and u[0] in listed:
            walk(u[0], 0)
    hide_by_difference(units)
    rank(units)
    return units


def rank(units):
    """Rank graded units among the units of their kind: by rate, then score,
    then valid answers, best first; fully tied units share a rank."""
    def key(u):
        f = u["own"]
        return (-Fraction(f["rate"]), -Fraction(f["score"]), -f["valid"])
    # Printed figures are rounded; rank on exact fractions recomputed from counts.
    graded = [u for u in units if u["rated"] and u["grade"] != "未定"]
    for kind in {u["kind"] for u in graded}:
        same = [u for u in graded if u["kind"] == kind]
        for u in same:
            u["rank"] = 1 + sum(1 for v in same if EXACT[v["id"]] < EXACT[u["id"]])


def hide_by_difference(units):
    """DESIGN.md §2: no figure under k may be revealed as the difference of
    shown figures. A parent's subtree figure sums the own ballots of every
    rated unit below it; minus every shown figure inside it (a shown subtree
    covers its whole subtree, a shown own figure its unit) it leaves the sum
    of the hidden own figures nothing covers. When that is exactly one
    figure, or several with fewer than k valid answers together, the total
    is hidden too, which can cascade upwards."""
    kids = {u["id"]: [c for c in units if c["parent"] == u["id"]] for u in units}

    def hidden(f):
        return f is not None and f["valid"] > 0 and f["rate"] is None

    def uncovered(u, top):
        if not top and u["subtree"] is not None and u["subtree"]["rate"] is not None:
            return []
        mine = [u["own"]] if u["rated"] and hidden(u["own"]) else []
        return mine + [f for c in kids[u["id"]] for f in uncovered(c, False)]

    changed = True
    while changed:
        changed = False
        for u in units:
            total = u["subtree"]
            if total is None or total["rate"] is None:
                continue
            hid = uncovered(u, True)
            if len(hid) == 1 or (len(hid) > 1 and sum(f["valid"] for f in hid) < K):
                total.update(rate=None, score=None, dissatisfied=None, met=None)
                changed = True


EXPECTED = {rid: expected_tally(rid) for rid in ROUNDS}
# The scenario must really contain what it claims to test.
exp_b = {u["id"]: u for u in EXPECTED["e2e-branch"]}
grades = {u["id"]: u["grade"] for u in EXPECTED["e2e-branch"] + EXPECTED["e2e-window"] if u["rated"]}
t.ok({"先进", "较好", "一般", "后进", "未定"} <= set(grades.values()),
     "the ballots sent produce every grade", grades)
b14 = exp_b["b14"]["own"]
t.ok(b14["dissatisfied"] is not None and Fraction(b14["dissatisfied"]) > VETO, "b14 has more than 1/3 不满意", b14)
t.ok(exp_b["g2"]["own"]["ballots"] == 3 and exp_b["g2"]["own"]["rate"] is None, "g2 has 3 ballots, hidden")
t.ok(exp_b["b21"]["questions"]["overall"]["valid"] * 2 <= exp_b["b21"]["own"]["ballots"],
     "b21 has many 不了解 on overall", exp_b["b21"]["own"])


def tally_json(rid):
    r = w.pingyi("tally", rid, "--format", "json")
    if r.returncode != 0:
        t.ok(False, "pingyi tally %s --format json" % rid, r.stderr)
        return None
    try:
        # Floats kept as printed, so "0.9500" is compared as text.
        return json.loads(r.stdout, parse_float=str)
    except ValueError as e:
        t.ok(False, "tally %s --format json is JSON" % rid, "%s\n%s" % (e, r.stdout[:2000]))
        return None


def check_tally(rid, state):
    got = tally_json(rid)
    if got is None:
        return None
    want_head = {"round": rid, "state": state, "target": "0.9500", "k": K, "previous": None,
                 "groups": ["群众"],
                 "title_zh": {"e2e-branch": "2026年上半年党支部工作测评", "e2e-window": "2026年上半年服务窗口测评"}[rid],
                 "title_en": {"e2e-branch": "Branch appraisal 2026 H1", "e2e-window": "Window appraisal 2026 H1"}[rid],
                 "series": {"e2e-branch": "党支部测评", "e2e-window": ""}[rid]}
    t.ok(not diff({k: got.get(k) for k in want_head}, want_head), "tally %s: round fields (%s)" % (rid, state),
         "\n".join(diff({k: got.get(k) for k in want_head}, want_head)))
    units = got.get("units") or []
    want = EXPECTED[rid]
    t.eq([u.get("id") for u in units], [u["id"] for u in want], "tally %s lists rated units and ancestors in tree order" % rid)
    by_id = {u.get("id"): u for u in units}
    for wu in want:
        gu = by_id.get(wu["id"], {})
        what = "own %s/%s valid, grade %s" % (wu["own"]["ballots"], wu["own"]["valid"], wu["grade"]) \
            if wu["rated"] else "not rated"
        d = diff(gu, wu, wu["id"])
        t.ok(not d, "tally %s, %s (%s): every field" % (rid, wu["id"], what), "\n".join(d))
    return got


for rid in ROUNDS:
    check_tally(rid, "open")

# ---- 8. table and csv ------------------------------------------------------------


def printed_rate(uid):
    """A unit's own rate and score as the csv prints them ("96.67%", "91.25")."""
    answers = [b[1]["overall"] for b in ballots if b[0] == uid]
    valid = sum(1 for a in answers if a != "u")
    # percentages are cut, not rounded, to two decimals: 98.3050...% prints as
    # 98.30%, so a figure never shows as meeting a threshold it misses
    sat = sum(1 for a in answers if a in "sb")
    cut = Fraction(sat * 10000 // valid, 100)
    return ("%d.%02d%%" % (cut.numerator // cut.denominator, cut * 100 % 100),
            "%.2f" % (sum(POINTS.get(a, 0) for a in answers) / valid))


for rid in ROUNDS:
    want = EXPECTED[rid]
    r = pingyi_bytes("tally", rid, "--format", "csv")
    raw = r.stdout if r.returncode == 0 else b""
    t.ok(raw.startswith(b"\xef\xbb\xbf"), "tally %s --format csv starts with the UTF-8 BOM" % rid, r.stderr)
    body = raw[3:].decode("utf-8", "replace")
    t.ok(body.endswith("\r\n") and body.count("\n") == body.count("\r\n") == len(want) + 1,
         "tally %s csv: every line ends with CRLF" % rid, repr(body[:300]))
    rows = list(csv.reader(io.StringIO(body, newline="")))
    t.eq(len(rows) - 1, len(want), "tally %s csv: a header and one row per listed unit" % rid)
    problems = []
    for row, wu in zip(rows[1:], want):
        if row[0] != wu["id"] or row[1] != wu["name_zh"]:
            problems.append("%r: want %s %s" % (row[:2], wu["id"], wu["name_zh"]))
            continue
        if wu["rated"]:
            own = wu["own"]
            rate, score = printed_rate(wu["id"]) if own["rate"] is not None else ("", "")
            want_cells = [str(own["ballots"]), str(own["valid"]), rate, score]
            if row[4:8] != want_cells:
                problems.append("%s own: %r, want %r" % (wu["id"], row[4:8], want_cells))
            if own["rate"] is None and row[8] != "":
                problems.append("%s: met shown under k: %r" % (wu["id"], row[8]))
            if row[9] != wu["grade"]:
                problems.append("%s grade: %r, want %r" % (wu["id"], row[9], wu["grade"]))
        elif any(row[4:10]):
            problems.append("%s is not rated but has own cells %r" % (wu["id"], row[4:10]))
    t.ok(not problems, "tally %s csv cells: counts, rates, scores, grades; hidden cells empty" % rid, "\n".join(problems))

    r = w.pingyi("tally", rid, "--format", "table")
    t.ok(r.returncode == 0 and r.stdout.strip(), "tally %s --format table prints" % rid, r.stderr)
    problems = []
    for wu in want:
        rows_ = [l for l in r.stdout.splitlines() if re.match(r"^\s*%s\s" % re.escape(wu["name_zh"]), l)]
        if len(rows_) != 1:
            problems.append("%s: %d rows" % (wu["id"], len(rows_)))
            continue
        own_part = rows_[0].split("|")[0]
        if wu["rated"] and wu["own"]["rate"] is None:
            if "—" not in own_part or "%" in own_part:
                problems.append("%s is hidden but shows %r" % (wu["id"], own_part))
        elif wu["rated"] and printed_rate(wu["id"])[0] not in own_part.split():
            problems.append("%s: no rate %s in %r" % (wu["id"], printed_rate(wu["id"])[0], own_part))
    t.ok(not problems, "tally %s table: a row per unit; hidden figures are — and never a number" % rid,
         "\n".join(problems))

# ---- 9. comments, with no link to ballots ---------------------------------------
db = sqlite3.connect("file:%s?mode=ro" % w.db, uri=True)
cols = [c[1] for c in db.execute("PRAGMA table_info(comments)")]
t.eq(sorted(cols), sorted(["id", "round", "unit", "body", "complaint"]),
     "comments hold round, unit, body, complaint and a key; nothing that points to a ballot or a time")
stored = sorted(db.execute("SELECT round, unit, body, complaint FROM comments"))
sent = [(round_of(u), u, text, int(c)) for u, text, c in COMMENTS]
# a browser sends CRLF in a textarea; the collector may keep it or normalise it to LF
stored_n = sorted((a, b, c.replace("\r\n", "\n"), d) for a, b, c, d in stored)
sent_n = sorted((a, b, c.replace("\r\n", "\n"), d) for a, b, c, d in sent)
t.eq(stored_n, sent_n, "every comment stored once, with its unit and complaint flag")
comment_ids = {r[0] for r in db.execute("SELECT id FROM comments")}
ballot_ids = {r[0] for r in db.execute("SELECT id FROM ballots")}
t.ok(not (comment_ids & ballot_ids), "comment keys are not ballot keys")
t.eq(len(ballot_ids), len(ballots), "the ballots table holds every ballot sent")
ballot_cols = [c[1] for c in db.execute("PRAGMA table_info(ballots)")]
t.ok("comment" not in " ".join(ballot_cols), "ballots have no comment column", ballot_cols)
db.close()

# ---- 10. closing --------------------------------------------------------------------
r = run_ok("round", "close", "e2e-branch")
r = w.pingyi("ledger", "verify")
t.ok(r.returncode == 0 and re.search(r"ledger intact: 3 entries", r.stdout), "ledger verify passes (3 entries)",
     r.stdout + r.stderr)
db = sqlite3.connect("file:%s?mode=ro" % w.db, uri=True)
entries = db.execute("SELECT kind, round, body FROM ledger ORDER BY seq").fetchall()
db.close()
t.eq([(k, rd) for k, rd, _ in entries],
     [("round.opened", "e2e-branch"), ("round.opened", "e2e-window"), ("round.closed", "e2e-branch")],
     "the ledger records both openings and the closing")
closed = check_tally("e2e-branch", "closed")
try:
    body = json.loads(entries[-1][2], parse_float=str)
except (ValueError, IndexError) as e:
    body = "unreadable: %s" % e
t.ok(closed is not None and body == closed, "the round.closed entry holds the same JSON as the tally",
     "\n".join(diff(body, closed)) if isinstance(body, dict) and closed else body)

for uid in ("b11", "g2"):
    rep = col.post(PATH[uid], [(q, "s") for q in BRANCH_QS])
    t.eq(rep.status, 410, "a ballot for %s after closing answers 410" % uid)
    t.eq(col.get(PATH[uid]).status, 410, "the form of %s after closing answers 410" % uid)
rep = col.post(PATH["w1"], [(q, "s") for q in WINDOW_QS])
t.eq(rep.status, 303, "the window round, still open, takes ballots")
r = w.pingyi("tally", "e2e-branch", "--format", "json")
t.ok(r.returncode == 0 and json.loads(r.stdout, parse_float=str) == closed,
     "the closed round's tally does not change afterwards")

rc = col.stop()
t.eq(rc, 0, "the collector stops on SIGTERM with exit code 0")
t.eq(sanitizer_reports(col.log_text()), [], "no sanitizer report in the collector's log")
t.done()
