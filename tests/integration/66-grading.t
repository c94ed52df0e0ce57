#!/usr/bin/python3
"""Grading edge cases, one tiny scenario each (DESIGN.md §2, docs/rules.md).

Each case is a unit whose ballots put it exactly on, or just below, one of
the rules' edges: the 0.95 target with score 90, the 0.90 and 0.80 grade
lines, the 1/3 dissatisfied veto, the minimum count k, all 不了解, a voter
group with no valid answer, a weighted rate exactly on the target, the cap
on 先进 with ties at the boundary and per kind of unit, and trends over a
series of three rounds. Every case states its expected grade and figures
literally; the whole tally is also compared field by field with the exact
model in 65-property.t. Ballots go straight into the database as
collector/writer.c stores them (helpers in 65-property.t).
"""
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from harness import Tap, Workspace, load_test  # noqa: E402


M = load_test("65-property.t")
t = Tap()
rng = random.Random(66)
QS = M.FORMS["branch"]["questions"]


def ballots(unit, levels, grp="群众"):
    """One ballot per level on the overall question; the other questions
    answered the same way."""
    return [(unit, grp, {q: lv for q in QS}) for lv in levels]


def L(**n):
    """L(s=18, b=1, d=1) -> the level list."""
    out = []
    for lv in "sbdu":
        out += [lv] * n.get(lv, 0)
    return out


class Scenario:
    """A workspace with an organisation: a committee, general branches and
    the branches of the cases."""

    def __init__(self, name, branches, gbs=("g1",)):
        self.name = name
        self.w = Workspace()
        self.w.pingyi("init", check=True)
        self.org = [("c", "", "committee", "党委", "Committee")]
        for g in gbs:
            self.org.append((g, "c", "general_branch", "总支%s" % g, "General branch %s" % g))
        for b, parent in branches:
            self.org.append((b, parent, "branch", "支部%s" % b, "Branch %s" % b))
        self.import_org()
        self.recorded = []          # closed rounds of the series, newest first

    def import_org(self):
        r = self.w.pingyi("units", "import", self.w.write("org.csv", M.org_csv(self.org)))
        t.ok(r.returncode == 0, "%s: import %d units" % (self.name, len(self.org)), r.stderr)

    def round(self, rid, bal, rules=None, codes=False, series=""):
        """Create, open and fill a round; compare its whole tally with the
        model. Returns {unit id: unit JSON} (floats as text)."""
        args = ["round", "create", rid, "--form", "branch", "--title-zh", "测评", "--title-en", "Appraisal"]
        if rules:
            args += ["--rules", self.w.write("rules-%s.ini" % rid, rules.text())]
        if codes:
            args.append("--codes")
        if series:
            args += ["--series", series]
        r = self.w.pingyi(*args)
        t.ok(r.returncode == 0, "%s: round create %s" % (self.name, rid), r.stderr)
        r = self.w.pingyi("round", "open", rid)
        t.ok(r.returncode == 0, "%s: round open %s" % (self.name, rid), r.stderr)
        M.insert_ballots(self.w.db, rid, "branch", bal, rng)
        meta = {"round": rid, "series": series, "title_zh": "测评", "title_en": "Appraisal",
                "previous": self.previous_id}
        self.model = M.Tally(self.org, "branch", rules or M.Rules(), M.Counters(bal), meta,
                             previous=self.recorded, participation={} if codes else None)
        return self.check(rid)

    previous_id = None

    def check(self, rid, state="open"):
        self.model.meta["state"] = state
        got, why = M.tally_json(self.w, rid)
        if not t.ok(got is not None, "%s: tally %s --format json" % (self.name, rid), why):
            return {}
        M.compare_tally(t, got, self.model.json(), "%s: %s against the model" % (self.name, rid))
        r = self.w.pingyi("recount", rid)
        t.ok(r.returncode == 0, "%s: recount %s agrees" % (self.name, rid), r.stderr)
        return {u["id"]: u for u in got.get("units", [])}

    def close(self, rid):
        r = self.w.pingyi("round", "close", rid)
        t.ok(r.returncode == 0, "%s: round close %s" % (self.name, rid), r.stderr)
        self.recorded.insert(0, M.recorded_result(self.w, rid))
        self.previous_id = rid


def expect(units, uid, grade, rate, met, why):
    """The unit's grade, printed rate and met flag, literally."""
    u = units.get(uid) or {}
    own = u.get("own") or {}
    got = (u.get("grade"), own.get("rate"), own.get("met"))
    t.eq(got, (grade, rate, met), "%s: %s" % (uid, why))


# ---- 1. the default rules: each threshold, exactly on it and just below ---------------------
CASES = [
    # unit, answers, grade, rate printed, met, why
    ("t95", L(s=18, b=1, d=1), "先进", "0.9500", True, "rate exactly 0.95 (19 of 20), score 93.75: 先进, meets the target"),
    ("t95lo", L(s=93, b=1, d=5), "较好", "0.9495", False, "rate 94/99 just below 0.95, score 94.70: 较好, misses the target"),
    ("s90", L(s=12, b=8), "先进", "1.0000", True, "rate 1, score exactly 90 (12 满意 8 基本满意): 先进"),
    ("s90lo", L(s=59, b=41), "较好", "1.0000", True, "rate 1, score 89.75 just below 90: 较好"),
    ("t90", L(s=18, d=2), "较好", "0.9000", False, "rate exactly 0.90 (18 of 20): 较好"),
    ("t90lo", L(s=89, d=10), "一般", "0.8990", False, "rate 89/99 just below 0.90: 一般"),
    ("t80", L(s=16, d=4), "一般", "0.8000", False, "rate exactly 0.80 (16 of 20): 一般"),
    ("t80lo", L(s=79, d=20), "后进", "0.7980", False, "rate 79/99 just below 0.80: 后进"),
    ("k5", L(s=5, u=3), "先进", "1.0000", True, "exactly k = 5 valid answers: graded and shown"),
    ("k4", L(s=4, u=6), "未定", None, None, "4 valid answers (k - 1), 10 ballots: 未定, no figures"),
    ("allu", L(u=9), "未定", None, None, "9 ballots all 不了解: valid 0, 未定, no figures"),
    ("none", [], "未定", None, None, "no ballot at all: 未定"),
]
s1 = Scenario("default rules", [(c[0], "g1") for c in CASES])
bal = []
for uid, levels, *_ in CASES:
    bal += ballots(uid, levels)
units = s1.round("edges", bal)
for uid, _, grade, rate, met, why in CASES:
    expect(units, uid, grade, rate, met, why)
u = units.get("allu", {})
t.eq((u.get("own") or {}).get("ballots"), 9, "allu: its 9 ballots are counted although none is valid")
t.eq(units.get("k4", {}).get("rank"), None, "k4: an ungraded unit has no rank")
t.eq([units.get(x, {}).get("rank") for x in ("k5", "s90", "s90lo", "t95", "t95lo")], [1, 2, 3, 4, 5],
     "ranks: rate, then score (k5, s90, s90lo all rate 1: scores 100, 90, 89.75), then t95, t95lo")

# ---- 2. the veto at exactly 1/3 (needs a grade below 0.80 to matter) -------------------------
rules = M.Rules(grades=[("先进", "0.95", "90"), ("较好", "0.90", "0"), ("一般", "0.80", "0"), ("合格", "0.60", "0")])
s2 = Scenario("veto", [("v13", "g1"), ("v13hi", "g1")])
units = s2.round("veto", ballots("v13", L(s=20, d=10)) + ballots("v13hi", L(s=65, d=34)), rules=rules)
expect(units, "v13", "合格", "0.6667", False, "不满意 exactly 1/3 (10 of 30): not vetoed, 合格 by its rate 2/3")
expect(units, "v13hi", "后进", "0.6566", False, "不满意 34/99, just above 1/3: vetoed to 后进 although its rate 0.6566 makes 合格")

# ---- 3. weighted voter groups ---------------------------------------------------------------
# Weights that are exact in binary, so these cases test the rules and not
# rounding: 校领导 15/16, 群众 1/16.
rules = M.Rules(weights={"校领导": "15/16", "群众": "1/16"})
s3 = Scenario("weights 15/16 1/16", [("wv13", "g1"), ("wvhi", "g1"), ("wmute", "g1")])
bal = (ballots("wv13", L(s=10), "校领导") + ballots("wv13", L(d=5), "群众")
       + ballots("wvhi", L(s=10), "校领导") + ballots("wvhi", L(d=6), "群众")
       + ballots("wmute", L(u=5), "校领导") + ballots("wmute", L(s=18, d=2), "群众"))
units = s3.round("weighted", bal, rules=rules, codes=True)
expect(units, "wv13", "较好", "0.9375", False,
       "weighted rate 15/16, 不满意 exactly 1/3 of all valid answers (5 of 15): not vetoed, 较好")
expect(units, "wvhi", "后进", "0.9375", False,
       "weighted rate 15/16 but 不满意 6 of 16 (> 1/3): vetoed to 后进 even with a high rate")
expect(units, "wmute", "较好", "0.9000", False,
       "校领导 answered only 不了解: the group is left out of the weighted rate (0.90, not 0.0563)")
g = ((units.get("wmute") or {}).get("groups") or {}).get("校领导") or {}
t.eq((g.get("ballots"), g.get("valid"), g.get("rate")), (5, 0, None),
     "wmute: 校领导's 5 ballots are counted, with no valid answer and no rate")

# Weights as people write them (0.3 / 0.7): the weighted rate is exact
# arithmetic, Σ w·rate / Σ w; a rate exactly on a line is on it.
rules = M.Rules(weights={"校领导": "0.3", "群众": "0.7"})
s4 = Scenario("weights 0.3 0.7", [("w95", "g1"), ("wone80", "g1"), ("wone90", "g1")])
bal = (ballots("w95", L(s=5, d=1), "校领导") + ballots("w95", L(s=12), "群众")
       + ballots("wone80", L(s=16, d=4), "群众")
       + ballots("wone90", L(s=9, d=1), "校领导"))
units = s4.round("weighted", bal, rules=rules, codes=True)
expect(units, "w95", "先进", "0.9500", True,
       "weighted rate 0.3 x 5/6 + 0.7 x 1 = 0.95 exactly, score 94.44: 先进, meets the target")
expect(units, "wone80", "一般", "0.8000", False,
       "only 群众 answered, 16 of 20 satisfied: the weighted rate is 群众's rate, exactly 0.80: 一般")
expect(units, "wone90", "较好", "0.9000", False,
       "only 校领导 answered, 9 of 10 satisfied: the weighted rate is exactly 0.90: 较好")

# ---- 4. the cap on 先进: by rank, ties together, per kind -------------------------------------
# cap 0.3 of 10 graded branches = 3 先进 at most; of 4 graded general
# branches, floor(1.2) = 1.
rules = M.Rules(cap="0.3")
CAP = [
    ("A", L(s=20), "先进", 1, "rate 1, score 100: rank 1, keeps 先进 (1 of 3)"),
    ("X", L(s=38, b=2), "先进", 2, "rate 1, score 98.75, 40 valid: ahead of the 20-valid ties, keeps 先进 (2 of 3)"),
    ("B", L(s=19, b=1), "较好", 3, "tied with C and D (rate 1, score 98.75, 20 valid): 3 do not fit the 1 place left, all 较好"),
    ("C", L(s=19, b=1), "较好", 3, "tied with B and D: 较好 together"),
    ("D", L(s=19, b=1), "较好", 3, "tied with B and C: 较好 together"),
    ("E", L(s=19, d=1), "较好", 6, "rate 0.95, score 95 would be 先进, but it ranks below B, C and D, "
     "who were refused 先进 by the cap: 较好"),
    ("F", L(s=18, d=2), "较好", 7, "rate 0.90: 较好"),
    ("G", L(s=16, d=4), "一般", 8, "rate 0.80: 一般"),
    ("K", L(s=15, d=5), "后进", 9, "rate 0.75: 后进"),
    ("H", L(s=10, d=10), "后进", 10, "不满意 1/2: 后进"),
    ("J", L(s=3), "未定", None, "3 valid answers: 未定, not counted for the cap"),
]
GBS = [("g1", L(s=20), "先进", 1), ("g2", L(s=19, b=1), "较好", 2), ("g3", L(s=18, b=2), "较好", 3),
       ("g4", L(s=19, d=1), "较好", 4)]
s5 = Scenario("cap 0.3", [(c[0], "g%d" % (i % 4 + 1)) for i, c in enumerate(CAP)], gbs=[g[0] for g in GBS])
bal = []
for uid, levels, *_ in CAP + GBS:
    bal += ballots(uid, levels)
units = s5.round("cap", bal, rules=rules)
for uid, _, grade, rank, why in CAP:
    u = units.get(uid) or {}
    t.eq((u.get("grade"), u.get("rank")), (grade, rank), "cap, branch %s: %s" % (uid, why))
for uid, _, grade, rank in GBS:
    u = units.get(uid) or {}
    t.eq((u.get("grade"), u.get("rank")), (grade, rank),
         "cap, general branch %s: the cap counts per kind (4 graded: 1 先进), rank %d: %s" % (uid, rank, grade))

# A tied group that fits exactly keeps the grade together.
FIT = [("A", L(s=20), "先进"), ("B", L(s=19, b=1), "先进"), ("C", L(s=19, b=1), "先进"),
       ("D", L(s=19, d=1), "较好"), ("F1", L(s=18, d=2), "较好"), ("F2", L(s=17, d=3), "一般"),
       ("F3", L(s=16, d=4), "一般"), ("F4", L(s=15, d=5), "后进"), ("F5", L(s=14, d=6), "后进"),
       ("F6", L(s=13, d=7), "后进")]
s6 = Scenario("cap 0.3, ties fit", [(c[0], "g1") for c in FIT])
bal = []
for uid, levels, _ in FIT:
    bal += ballots(uid, levels)
units = s6.round("capfit", bal, rules=rules)
t.eq([units.get(c[0], {}).get("grade") for c in FIT], [c[2] for c in FIT],
     "cap 0.3 of 10: A and the tie B, C fill the 3 places together; D (rate 0.95, score 95) is 较好")

# A unit whose figures are hidden for a small weighted group is still graded
# (docs/rules.md), and so the cap demotes it to the next grade it meets.
rules = M.Rules(cap="0.3", weights={"校领导": "15/16", "群众": "1/16"})
WCAP = [("A1", L(s=30), [], "先进", 1), ("A2", L(s=25), [], "先进", 2), ("A3", L(s=21), [], "先进", 3),
        ("H", L(s=17), L(s=2), "较好", 4),
        ("F1", L(s=18, d=2), [], "较好", 5), ("F2", L(s=17, d=3), [], "一般", 6), ("F3", L(s=16, d=4), [], "一般", 7),
        ("F4", L(s=15, d=5), [], "后进", 8), ("F5", L(s=14, d=6), [], "后进", 9), ("F6", L(s=13, d=7), [], "后进", 10)]
s8 = Scenario("cap with weights", [(c[0], "g1") for c in WCAP])
bal = []
for uid, lead, crowd, *_ in WCAP:
    bal += ballots(uid, lead, "校领导") + ballots(uid, crowd, "群众")
units = s8.round("wcap", bal, rules=rules, codes=True)
h = units.get("H") or {}
t.eq((h.get("grade"), h.get("rank"), (h.get("own") or {}).get("rate")), ("较好", 4, None),
     "H (rate 1, score 100, hidden for 群众's 2 answers) ranks 4th of 10 under a cap of 3: graded 较好, not 未定")

# ---- 5. a series of rounds: trend delta and consecutive 后进 -------------------------------
SERIES = "年度测评"
s7 = Scenario("series", [("X", "g1"), ("Y", "g1"), ("Z", "g1"), ("V", "g1")])
R1 = {"X": L(s=10, d=10), "Y": L(s=10, d=10), "Z": L(s=18, d=2), "V": L(s=10, d=10)}
R2 = {"X": L(s=5, d=15), "Y": L(s=19, d=1), "Z": L(s=10, d=5), "V": L(s=3)}
R3 = {"X": L(s=12, d=12), "Y": L(s=10, d=11), "Z": L(s=18, d=2), "V": L(s=9, d=10), "W": L(s=20)}
for rid, spec in (("r1", R1), ("r2", R2)):
    bal = []
    for uid, levels in spec.items():
        bal += ballots(uid, levels)
    s7.round(rid, bal, series=SERIES)
    s7.close(rid)
    if rid == "r2":
        units = s7.check("r2", "closed")
        t.eq((units.get("X") or {}).get("trend"), {"delta": "-0.2500", "laggards": 2},
             "r2, X: rate 0.50 -> 0.25 (delta -0.2500), 后进 in r1 and r2: laggards 2")
s7.org.append(("W", "g1", "branch", "支部W", "Branch W"))     # a unit new in r3
s7.import_org()
bal = []
for uid, levels in R3.items():
    bal += ballots(uid, levels)
units = s7.round("r3", bal, series=SERIES)
TRENDS = [
    ("X", {"delta": "0.2500", "laggards": 3}, "后进 in r1, r2 and r3: laggards 3; rate 0.25 -> 0.50"),
    ("Y", {"delta": "-0.4738", "laggards": 1}, "后进, 先进, 后进: laggards 1 (the run restarts); rate 0.95 -> 10/21"),
    ("Z", {"delta": "0.2333", "laggards": 0}, "rate 2/3 (recorded 0.6667, 后进) -> 0.90: delta 0.2333; 较好 now: laggards 0"),
    ("V", {"delta": None, "laggards": 1}, "hidden in r2 (3 valid answers): no delta; 未定 in r2, so laggards 1"),
    ("W", None, "not rated in r2: no trend"),
]
for uid, want, why in TRENDS:
    t.eq((units.get(uid) or {}).get("trend"), want, "r3, %s: %s" % (uid, why))
t.done()
