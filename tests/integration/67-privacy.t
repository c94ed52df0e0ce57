#!/usr/bin/python3
"""Privacy: no output shows a figure resting on fewer than k valid answers,
directly or by difference (DESIGN.md §2 "Minimum counts", §3).

Data with small units and small voter groups, in four rounds of rules
(default pooled; weighted voter groups; mean roll-up; both), some cases built on
purpose and the rest random. Every output is enumerated: `pingyi tally` as
json, csv and table, the aggregator's page (/, zh and en), and `pingyi
export` as csv and xlsx (all its sheets; skipped when the command does not
exist). For each output this reads which figures it shows, and which of
their numbers (rate, score, 不满意 share), and checks, generically:

  direct      a shown figure has at least k valid answers;
  structure   a shown total minus its shown parts (a parent's roll-up
              against its own figure and its children's, expanding hidden
              children into their parts; a unit against its voter groups)
              leaves either nothing hidden or at least k valid answers;
  equations   with weights or the mean roll-up a shown rate is not a plain
              sum, so the numbers each output prints are written as linear
              equations in the unknown satisfied (and 满意, for scores)
              counts of each (unit, voter group) on the overall question and
              solved: no hidden (unit, group) cell and no hidden figure with
              1..k-1 valid answers may be determined.

Counts (ballots, valid answers) are public by design; rates, scores and
shares are the figures. Rounding of printed figures is ignored (the
equations are taken as exact), which only makes the check stricter; one
built case is also attacked the way a reader would, by trying every split of
its answers against the printed rate.
"""
import csv
import html
import io
import os
import random
import re
import subprocess
import sys
import time
import zipfile
from fractions import Fraction

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
from harness import BIN, ROOT, Tap, Workspace, load_test, sanitizer_reports  # noqa: E402


M = load_test("65-property.t")
t = Tap()
QS = M.FORMS["branch"]["questions"]


# ---- what an output shows ---------------------------------------------------------------
# A "view" is {figure key: shown?} with keys (uid, "own"), (uid, "sub") and
# (uid, "grp", group); counts come from the JSON tally (they are public).

def view_of_json(doc):
    v = {}
    for u in doc["units"]:
        if u["own"] is not None:
            v[(u["id"], "own")] = u["own"]["rate"] is not None
        if u["subtree"] is not None:
            v[(u["id"], "sub")] = u["subtree"]["rate"] is not None
        for g, f in (u["groups"] or {}).items():
            v[(u["id"], "grp", g)] = f["rate"] is not None
    return v


def direct_json(doc, k):
    """Every FIG with a rate (own, subtree, groups, questions) has >= k valid."""
    bad = []
    for u in doc["units"]:
        figs = [("own", u["own"]), ("subtree", u["subtree"])]
        figs += [("group " + g, f) for g, f in (u["groups"] or {}).items()]
        figs += [("question " + q, f) for q, f in (u["questions"] or {}).items()]
        for name, f in figs:
            if f is None:
                continue
            shown = [x for x in ("rate", "score", "dissatisfied", "met") if f[x] is not None]
            if shown and f["valid"] < k:
                bad.append("%s %s: %s shown from %d valid answers" % (u["id"], name, shown, f["valid"]))
            if shown and len(shown) != 4:
                bad.append("%s %s: only some figures hidden: %s" % (u["id"], name, shown))
    return bad


class Org:
    """The listed tree and public counts of one tally (from its JSON)."""

    def __init__(self, doc):
        self.k = doc["k"]
        self.units = {u["id"]: u for u in doc["units"]}
        self.order = [u["id"] for u in doc["units"]]
        self.kids = {uid: [] for uid in self.order}
        for u in doc["units"]:
            if u["parent"] in self.kids:
                self.kids[u["parent"]].append(u["id"])
        self.groups = doc["groups"]

    def part(self, uid):
        return (uid, "sub") if self.units[uid]["subtree"] is not None else (uid, "own")

    def parts(self, uid):
        u = self.units[uid]
        return ([(uid, "own")] if u["rated"] else []) + [self.part(c) for c in self.kids[uid]]

    def valid(self, key):
        u = self.units[key[0]]
        if key[1] == "own":
            return u["own"]["valid"]
        if key[1] == "sub":
            return u["subtree"]["valid"]
        return u["groups"][key[2]]["valid"]


def expand(org, view, key):
    """A figure as (shown pieces, hidden pieces): a shown figure is itself; a
    hidden own figure is a hidden piece; a hidden roll-up is its parts,
    expanded in turn."""
    if view.get(key, False):
        return [key], []
    if org.valid(key) == 0:
        return [], []
    if key[1] != "sub":
        return [], [key]
    shown, hidden = [], []
    for p in org.parts(key[0]):
        s_, h_ = expand(org, view, p)
        shown += s_
        hidden += h_
    return shown, hidden


def structure_leaks(org, view):
    """(total, shown pieces, hidden remainder, its valid answers) for each
    shown total whose shown pieces leave fewer than k (but some) hidden valid
    answers."""
    leaks = []
    for uid in org.order:
        u = org.units[uid]
        if u["subtree"] is not None and view.get((uid, "sub")):
            shown, atoms = [], []
            for p in org.parts(uid):
                s_, h_ = expand(org, view, p)
                shown += s_
                atoms += h_
            n = sum(org.valid(a) for a in atoms)
            if 0 < n < org.k:
                leaks.append(((uid, "sub"), shown, atoms, n))
        if u["rated"] and view.get((uid, "own")) and len(org.groups) > 1:
            keys = [(uid, "grp", g) for g in org.groups if u["groups"][g]["valid"] > 0]
            atoms = [k_ for k_ in keys if not view.get(k_, False)]
            n = sum(org.valid(a) for a in atoms)
            if 0 < n < org.k:
                leaks.append(((uid, "own"), [k_ for k_ in keys if k_ not in atoms], atoms, n))
    return leaks


def satisfied(doc, key):
    """A shown figure's satisfied count, from its printed rate and valid count
    (exact for an unweighted rate on fewer than 5,000 answers)."""
    u = next(x for x in doc["units"] if x["id"] == key[0])
    f = u["own"] if key[1] == "own" else u["subtree"] if key[1] == "sub" else u["groups"][key[2]]
    return round(Fraction(f["rate"]) * f["valid"])


def name(key):
    return "%s %s" % (key[0], key[1] if key[1] != "grp" else "group " + key[2])


# ---- the equations ------------------------------------------------------------------------

P = (1 << 61) - 1      # a prime; ranks over GF(P) equal ranks over Q but for freak cases


def modp(f):
    f = Fraction(f)
    return f.numerator % P * pow(f.denominator % P, P - 2, P) % P


class Span:
    """The span of linear forms {variable: coefficient}, kept in echelon form
    (each row's pivot is its smallest variable)."""

    def __init__(self):
        self.rows = {}

    def reduce(self, form):
        v = {x: modp(c) for x, c in form.items() if modp(c)}
        while True:
            pivots = [x for x in v if x in self.rows]
            if not pivots:
                return v
            x = min(pivots)
            c = v[x]
            for y, d in self.rows[x].items():
                n = (v.get(y, 0) - c * d) % P
                if n:
                    v[y] = n
                else:
                    v.pop(y, None)

    def add(self, form):
        v = self.reduce(form)
        if v:
            x = min(v)
            inv = pow(v[x], P - 2, P)
            self.rows[x] = {y: c * inv % P for y, c in v.items()}

    def determines(self, form):
        return not self.reduce(form)


class Equations:
    """Shown figures as linear forms in x (satisfied) and y (满意) per
    (unit, group) cell of the overall question; the constants are known."""

    KINDS = ("rate", "dissatisfied", "score")

    def __init__(self, org, view, cells, rules, kinds, weighted_share=False):
        """kinds: {"own"|"sub"|"grp": the numbers the output prints for them};
        weighted_share: the 不满意 share is weighted like the rate (else pooled)."""
        self.org, self.view, self.cells, self.rules = org, view, cells, rules
        self.weighted_share = weighted_share
        self.var = {}
        self.span = Span()
        for key, shown in view.items():
            if shown:
                for kind, form in zip(self.KINDS, self.forms(key)):
                    if kind in kinds.get(key[1], ()):
                        self.span.add(form)

    def v(self, cell, what):
        return self.var.setdefault((cell, what), len(self.var))

    def pool(self, cell_list):
        """rate, dissatisfied share and score of pooled cells."""
        by_g = {}
        for c in cell_list:
            by_g[c[1]] = by_g.get(c[1], 0) + self.cells[c]
        total = sum(by_g.values())
        if not total:
            return []
        w = self.rules.weights
        rate, dis, score = {}, {}, {}
        W = sum(w[g] for g, n in by_g.items() if n) if w else None
        for c in cell_list:
            if not self.cells[c]:
                continue
            x, y = self.v(c, "x"), self.v(c, "y")
            rate[x] = w[c[1]] / (W * by_g[c[1]]) if w else Fraction(1, total)
            dis[x] = -rate[x] if self.weighted_share else Fraction(-1, total)
            score[x] = Fraction(75, total)
            score[y] = Fraction(25, total)
        return [rate, dis, score]

    def own_cells(self, uid):
        return [(uid, g) for g in self.org.groups]

    def sub_cells(self, uid):
        out = self.own_cells(uid) if self.org.units[uid]["rated"] else []
        for c in self.org.kids[uid]:
            out += self.sub_cells(c)
        return out

    def forms(self, key):
        uid = key[0]
        if key[1] == "grp":
            return self.pool([(uid, key[2])])
        if key[1] == "own":
            return self.pool(self.own_cells(uid))
        if self.rules.rollup == "pool":
            return self.pool(self.sub_cells(uid))
        parts = [self.forms(p) for p in self.org.parts(uid)]
        parts = [p for p in parts if p]          # parts with valid answers
        out = []
        for i in range(3):
            f = {}
            for p in parts:
                for x, c in p[i].items():
                    f[x] = f.get(x, 0) + Fraction(c, len(parts))
            out.append(f)
        return out

    def sat(self, cell_list):
        return {self.v(c, "x"): 1 for c in cell_list if self.cells[c]}

    def points(self, cell_list):
        f = {}
        for c in cell_list:
            if self.cells[c]:
                f[self.v(c, "x")] = 75
                f[self.v(c, "y")] = 25
        return f


def cells_of(org, key, eq):
    if key[1] == "grp":
        return [(key[0], key[2])]
    if key[1] == "own":
        return eq.own_cells(key[0])
    return eq.sub_cells(key[0])


def share_is_weighted(doc, model):
    """Whether the printed 不满意 shares are weighted like the rate (Σ w·share
    / Σ w) rather than pooled; decided from the figures themselves, so the
    equations describe what is printed. None when nothing tells them apart."""
    votes = set()
    for u in model.units:
        got = next(x for x in doc["units"] if x["id"] == u.id)
        for f, g in ((u.own, got["own"]), (u.subtree, got["subtree"])):
            if f is None or g is None or g["dissatisfied"] is None or not f.by_group or not model.rules.weights:
                continue
            w = model.rules.weights
            live = [(w[k_], Fraction(d, v)) for k_, (v, _, d, _) in f.by_group.items() if v]
            weighted = sum(a * b for a, b in live) / sum(a for a, _ in live)
            pooled = f.dshare
            if weighted != pooled:
                votes.add(abs(Fraction(g["dissatisfied"]) - weighted) < abs(Fraction(g["dissatisfied"]) - pooled))
    return votes == {True}


def equation_leaks(org, view, cells, rules, kinds, weighted_share=False):
    """Hidden cells and figures under k that the shown figures determine."""
    eq = Equations(org, view, cells, rules, kinds, weighted_share)
    k = org.k
    targets = []
    for c, n in sorted(cells.items()):
        if 0 < n < k:
            targets.append(("cell %s/%s (%d valid): satisfied count" % (c[0], c[1], n), eq.sat([c])))
            targets.append(("cell %s/%s (%d valid): score" % (c[0], c[1], n), eq.points([c])))
    for key, shown in view.items():
        n = org.valid(key)
        if not shown and 0 < n < k:
            targets.append(("%s (%d valid): satisfied count" % (name(key), n), eq.sat(cells_of(org, key, eq))))
    return [what for what, form in targets if form and eq.span.determines(form)]


# ---- reading each output ----------------------------------------------------------------------

def pingyi_bytes(w, *args):
    return subprocess.run([os.path.join(BIN, "pingyi"), "--db", w.db] + list(args),
                          cwd=ROOT, capture_output=True, timeout=120)


def view_of_csv(doc, raw):
    """tally --format csv: 满意率/得分 (own) and 含下级满意率/含下级得分 cells."""
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    v, bad = {}, []
    ids = {u["id"]: u for u in doc["units"]}
    for row in rows[1:]:
        u = ids.get(row[0])
        if u is None or len(row) != 15:
            bad.append("unreadable csv row %r" % row)
            continue
        if u["own"] is not None:
            v[(u["id"], "own")] = bool(row[6] or row[7] or row[8])
        if u["subtree"] is not None:
            v[(u["id"], "sub")] = bool(row[12] or row[13] or row[14])
    return v, bad


def view_of_table(doc, text):
    v, bad = {}, []
    for u in doc["units"]:
        rows = [l for l in text.splitlines() if re.match(r"^\s*%s\s" % re.escape(u["name_zh"]), l)]
        if len(rows) != 1:
            bad.append("%s: %d table rows" % (u["id"], len(rows)))
            continue
        own, _, sub = rows[0].partition("|")
        if u["own"] is not None:
            v[(u["id"], "own")] = bool(re.search(r"\d%|\d+\.\d\b", own.replace(u["name_zh"], "")))
        if u["subtree"] is not None:
            v[(u["id"], "sub")] = bool(re.search(r"\d%|\d+\.\d\b", sub))
    return v, bad


def view_of_html(doc, page, lang):
    """The aggregator's page: per unit row, own cells then grade then subtree cells."""
    v, bad = {}, []
    rows = re.findall(r"<tr class=\"depth\d\"><th scope=\"row\">(.*?)</th>(.*?)</tr>", page)
    cells_by_name = {html.unescape(n): re.findall(r"<td[^>]*>(.*?)</td>", c) for n, c in rows}
    for u in doc["units"]:
        cells = cells_by_name.get(u["name_en"] if lang == "en" else u["name_zh"])
        if cells is None or len(cells) != 9:
            bad.append("%s: no row of 9 cells on the %s page" % (u["id"], lang))
            continue
        if u["own"] is not None:
            v[(u["id"], "own")] = bool(re.search(r"\d", cells[2] + cells[3]))
        if u["subtree"] is not None:
            v[(u["id"], "sub")] = bool(re.search(r"\d", cells[7] + cells[8]))
    return v, bad


def xlsx_sheets(path):
    """{sheet name: rows}, each row a list of cell texts placed by column."""
    z = zipfile.ZipFile(path)
    shared = []
    if "xl/sharedStrings.xml" in z.namelist():
        for si in re.findall(r"<si>(.*?)</si>", z.read("xl/sharedStrings.xml").decode("utf-8"), re.S):
            shared.append(html.unescape("".join(re.findall(r"<t[^>]*>(.*?)</t>", si, re.S))))
    book = z.read("xl/workbook.xml").decode("utf-8")
    rels = z.read("xl/_rels/workbook.xml.rels").decode("utf-8")
    target = {m.group(1): m.group(2) for m in re.finditer(r'<Relationship[^>]*Id="([^"]+)"[^>]*Target="([^"]+)"', rels)}
    target.update({m.group(2): m.group(1) for m in re.finditer(r'<Relationship[^>]*Target="([^"]+)"[^>]*Id="([^"]+)"', rels)})
    sheets = {}
    for m in re.finditer(r'<sheet [^>]*name="([^"]+)"[^>]*r:id="([^"]+)"', book):
        part = "xl/" + target[m.group(2)].lstrip("/").replace("xl/", "", 1)
        rows = []
        for row in re.findall(r"<row[^>]*>(.*?)</row>", z.read(part).decode("utf-8"), re.S):
            out = []
            for ref, attrs, body in re.findall(r'<c r="([A-Z]+)\d+"([^>]*?)(?:/>|>(.*?)</c>)', row, re.S):
                col = 0
                for ch in ref:
                    col = col * 26 + ord(ch) - 64
                out += [""] * (col - len(out))
                val = re.search(r"<v>(.*?)</v>", body or "")
                inline = re.search(r"<t[^>]*>(.*?)</t>", body or "", re.S)
                if 't="s"' in attrs and val:
                    out[col - 1] = shared[int(val.group(1))]
                elif inline:
                    out[col - 1] = html.unescape(inline.group(1))
                elif val:
                    out[col - 1] = val.group(1)
            rows.append(out)
        sheets[html.unescape(m.group(1))] = rows
    return sheets


def number(cell):
    return bool(re.fullmatch(r"-?\d+(\.\d+)?(E-?\d+)?%?", (cell or "").strip()))


def cell(row, i):
    return row[i] if i is not None and i < len(row) else ""


def view_of_grades(doc, rows, what):
    """分类定级汇总表 (export csv, and the workbook's first sheet)."""
    v, bad = {}, []
    k = doc["k"]
    head = next((r for r in rows if r and r[0] == "单位编号"), None)
    if head is None:
        return v, ["%s: no header row" % what]
    col = {name_: i for i, name_ in enumerate(head)}
    units = {u["id"]: u for u in doc["units"]}
    seen = set()
    for row in rows:
        u = units.get(cell(row, 0))
        if u is None:
            continue
        seen.add(u["id"])
        if u["own"] is not None:
            shown = any(number(cell(row, col.get(c))) for c in ("满意率", "得分", "不满意率"))
            v[(u["id"], "own")] = shown
            if shown and u["own"]["valid"] < k:
                bad.append("%s %s: own figures from %d valid answers" % (what, u["id"], u["own"]["valid"]))
            if number(cell(row, col.get("较上轮变化"))) and not shown:
                bad.append("%s %s: a trend beside hidden figures" % (what, u["id"]))
        if u["subtree"] is not None:
            shown = any(number(cell(row, col.get(c))) for c in ("含下级满意率", "含下级得分"))
            v[(u["id"], "sub")] = shown
            if shown and u["subtree"]["valid"] < k:
                bad.append("%s %s: subtree figures from %d valid answers" % (what, u["id"], u["subtree"]["valid"]))
    missing = set(units) - seen
    if missing:
        bad.append("%s: no row for %s" % (what, sorted(missing)))
    return v, bad


def view_of_details(doc, rows, what):
    """明细: per question (有效票, 满意率, 得分) and per voter group (有效票, 满意率)."""
    v, bad = {}, []
    k = doc["k"]
    i = next((n for n, r in enumerate(rows) if r and r[0] == "单位编号"), None)
    if i is None:
        return v, ["%s: no header row" % what]
    groups, questions = {}, {}
    for c, title in enumerate(rows[i]):
        if title.startswith("参评群体："):
            groups[re.sub(r"（.*", "", title[len("参评群体："):])] = c
        elif title and c >= 2:
            questions[title] = c
    if sorted(groups) != sorted(doc["groups"]) or len(questions) != len(QS):
        bad.append("%s: columns %r, %r" % (what, groups, questions))
    units = {u["id"]: u for u in doc["units"]}
    for row in rows[i + 2:]:
        u = units.get(cell(row, 0))
        if u is None or not u["rated"]:
            continue
        for g, c in groups.items():
            shown = number(cell(row, c + 1))
            v[(u["id"], "grp", g)] = shown
            if shown and u["groups"][g]["valid"] < k:
                bad.append("%s %s group %s: a rate from %d valid answers" % (what, u["id"], g, u["groups"][g]["valid"]))
        for title, c in questions.items():
            valid = cell(row, c)
            if (number(cell(row, c + 1)) or number(cell(row, c + 2))) and (not valid.isdigit() or int(valid) < k):
                bad.append("%s %s %s: figures from %s valid answers" % (what, u["id"], title, valid))
    return v, bad


# ---- one round: data, all outputs, all checks ---------------------------------------------------

ALL = {"own": Equations.KINDS, "sub": Equations.KINDS, "grp": Equations.KINDS}   # tally json
RATE_SCORE = {"own": ("rate", "score"), "sub": ("rate", "score")}               # tally csv, table, page
EXPORT_CSV = {"own": Equations.KINDS, "sub": ("rate", "score")}
EXPORT_XLSX = dict(EXPORT_CSV, grp=("rate",))


def check_view(label, doc, view, cells, rules, kinds=RATE_SCORE, weighted_share=False):
    """The structure and equation checks of one output's view; kinds: the
    numbers that output prints for each kind of figure."""
    org = Org(doc)
    leaks = structure_leaks(org, view)
    lines = []
    for tot, shown, atoms, n in leaks:
        lines.append("%s shown; minus the shown %s leaves %s: %d valid answers"
                     % (name(tot), ", ".join(name(a) for a in shown) or "nothing",
                        " + ".join(name(a) for a in atoms), n))
        if label.endswith(" json") and not rules.weights and rules.rollup == "pool":
            lines[-1] += ", of which %d satisfied (from the printed figures)" % (
                satisfied(doc, tot) - sum(satisfied(doc, a) for a in shown))
    t.ok(not leaks, "%s: no shown total minus its shown parts leaves 1..k-1 hidden answers" % label, "\n".join(lines))
    found = equation_leaks(org, view, cells, rules, kinds, weighted_share)
    t.ok(not found, "%s: the shown figures, solved as equations, determine nothing hidden under k" % label,
         "determined:\n" + "\n".join(found[:15]) + ("\n... %d in all" % len(found) if len(found) > 15 else ""))


def run_round(label, w, org_rows, rid, rules, bal, codes):
    args = ["round", "create", rid, "--form", "branch", "--title-zh", "隐私%s" % rid, "--title-en", "Privacy %s" % rid]
    if rules is not None:
        args += ["--rules", w.write("rules-%s.ini" % rid, rules.text())]
    if codes:
        args.append("--codes")
    w.pingyi(*args, check=True)
    w.pingyi("round", "open", rid, check=True)
    M.insert_ballots(w.db, rid, "branch", bal, random.Random(rid))
    rules = rules or M.Rules()
    counters = M.Counters(bal)
    model = M.Tally(org_rows, "branch", rules, counters, {"round": rid, "title_zh": "", "title_en": ""})
    cells = {(u.id, g): (u.groups[g].valid if u.rated else 0) for u in model.units if u.rated for g in model.groups}

    doc, why = M.tally_json(w, rid)
    if not t.ok(doc is not None, "%s: tally --format json" % label, why):
        return None, None
    t.ok(not direct_json(doc, rules.k), "%s json: every shown figure has >= k = %d valid answers" % (label, rules.k),
         "\n".join(direct_json(doc, rules.k)))
    r = w.pingyi("recount", rid)
    t.ok(r.returncode == 0, "%s: recount agrees" % label, r.stderr)
    ws = share_is_weighted(doc, model)
    check_view(label + " json", doc, view_of_json(doc), cells, rules, ALL, ws)

    r = pingyi_bytes(w, "tally", rid, "--format", "csv")
    view, bad = view_of_csv(doc, r.stdout)
    jv = view_of_json(doc)
    extra = [k_ for k_ in view if view[k_] and not jv.get(k_)]
    t.ok(r.returncode == 0 and not bad and not extra, "%s csv: shows no figure the JSON hides" % label,
         "\n".join(bad + ["%s shown" % name(k_) for k_ in extra]))
    check_view(label + " csv", doc, view, cells, rules)

    r = w.pingyi("tally", rid, "--format", "table")
    view, bad = view_of_table(doc, r.stdout)
    extra = [k_ for k_ in view if view[k_] and not jv.get(k_)]
    t.ok(r.returncode == 0 and not bad and not extra, "%s table: shows no figure the JSON hides" % label,
         "\n".join(bad + ["%s shown" % name(k_) for k_ in extra]))
    check_view(label + " table", doc, view, cells, rules)
    return doc, (model, cells, rules, ws)


def check_pages(label, w, docs):
    try:
        agg = w.aggregator()
    except RuntimeError as e:
        t.ok(False, "%s: the aggregator starts" % label, str(e))
        return
    for lang, path in (("zh", "/"), ("en", "/?lang=en")):
        page = agg.get(path)
        for doc, (model, cells, rules, ws) in docs:
            view, bad = view_of_html(doc, page.text, lang)
            jv = view_of_json(doc)
            extra = [k_ for k_ in view if view[k_] and not jv.get(k_)]
            t.ok(page.status == 200 and not bad and not extra,
                 "%s page %s, round %s: shows no figure the JSON hides" % (label, lang, doc["round"]),
                 "\n".join(bad + ["%s shown" % name(k_) for k_ in extra]))
            check_view("%s page %s, round %s" % (label, lang, doc["round"]), doc, view, cells, rules)
    agg.stop()
    t.eq(sanitizer_reports(agg.log_text()), [], "%s: no sanitizer report from the aggregator" % label)


def check_exports(label, w, docs):
    r = w.pingyi("export", "--help")
    if r.returncode != 0:
        t.ok(True, "%s: export csv/xlsx # SKIP pingyi export is not there yet" % label)
        return
    for doc, (model, cells, rules, ws) in docs:
        jv = view_of_json(doc)
        for fmt in ("csv", "xlsx"):
            out = w.path("export-%s.%s" % (doc["round"], fmt))
            rr = w.pingyi("export", doc["round"], "--format", fmt, "--out", out)
            if not t.ok(rr.returncode == 0 and os.path.exists(out), "%s: export %s --format %s" % (label, doc["round"], fmt),
                        "%s\nusage:\n%s" % (rr.stderr, r.stdout)):
                continue
            what = "%s export %s" % (label, fmt)
            if fmt == "csv":
                rows = list(csv.reader(io.StringIO(open(out, "rb").read().decode("utf-8-sig"), newline="")))
                view, bad = view_of_grades(doc, rows, what)
                kinds = EXPORT_CSV
            else:
                sheets = xlsx_sheets(out)
                view, bad = view_of_grades(doc, sheets.get("分类定级汇总表", []), what + " 分类定级汇总表")
                more, bad2 = view_of_details(doc, sheets.get("明细", []), what + " 明细")
                view.update(more)
                bad += bad2
                kinds = EXPORT_XLSX
            extra = [k_ for k_ in view if view[k_] and not jv.get(k_)]
            t.ok(not bad and not extra, "%s: every shown figure has >= k valid answers; none the JSON hides" % what,
                 "\n".join(bad + ["%s shown" % name(k_) for k_ in extra]))
            check_view(what, doc, view, cells, rules, kinds, ws)


# ---- the data ---------------------------------------------------------------------------------------

def bal_of(unit, grp, levels):
    return [(unit, grp, {q: lv for q in QS}) for lv in levels]


def L(**n):
    return [lv for lv in "sbdu" for _ in range(n.get(lv, 0))]


def random_org(rng, tag, n_gb):
    org = [("%s-c" % tag, "", "committee", "委员会%s" % tag, "Committee %s" % tag)]
    for i in range(n_gb):
        g = "%s-g%d" % (tag, i)
        org.append((g, org[0][0], "general_branch", "总支%s%d" % (tag, i), "GB %s %d" % (tag, i)))
        for j in range(rng.randint(0, 4)):
            org.append(("%s-b%d" % (g, j), g, "branch", "支部%s%d-%d" % (tag, i, j), "Branch %s %d-%d" % (tag, i, j)))
    return org


def random_ballots(rng, org, groups):
    bal = []
    for u in org:
        if u[2] not in ("general_branch", "branch"):
            continue
        for g in groups:
            n = rng.choice([0, 0, 1, 1, 2, 3, 4, 5, 6, 9, 14])
            for _ in range(n):
                bal += bal_of(u[0], g, [rng.choices("sbdu", (55, 25, 15, 5))[0]])
    return bal


# Built cases. A: default rules, pooled. Under committee A-c:
#   A-g1: two tiny branches beside a big one: their 2 answers together are
#         under k, so A-g1's roll-up must be hidden.
#   A-g2 (own 6) with A-b20 (3 valid) and A-b21 (10): exactly one part hidden,
#         so A-g2's roll-up is hidden.
# Under committee A2-c, a cascade: A2-g2's and A2-g3's roll-ups are hidden,
# each because of one tiny branch (1 valid answer). The committee then has
# two hidden parts with 22 answers between them, but its roll-up minus the
# shown pieces (A2-g1's roll-up, A2-g2's and A2-g3's own) leaves A2-b20 +
# A2-b30: 2 answers.
ORG_A = [("A-c", "", "committee", "委员会A", "Committee A"),
         ("A-g1", "A-c", "general_branch", "总支A1", "GB A1"),
         ("A-b10", "A-g1", "branch", "支部A10", "Branch A10"),
         ("A-b11", "A-g1", "branch", "支部A11", "Branch A11"),
         ("A-b12", "A-g1", "branch", "支部A12", "Branch A12"),
         ("A-g2", "A-c", "general_branch", "总支A2", "GB A2"),
         ("A-b20", "A-g2", "branch", "支部A20", "Branch A20"),
         ("A-b21", "A-g2", "branch", "支部A21", "Branch A21"),
         ("A2-c", "", "committee", "委员会A2", "Committee A2"),
         ("A2-g1", "A2-c", "general_branch", "总支A2-1", "GB A2-1"),
         ("A2-b10", "A2-g1", "branch", "支部A2-10", "Branch A2-10"),
         ("A2-g2", "A2-c", "general_branch", "总支A2-2", "GB A2-2"),
         ("A2-b20", "A2-g2", "branch", "支部A2-20", "Branch A2-20"),
         ("A2-g3", "A2-c", "general_branch", "总支A2-3", "GB A2-3"),
         ("A2-b30", "A2-g3", "branch", "支部A2-30", "Branch A2-30")]
BAL_A = (bal_of("A-b10", "群众", L(s=15, b=3, d=2)) + bal_of("A-b11", "群众", L(s=1, u=2))
         + bal_of("A-b12", "群众", L(d=1)) + bal_of("A-g2", "群众", L(s=5, d=1))
         + bal_of("A-b20", "群众", L(s=2, d=1, u=1)) + bal_of("A-b21", "群众", L(s=8, b=2))
         + bal_of("A2-g1", "群众", L(s=8, d=2)) + bal_of("A2-b10", "群众", L(s=9, b=1))
         + bal_of("A2-g2", "群众", L(s=9, b=1)) + bal_of("A2-b20", "群众", L(d=1, u=1))
         + bal_of("A2-g3", "群众", L(s=7, b=3)) + bal_of("A2-b30", "群众", L(s=1)))

# B: weights; code round. B-u1: 校领导 2 valid (hidden) beside 群众 30: the
# smallest other group is hidden too, but the weighted rate and the pooled
# 不满意 share are two equations in the two unknowns. B-u2: two hidden groups
# with 3 valid answers together.
WEIGHTS = {"校领导": "0.4", "中层干部": "0.3", "党员": "0.2", "群众": "0.1"}
ORG_B = [("B-c", "", "committee", "委员会B", "Committee B"),
         ("B-g", "B-c", "general_branch", "总支B", "GB B"),
         ("B-u1", "B-g", "branch", "支部B1", "Branch B1"),
         ("B-u2", "B-g", "branch", "支部B2", "Branch B2"),
         ("B-u3", "B-g", "branch", "支部B3", "Branch B3")]
BAL_B = (bal_of("B-u1", "校领导", L(s=1, d=1)) + bal_of("B-u1", "群众", L(s=25, d=5))
         + bal_of("B-u2", "校领导", L(s=1)) + bal_of("B-u2", "中层干部", L(s=1, d=1))
         + bal_of("B-u2", "党员", L(s=18, d=2)) + bal_of("B-u2", "群众", L(s=25, b=3, d=2))
         + bal_of("B-u3", "党员", L(s=8, b=2)) + bal_of("B-u3", "群众", L(s=9, d=3)))


# W (in the weighted round, pooled, and in the weighted mean round): W-b0 and
# W-b1 are hidden for a small weighted group each (中层干部 4, 群众 2). W-g's
# roll-up still shows a weighted rate and a 不满意 share over them: two
# equations, with different coefficients, in the two small groups' unknowns.
ORG_W = [("W-c", "", "committee", "委员会W", "Committee W"),
         ("W-g", "W-c", "general_branch", "总支W", "GB W"),
         ("W-b0", "W-g", "branch", "支部W0", "Branch W0"),
         ("W-b1", "W-g", "branch", "支部W1", "Branch W1")]
BAL_W = (bal_of("W-g", "中层干部", L(s=1, b=4, d=1)) + bal_of("W-g", "党员", L(s=3, b=1, d=1, u=1))
         + bal_of("W-g", "群众", L(s=2, b=4))
         + bal_of("W-b0", "中层干部", L(s=2, b=1, d=1)) + bal_of("W-b0", "校领导", L(s=3, b=2, d=1))
         + bal_of("W-b1", "中层干部", L(s=7, b=3, d=2, u=2)) + bal_of("W-b1", "党员", L(s=6, b=5, d=3))
         + bal_of("W-b1", "群众", L(b=2)))


def attack_b_u1(doc):
    """What anyone can work out from B-u1's shown rate alone (every output
    prints it): each split of its answers between 校领导 (2 valid) and 群众
    (30) that gives the printed rate. More than one possible 校领导 count:
    not revealed."""
    u = next(x for x in doc["units"] if x["id"] == "B-u1")
    rate = u["own"]["rate"]
    if rate is None:
        return None
    wl, wq = Fraction(WEIGHTS["校领导"]), Fraction(WEIGHTS["群众"])
    possible = set()
    for xl in range(3):
        for xq in range(31):
            r = (wl * Fraction(xl, 2) + wq * Fraction(xq, 30)) / (wl + wq)
            if "%.4f" % float(r) == rate:
                possible.add(xl)
    return possible


def one_workspace(label, org_rows, rid, rules, bal, codes):
    """A database with one open round: every output of it, every check."""
    w = Workspace()
    w.pingyi("init", check=True)
    w.pingyi("units", "import", w.write("org.csv", M.org_csv(org_rows)), check=True)
    doc, extra = run_round(label, w, org_rows, rid, rules, bal, codes)
    docs = [(doc, extra)] if doc else []
    check_pages(label, w, docs)
    check_exports(label, w, docs)
    return doc


def main():
    started = time.time()
    rng = random.Random(67)

    org = ORG_A + random_org(rng, "R", 4)
    one_workspace("default rules", org, "pa", None, BAL_A + random_ballots(rng, org[len(ORG_A):], ["群众"]), False)

    org_r = random_org(rng, "S", 4)
    doc = one_workspace("weighted", ORG_B + ORG_W + org_r, "pb", M.Rules(weights=WEIGHTS),
                        BAL_B + BAL_W + random_ballots(rng, org_r, list(WEIGHTS)), True)
    if doc:
        u1 = next(x for x in doc["units"] if x["id"] == "B-u1")["own"]
        possible = attack_b_u1(doc)
        t.ok(possible is None or len(possible) > 1,
             "weighted: B-u1's 2 answers from 校领导 (hidden) cannot be worked out from its shown rate",
             "every split of B-u1's answers that gives its rate %s has %s satisfied answer(s) from 校领导 "
             "(truth: 1)" % (u1["rate"], sorted(possible or [])))

    org_m = random_org(rng, "T", 5)
    one_workspace("mean roll-up", org_m, "pm", M.Rules(k=4, min_valid=4, rollup="mean"),
                  random_ballots(rng, org_m, ["群众", "党员"]), True)
    org_w = random_org(rng, "U", 5)
    one_workspace("weighted mean roll-up", ORG_W + org_w, "pw", M.Rules(weights=WEIGHTS, rollup="mean"),
                  BAL_W + random_ballots(rng, org_w, list(WEIGHTS)), True)
    t.diag("%.1f s" % (time.time() - started))
    t.done()


if __name__ == "__main__":
    main()
