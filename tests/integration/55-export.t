#!/usr/bin/python3
"""pingyi export: the 分类定级汇总表 and 整改汇总表 the office sends upward.

Ballots go in through the collector: a closed round r0 and an open round r1
of one series (so r1 has trends), with a unit under k (5), a question under
k, a unit below target, and a unit whose name is a spreadsheet formula; and a
weighted code round rw with three voter groups, one of them under k, whose
weighted rate 0.94996 shows as 0.9500 in the JSON but must read 94.99% (not
met) in the workbook. Complaints, rectification records and reviews are
added with the CLI.

The workbook is read with openpyxl (Debian's python3-openpyxl, an
independent reader) and the raw sheet XML: sheet names, values equal to
`pingyi tally --format json` (and to figures computed here from the ballots
sent), number formats, frozen panes, the fill of below-target rows, "—" and
no number for every hidden figure, and no formula anywhere. The CSV tables
round-trip through Python's csv module (BOM, CRLF, formula neutralised).
Files are written whole or not at all.
"""
import csv
import io
import json
import math
import os
import re
import sqlite3
import stat
import subprocess
import sys
import zipfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import BIN, ROOT, Tap, Workspace, sanitizer_reports  # noqa: E402

if sys.executable != "/usr/bin/python3" and os.path.exists("/usr/bin/python3"):
    os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)   # Debian's, with its openpyxl
try:
    import openpyxl
except ImportError:
    print("not ok 1 - /usr/bin/python3 can import openpyxl (apt-get install python3-openpyxl)\n1..1")
    sys.exit(1)

t = Tap()
w = Workspace()

FORMULA = '=HYPERLINK("http://x","y")'
ORG = """id,parent,kind,name_zh,name_en
univ,,committee,中共测试大学委员会,Party Committee of Test University
ga,univ,general_branch,文学院党总支,School of Letters General Branch
ba1,ga,branch,文学院教工党支部,Letters Faculty Branch
ba2,ga,branch,文学院本科生党支部,Letters Undergraduate Branch
gb,univ,general_branch,物理学院党总支,Physics General Branch
bb1,gb,branch,物理学院教工党支部,Physics Faculty Branch
bb2,gb,branch,"=HYPERLINK(""http://x"",""y"")",Formula Branch
hq,univ,department,后勤管理处,Logistics Office
w1,hq,window,第一食堂窗口,Canteen 1
w2,hq,window,维修服务窗口,Repair Desk
"""
BRANCH_QS = ["leadership", "members", "mechanism", "performance", "reputation", "overall"]
WINDOW_QS = ["attitude", "efficiency", "openness", "environment", "integrity", "overall"]
POINTS = {"s": 100, "b": 75, "d": 0}
GRADES_HEAD = ["单位编号", "单位", "上级编号", "类别", "票数", "有效票", "满意率", "得分", "不满意率", "是否达标",
               "等级", "排名", "较上轮变化", "连续后进次数", "含下级票数", "含下级有效票", "含下级满意率",
               "含下级得分", "含下级是否达标"]
COL = {name: i for i, name in enumerate(GRADES_HEAD)}
RECT_HEAD = ["单位编号", "单位", "投诉件数", "已办结", "未办结", "办结用时中位数（小时）", "最长办结用时（小时）",
             "未办结最长等待（小时）", "整改记录", "领导点评"]
DASH = "—"


def run_ok(*args):
    r = w.pingyi(*args)
    t.ok(r.returncode == 0 and not sanitizer_reports(r.stderr), "pingyi %s" % " ".join(args)[:90],
         r.stdout + r.stderr)
    return r


def refused(args, want_rc, want_text, name):
    r = w.pingyi(*args)
    t.ok(r.returncode == want_rc and want_text in r.stderr and not sanitizer_reports(r.stderr),
         "%s (exit %d, says %r)" % (name, want_rc, want_text),
         "rc %d\nstdout: %s\nstderr: %s" % (r.returncode, r.stdout, r.stderr))
    return r


def query(sql, params=()):
    con = sqlite3.connect(w.db)
    try:
        return [tuple(x) for x in con.execute(sql, params)]
    finally:
        con.close()


def execute(sql, params=()):
    con = sqlite3.connect(w.db)
    try:
        con.execute(sql, params)
        con.commit()
    finally:
        con.close()


def cut(x, scale):
    """What a human display shows: cut toward zero, not rounded (report.c)."""
    v = math.floor(abs(x) * scale + 1e-9) / scale
    return -v if x < 0 else v


def labels(form):
    """The Chinese question labels of a shipped form, in order."""
    out, q = {}, None
    for line in open(os.path.join(ROOT, "forms", form + ".form"), encoding="utf-8"):
        m = re.match(r"\[question (\w+)\]", line)
        if m:
            q = m.group(1)
        elif line.startswith("["):
            q = None
        elif q and line.startswith("zh ="):
            out[q] = line.split("=", 1)[1].strip()
    return out


run_ok("init")
run_ok("units", "import", w.write("org.csv", ORG))
TOK = {}
for row in csv.reader(io.StringIO(w.pingyi("units", "list", "--format", "csv").stdout.lstrip("\ufeff"))):
    if row and row[0] != "id":
        TOK[row[0]] = row[5]
t.eq(sorted(TOK), sorted(["univ", "ga", "ba1", "ba2", "gb", "bb1", "bb2", "hq", "w1", "w2"]), "units imported")

col = w.collector()
problems = []


def vote(unit, answers, comment=None, complaint=False, qs=BRANCH_QS):
    """One open ballot; answers is a level for every question, or a dict."""
    fields = [(q, answers[q] if isinstance(answers, dict) else answers) for q in qs]
    if comment:
        fields.append(("comment", comment))
    if complaint:
        fields.append(("complaint", "1"))
    r = col.post("/u/" + TOK[unit], fields)
    if r.status != 303:
        problems.append("%s: %d %s" % (unit, r.status, r.text[:200]))


# ---- r0: the previous round of the series, closed ---------------------------------
run_ok("round", "create", "r0", "--form", "branch", "--series", "2026", "--title-zh", "2026年上半年党支部测评",
       "--title-en", "H1")
run_ok("round", "open", "r0")
for _ in range(5):
    vote("ba1", "s")
    vote("ba2", "s")
for level in ["s", "s", "b", "d", "d"]:     # bb1: 3/5 satisfied, 2/5 dissatisfied: vetoed to 后进
    vote("bb1", level)
run_ok("round", "close", "r0")

# ---- r1: the round exported ------------------------------------------------------------
TITLE = "2026年下半年党支部工作群众满意度测评"
run_ok("round", "create", "r1", "--form", "branch", "--series", "2026", "--title-zh", TITLE, "--title-en", "H2")
run_ok("round", "open", "r1")
# overall answers per unit (every question gets the same, except ba1's mechanism)
PLAN = {
    "ba1": ["s"] * 7 + ["b"],                  # 8/8, score 96.875 -> 96.8, 先进
    "ba2": ["s", "s", "d"],                    # 3 valid: under k, hidden
    "bb1": ["s"] * 7 + ["d"] * 2,              # 7/9 = 0.7777.. (JSON 0.7778), 后进, below target
    "bb2": ["s"] * 6,                          # the unit named like a formula: 6/6, 先进
}
MECHANISM = ["s", "s", "b", "d", "u", "u", "u", "u"]   # ba1: 4 valid on this question: hidden
for i, level in enumerate(PLAN["ba1"]):
    vote("ba1", dict({q: level for q in BRANCH_QS}, mechanism=MECHANISM[i]),
         comment=["组织生活会流于形式。", "通知太晚。"][i] if i < 2 else None, complaint=i < 2)
for level in PLAN["ba2"]:
    vote("ba2", level)
for i, level in enumerate(PLAN["bb1"]):
    vote("bb1", level, comment="活动室长期锁门。" if i == 0 else None, complaint=i == 0)
for level in PLAN["bb2"]:
    vote("bb2", level)
t.ok(not problems, "r0 and r1 ballots stored through the collector (303)", "\n".join(problems))

# complaints become tickets an hour after the round opened: move r1's opening
# (and r0's, which must stay the earlier of the series) two hours back
execute("UPDATE rounds SET opened_at = opened_at - 7200 WHERE id IN ('r0', 'r1')")
run_ok("complaints", "sync")
tickets = query("SELECT id, unit FROM tickets WHERE round = 'r1' ORDER BY id")
t.eq(sorted(u for _, u in tickets), ["ba1", "ba1", "bb1"], "three tickets: two for ba1, one for bb1")
ba1_tickets = [i for i, u in tickets if u == "ba1"]
run_ok("complaints", "resolve", str(ba1_tickets[0]), "--by", "王书记", "--note", "组织生活会改为每月固定时间。")
REC_BB1 = "整改措施：\n一、活动室每天开放；二、公布管理员电话。"
run_ok("rectify", "add", "r1", "--unit", "bb1", "--by", "李老师", "--text", REC_BB1)
run_ok("rectify", "add", "r1", "--unit", "bb2", "--by", "赵委员", "--text", FORMULA)
run_ok("review", "add", "r1", "--unit", "bb1", "--by", "张书记", "--text", "整改到位，继续保持。")
run_ok("review", "add", "r1", "--by", "校党委", "--text", "本轮测评总体良好。")
ESCAPE = "_x0041_ 不是 A"      # Excel would read _x0041_ in a string as "A"
run_ok("review", "add", "r1", "--unit", "ba1", "--by", "刘老师", "--text", ESCAPE)

# ---- rw: a weighted code round of the windows ---------------------------------------------
RULES = "[weights]\n甲 = 0.7498\n乙 = 0.2502\n丙 = 0.5\n"
run_ok("round", "create", "rw", "--form", "window", "--codes", "--rules", w.write("w.rules", RULES),
       "--scope", "hq", "--title-zh", "服务窗口会议测评", "--title-en", "Windows")
run_ok("round", "open", "rw")


def issue(group, count):
    r = run_ok("codes", "issue", "rw", "--group", group, "--scope", "hq", "--count", str(count), "--format", "csv")
    rows = list(csv.reader(io.StringIO(r.stdout.lstrip("\ufeff"))))[1:]
    return [row[1].rsplit("/", 1)[1] for row in rows]


def code_vote(code, unit, level):
    r = col.post("/c/%s/%s" % (code, TOK[unit]), [(q, level) for q in WINDOW_QS])
    if r.status != 303:
        problems.append("code %s/%s: %d %s" % (code[:4], unit, r.status, r.text[:200]))


A, B, C = issue("甲", 6), issue("乙", 5), issue("丙", 3)
WPLAN = {("w1", "甲"): ["s"] * 5, ("w1", "乙"): ["s"] * 4 + ["d"],
         ("w2", "甲"): ["s"] * 6, ("w2", "乙"): ["s"] * 5, ("w2", "丙"): ["s"] * 2}
for i, code in enumerate(A):
    if i < 5:
        code_vote(code, "w1", "s")
    code_vote(code, "w2", "s")
for i, code in enumerate(B):
    code_vote(code, "w1", "s" if i < 4 else "d")
    code_vote(code, "w2", "s")
for code in C[:2]:
    code_vote(code, "w2", "s")
t.ok(not problems, "rw: 24 code ballots stored", "\n".join(problems))
WEIGHTS = {"甲": 0.7498, "乙": 0.2502, "丙": 0.5}


# ---- what the figures must be, from the ballots sent -------------------------------------------
def figures(levels):
    valid = [x for x in levels if x != "u"]
    sat = sum(1 for x in valid if x in "sb")
    dis = sum(1 for x in valid if x == "d")
    return {"valid": len(valid), "rate": sat / len(valid), "score": sum(POINTS[x] for x in valid) / len(valid),
            "dissatisfied": dis / len(valid)} if valid else {"valid": 0}


EXPECT = {u: figures(levels) for u, levels in PLAN.items()}
EXPECT["gb+"] = figures(PLAN["bb1"] + PLAN["bb2"])
for u in ["w1", "w2"]:
    groups = {g: levels for (unit, g), levels in WPLAN.items() if unit == u}
    f = figures(sum(groups.values(), []))
    wsum = wrate = 0.0
    for g, levels in groups.items():
        wsum += WEIGHTS[g]
        wrate += WEIGHTS[g] * figures(levels)["rate"]
    f["rate"] = wrate / wsum
    EXPECT[u] = f
EXPECT["bb1.delta"] = 7 / 9 - 0.6
t.eq("%.4f" % EXPECT["w1"]["rate"], "0.9500", "w1's weighted rate (0.94996) prints as 0.9500 in JSON")


def tally(round_id):
    r = w.pingyi("tally", round_id, "--format", "json")
    return json.loads(r.stdout)


T1, TW = tally("r1"), tally("rw")
U1 = {u["id"]: u for u in T1["units"]}
UW = {u["id"]: u for u in TW["units"]}
for u, key in [("ba1", "ba1"), ("bb1", "bb1"), ("bb2", "bb2"), ("w1", "w1")]:
    e, own = EXPECT[key], (U1.get(u) or UW.get(u))["own"]
    t.ok((own["valid"], own["rate"], own["score"], own["dissatisfied"]) ==
         (e["valid"], float("%.4f" % e["rate"]), float("%.2f" % e["score"]), float("%.4f" % e["dissatisfied"])),
         "tally json agrees with the ballots sent for %s" % u, repr((own, e)))
t.ok(U1["ba2"]["own"]["rate"] is None and U1["ga"]["subtree"]["rate"] is None
     and U1["univ"]["subtree"]["rate"] is None and U1["ba1"]["questions"]["mechanism"]["rate"] is None,
     "json hides ba2 (3 valid), ga's and univ's subtree (by difference) and ba1's mechanism question")
t.ok(UW["w1"]["own"]["met"] is False and UW["w1"]["grade"] == "较好", "w1 (0.94996) does not meet 0.95: 较好")
# With weights, a rate with a small group in it would tell how that group voted
# (each of its answers moves the rate by w/n), so w2's rate is hidden while its
# grade stays; with the headline hidden, 乙 gives nothing away and is shown.
t.ok(UW["w2"]["own"]["valid"] == EXPECT["w2"]["valid"] and UW["w2"]["own"]["rate"] is None
     and UW["w2"]["grade"] not in (None, "未定"),
     "json hides w2's weighted rate (group 丙 has 2 answers) and still grades it", repr(UW["w2"]))
t.ok(UW["w2"]["groups"]["丙"]["rate"] is None and UW["w2"]["groups"]["乙"]["rate"] is not None
     and UW["w2"]["groups"]["甲"]["rate"] == 1.0,
     "json hides w2's group 丙 (2 valid); 乙 and 甲 stay shown")


# ---- export: the files --------------------------------------------------------------------
def export(*args):
    r = w.pingyi("export", *args)
    t.ok(r.returncode == 0 and not sanitizer_reports(r.stderr) and r.stderr == "",
         "pingyi export %s" % " ".join(args), r.stdout + r.stderr)
    return r


X1, XW = w.path("r1.xlsx"), w.path("rw.xlsx")
export("r1", "--format", "xlsx", "--out", X1)
export("rw", "--format", "xlsx", "--out", XW)
export("r1", "--format", "csv", "--table", "grades", "--out", w.path("r1-grades.csv"))
export("r1", "--format", "csv", "--out", w.path("r1-default.csv"))
export("r1", "--format", "csv", "--table", "rectification", "--out", w.path("r1-rect.csv"))
export("rw", "--format", "csv", "--table", "grades", "--out", w.path("rw-grades.csv"))
t.ok(zipfile.is_zipfile(X1) and zipfile.ZipFile(X1).testzip() is None, "r1.xlsx is a sound zip file")
umask = os.umask(0)
os.umask(umask)
t.eq(stat.S_IMODE(os.stat(X1).st_mode), 0o666 & ~umask, "the file gets the mode a new file gets (umask), not 0600")
t.eq(sorted(f for f in os.listdir(w.dir) if f.startswith(".")), [], "no temporary file is left behind")

wb1 = openpyxl.load_workbook(X1)
wbw = openpyxl.load_workbook(XW)
t.eq(wb1.sheetnames, ["分类定级汇总表", "整改汇总表", "明细"], "r1.xlsx sheets: 分类定级汇总表, 整改汇总表, 明细")
t.eq(wbw.sheetnames, ["分类定级汇总表", "整改汇总表", "明细", "参评率"], "rw.xlsx (a code round) adds 参评率")


def sheet_xml(path):
    z = zipfile.ZipFile(path)
    return {n: z.read(n).decode("utf-8") for n in z.namelist() if n.startswith("xl/worksheets/sheet")}


for path in [X1, XW]:
    xml = sheet_xml(path)
    t.ok(xml and not any("<f>" in x or "<f " in x for x in xml.values()),
         "%s: no cell of any sheet is a formula" % os.path.basename(path))


# ---- 分类定级汇总表 ------------------------------------------------------------------------
def table(ws, header_row):
    """{unit id: [cells]} of a sheet whose header is at header_row (1-based)."""
    head = [c.value for c in ws[header_row]]
    rows = {}
    for r in ws.iter_rows(min_row=header_row + 1):
        if r[0].value is None or r[1].value is None or r[0].value == "说明：":
            continue
        rows[r[0].value] = r
    return head, rows


def is_hidden(cell):
    return cell.data_type == "s" and cell.value == DASH


def check_figure(cell, want, scale, what, fmt):
    """A shown figure: a number, cut from the exact value, in format fmt."""
    ok = cell.data_type == "n" and isinstance(cell.value, (int, float)) and \
        abs(cell.value - cut(want, scale)) < 1e-9 and cell.number_format == fmt
    t.ok(ok, "%s = %r (%s)" % (what, cut(want, scale), fmt),
         "got %r (%s, %s), exact %r" % (cell.value, cell.data_type, cell.number_format, want))


ws = wb1["分类定级汇总表"]
t.eq(ws.freeze_panes, "C4", "the title, info and header rows and the id and name columns are frozen (C4)")
t.ok(TITLE in str(ws["A1"].value) and "分类定级汇总表" in str(ws["A1"].value), "row 1: the round's title",
     ws["A1"].value)
head, rows = table(ws, 3)
t.eq(head, GRADES_HEAD, "header row")
t.eq(list(rows), [u["id"] for u in T1["units"]], "one row per listed unit, in tree order")
t.eq([rows[u["id"]][1].alignment.indent for u in T1["units"]], [float(u["depth"]) for u in T1["units"]],
     "unit names are indented by their depth")
t.eq(rows["bb2"][1].value, FORMULA, "the formula-like name is the plain text")
t.eq(rows["bb2"][1].data_type, "s", "... in a string cell, not a formula")

for u in T1["units"]:
    r, uid = rows[u["id"]], u["id"]
    if u["own"]:
        t.ok((r[COL["票数"]].value, r[COL["有效票"]].value) == (u["own"]["ballots"], u["own"]["valid"]),
             "%s: 票数 and 有效票 equal the tally's" % uid,
             repr((r[COL["票数"]].value, r[COL["有效票"]].value, u["own"])))
    else:
        t.ok(all(r[COL[c]].value is None for c in GRADES_HEAD[4:14]), "%s (not rated): own columns empty" % uid)
    if u["own"] and u["own"]["rate"] is None:
        t.ok(all(is_hidden(r[COL[c]]) for c in ["满意率", "得分", "不满意率", "是否达标"]),
             "%s: hidden figures are \"—\" text, no number" % uid,
             repr([(r[COL[c]].value, r[COL[c]].data_type) for c in ["满意率", "得分", "不满意率", "是否达标"]]))
    if u["subtree"] and u["subtree"]["rate"] is None:
        t.ok(all(is_hidden(r[COL[c]]) for c in ["含下级满意率", "含下级得分", "含下级是否达标"])
             and r[COL["含下级票数"]].value == u["subtree"]["ballots"],
             "%s: hidden subtree figures are \"—\"; its ballot count is shown" % uid)
    t.eq(r[COL["等级"]].value, u["grade"], "%s: 等级 %s" % (uid, u["grade"]))
    t.eq(r[COL["排名"]].value, u["rank"], "%s: 排名 %s" % (uid, u["rank"]))

for uid in ["ba1", "bb1", "bb2"]:
    e, r = EXPECT[uid], rows[uid]
    check_figure(r[COL["满意率"]], e["rate"], 10000, "%s 满意率" % uid, "0.00%")
    check_figure(r[COL["得分"]], e["score"], 10, "%s 得分" % uid, "0.0")
    check_figure(r[COL["不满意率"]], e["dissatisfied"], 10000, "%s 不满意率" % uid, "0.00%")
t.eq(rows["bb1"][COL["满意率"]].value, 0.7777, "bb1's 7/9 is stored cut, 0.7777 (the JSON rounds: 0.7778)")
t.eq(rows["ba1"][COL["得分"]].value, 96.8, "ba1's score 96.875 is stored cut to 96.8")
check_figure(rows["gb"][COL["含下级满意率"]], EXPECT["gb+"]["rate"], 10000, "gb 含下级满意率", "0.00%")
t.eq(rows["gb"][COL["含下级有效票"]].value, U1["gb"]["subtree"]["valid"], "gb 含下级有效票")
t.eq([rows[u][COL["是否达标"]].value for u in ["ba1", "bb1", "bb2"]], ["是", "否", "是"], "是否达标")

# trend: bb1 was 后进 in r0 too
check_figure(rows["bb1"][COL["较上轮变化"]], EXPECT["bb1.delta"], 10000, "bb1 较上轮变化", "+0.00%;-0.00%;0.00%")
t.eq(rows["bb1"][COL["连续后进次数"]].value, 2, "bb1: 后进 two rounds in a row")
t.eq((rows["ba1"][COL["较上轮变化"]].value, rows["ba1"][COL["连续后进次数"]].value), (0, None),
     "ba1: no change, no 后进")
t.ok(is_hidden(rows["ba2"][COL["较上轮变化"]]) and U1["ba2"]["trend"]["delta"] is None,
     "ba2 (hidden now): the change is \"—\"")

# below-target rows filled light red: bb1 only (rated, rate shown, below 95%)
RED = "FFFFC7CE"


def filled(cell):
    return cell.fill is not None and cell.fill.fill_type == "solid" and cell.fill.fgColor.rgb == RED


t.eq(sorted(uid for uid, r in rows.items() if all(filled(c) for c in r[:len(GRADES_HEAD)])), ["bb1"],
     "the whole row of the unit below target (bb1) has the light red fill")
t.eq(sorted(uid for uid, r in rows.items() if any(filled(c) for c in r)), ["bb1"], "no other row has it")

# the note at the bottom
notes = "\n".join(str(c.value) for r in ws.iter_rows() for c in r[:1] if c.value and
                  (str(c.value).startswith("说明") or re.match(r"\d+\. ", str(c.value))))
for want in ["95%", "有效票少于 5 票", DASH, "先进 满意率≥95% 且得分≥90", "较好 满意率≥90%", "一般 满意率≥80%",
             "其余为后进", "1/3", "未定"]:
    t.ok(want in notes, "the note states %r" % want, notes)

# ---- the weighted code round: 94.99%, not 95.00% -----------------------------------------------
wsw = wbw["分类定级汇总表"]
_, roww = table(wsw, 3)
check_figure(roww["w1"][COL["满意率"]], EXPECT["w1"]["rate"], 10000, "w1 满意率 (weighted)", "0.00%")
t.eq(roww["w1"][COL["满意率"]].value, 0.9499, "w1's 0.94996 is stored as 0.9499: Excel shows 94.99%, not 95.00%")
t.eq((roww["w1"][COL["是否达标"]].value, roww["w1"][COL["等级"]].value), ("否", "较好"), "w1: 否, 较好")
t.ok(all(filled(c) for c in roww["w1"][:len(GRADES_HEAD)]) and not any(filled(c) for c in roww["w2"]),
     "w1 (below target) is filled red; w2 is not")
t.ok("甲 0.7498、乙 0.2502、丙 0.5" in "\n".join(str(c.value) for r in wsw.iter_rows() for c in r[:1] if c.value),
     "the note states the group weights")

# ---- 明细 ----------------------------------------------------------------------------------
for wb, tl, form, qs in [(wb1, T1, "branch", BRANCH_QS), (wbw, TW, "window", WINDOW_QS)]:
    ws = wb["明细"]
    t.eq(ws.freeze_panes, "C5", "%s 明细: header rows and the unit columns are frozen (C5)" % tl["round"])
    top = [c.value for c in ws[3]]
    sub = [c.value for c in ws[4]]
    want_top = ["单位编号", "单位"]
    for q in qs:
        want_top += [labels(form)[q], None, None]
    gl = {}
    for g in tl["groups"]:
        gl[g] = ("参评群体：%s（权重 %s）" % (g, ("%.4f" % WEIGHTS[g]).rstrip("0").rstrip("."))
                 if tl["round"] == "rw" else "参评群体：%s" % g)
        want_top += [gl[g], None]
    t.eq(top, want_top, "%s 明细: question labels in Chinese (form order), then voter groups" % tl["round"])
    t.eq(sub[2:5], ["有效票", "满意率", "得分"], "... each question: 有效票, 满意率, 得分")
    units = {r[0].value: r for r in ws.iter_rows(min_row=5) if r[0].value}
    t.eq(list(units), [u["id"] for u in tl["units"] if u["rated"]], "... one row per rated unit, tree order")
    bad = []
    for u in tl["units"]:
        if not u["rated"]:
            continue
        r = units[u["id"]]
        items = [(u["questions"][q], r[2 + 3 * i:5 + 3 * i]) for i, q in enumerate(qs)]
        items += [(u["groups"][g], r[2 + 3 * len(qs) + 2 * i:4 + 3 * len(qs) + 2 * i]) for i, g in enumerate(tl["groups"])]
        for fig, cells in items:
            if cells[0].value != fig["valid"]:
                bad.append((u["id"], "valid", cells[0].value, fig))
            for cell, key, scale in zip(cells[1:], ["rate", "score"], [10000, 10]):
                if fig[key] is None:
                    if not is_hidden(cell):
                        bad.append((u["id"], key, "not hidden", cell.value, fig))
                elif not (cell.data_type == "n" and abs(cell.value - fig[key]) <= 1.0 / scale + 1e-9
                          and cell.value <= fig[key] + 0.5 / scale and
                          cell.number_format == ("0.00%" if key == "rate" else "0.0")):
                    bad.append((u["id"], key, cell.value, cell.number_format, fig))
    t.ok(not bad, "%s 明细: every shown figure equals the tally's (cut), every hidden one is \"—\"" % tl["round"],
         "\n".join(map(repr, bad)))
d1 = {r[0].value: r for r in wb1["明细"].iter_rows(min_row=5) if r[0].value}
mi = 2 + 3 * BRANCH_QS.index("mechanism")
t.ok(d1["ba1"][mi].value == 4 and is_hidden(d1["ba1"][mi + 1]) and is_hidden(d1["ba1"][mi + 2]),
     "ba1's 工作机制好 (4 valid): 有效票 4, 满意率 and 得分 \"—\"")
dw = {r[0].value: r for r in wbw["明细"].iter_rows(min_row=5) if r[0].value}
gi = {g: 2 + 3 * len(WINDOW_QS) + 2 * i for i, g in enumerate(TW["groups"])}
t.ok(is_hidden(dw["w2"][gi["丙"] + 1]) and not is_hidden(dw["w2"][gi["乙"] + 1]) and dw["w2"][gi["甲"] + 1].value == 1,
     "w2: group 丙 (2 valid) is \"—\"; 乙 is shown; 甲 is 100%")

# ---- no hidden figure anywhere, as any number --------------------------------------------------
SECRET = {"ba2 rate": EXPECT["ba2"]["rate"], "ba2 score": EXPECT["ba2"]["score"],
          "ba2 dissatisfied": EXPECT["ba2"]["dissatisfied"],
          "ba1 mechanism rate": 0.75, "ba1 mechanism score": 275 / 4,
          "ga subtree rate": 10 / 11, "univ subtree rate": 23 / 26}


def numbers(wb):
    return [c.value for s in wb for r in s.iter_rows() for c in r if isinstance(c.value, (int, float))]


found = [(k, v) for k, v in SECRET.items() for n in numbers(wb1)
         if abs(n - v) < 0.00011 or abs(n - v * 100) < 0.011]
t.ok(not found, "no hidden figure of r1 appears as a number in any sheet (cut or rounded)", repr(found))
hidden_in_tally = sum(2 if q else 1 for u in TW["units"] if u["rated"]
                      for q, figs in [(True, u["questions"]), (False, u["groups"])]
                      for f in figs.values() if f["rate"] is None)
t.eq(sum(1 for r in wbw["明细"].iter_rows(min_row=5) for c in r if is_hidden(c)), hidden_in_tally,
     "rw 明细: as many \"—\" cells as hidden figures in the tally (%d)" % hidden_in_tally)

# ---- 参评率 ----------------------------------------------------------------------------------
ws = wbw["参评率"]
t.eq(ws.freeze_panes, "B4", "参评率: header frozen")
part = {r[0].value: r for r in ws.iter_rows(min_row=4) if r[0].value and r[1].value is not None}
for p in TW["participation"]:
    r = part.get(p["group"])
    t.ok(r is not None and (r[1].value, r[2].value) == (p["issued"], p["used"])
         and abs(r[3].value - cut(p["used"] / p["issued"], 10000)) < 1e-9 and r[3].number_format == "0.00%"
         and "%.4f" % (p["used"] / p["issued"]) == "%.4f" % p["rate"],
         "参评率 %s: %d issued, %d used, %.4f (cut)" % (p["group"], p["issued"], p["used"],
                                                   cut(p["used"] / p["issued"], 10000)),
         repr([c.value for c in r] if r else None))
t.eq(part["丙"][3].value, 0.6666, "丙: 2 of 3 is stored as 0.6666 (66.66%)")
t.eq([c.value for c in part["合计"][:3]], ["合计", 14, 13], "a total row: 14 issued, 13 used")

# ---- 整改汇总表 ---------------------------------------------------------------------------------
ws = wb1["整改汇总表"]
t.eq(ws.freeze_panes, "C4", "整改汇总表: header and unit columns frozen")
head = [c.value for c in ws[3]]
t.eq(head, RECT_HEAD, "整改汇总表 header")
rect = {}
for r in ws.iter_rows(min_row=4):
    if r[1].value and not str(r[0].value or "").startswith("说明") and not str(r[1].value).startswith("说明"):
        rect[r[0].value or r[1].value] = r
t.eq(list(rect), ["ba1", "bb1", "bb2", "（本轮总体）"],
     "rows: units with tickets or records in tree order, then the round as a whole")
times = {row[0]: row for row in csv.reader(io.StringIO(
    w.pingyi("complaints", "times", "r1", "--format", "csv").stdout.lstrip("\ufeff")))}
for uid in ["ba1", "bb1"]:
    r, x = rect[uid], times[uid]
    want = [int(x[1]), int(x[2]), int(x[3])] + [float(v) if v else None for v in x[4:7]]
    got = [c.value for c in r[2:5]] + [None if c.value is None else round(c.value, 1) for c in r[5:8]]
    t.eq(got, want, "%s: tickets, resolved, open and hours equal `complaints times`" % uid)
t.eq([c.value for c in rect["ba1"][2:5]], [2, 1, 1], "ba1: 2 tickets, 1 resolved, 1 open")
t.ok(rect["bb1"][8].value.endswith("李老师：" + REC_BB1) and re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d ",
                                                                       rect["bb1"][8].value),
     "bb1's rectification record: date, who and the text (line break kept)", rect["bb1"][8].value)
t.ok(rect["bb1"][9].value.endswith("张书记：整改到位，继续保持。"), "bb1's review", rect["bb1"][9].value)
t.ok(rect["bb2"][8].value.endswith("赵委员：" + FORMULA) and rect["bb2"][8].data_type == "s"
     and rect["bb2"][1].value == FORMULA and rect["bb2"][1].data_type == "s",
     "bb2: name and record are text cells (no formula)")
t.ok(rect["bb2"][2].value is None, "bb2 has no tickets: the ticket columns are empty")
t.ok(rect["（本轮总体）"][9].value.endswith("校党委：本轮测评总体良好。"), "the round's own review")
t.ok(rect["ba1"][9].value.endswith("刘老师：" + ESCAPE), "ba1's review reads as typed", rect["ba1"][9].value)
t.ok("_x005F_x0041_ 不是 A" in zipfile.ZipFile(X1).read("xl/sharedStrings.xml").decode("utf-8"),
     "... its _x0041_ is stored escaped (_x005F_x0041_), so Excel does not show it as \"A\"")
t.ok(not any(c in json.dumps([[c.value for c in r] for r in ws.iter_rows()], ensure_ascii=False)
             for c in ["组织生活会流于形式", "通知太晚", "活动室长期锁门"]),
     "complaint texts are not in the workbook")


# ---- CSV ------------------------------------------------------------------------------------
def read_csv(name):
    raw = open(w.path(name), "rb").read()
    text = raw.decode("utf-8")
    return raw, list(csv.reader(io.StringIO(text[1:] if text.startswith("\ufeff") else text, newline="")))


raw, g = read_csv("r1-grades.csv")
t.ok(raw.startswith(b"\xef\xbb\xbf"), "grades csv: UTF-8 BOM")
t.ok(raw.endswith(b"\r\n") and raw.count(b"\n") == raw.count(b"\r\n") == 1 + len(T1["units"]),
     "grades csv: CRLF after the header and each of the %d units" % len(T1["units"]))
t.eq(open(w.path("r1-default.csv"), "rb").read(), raw, "--table defaults to grades")
t.eq(g[0], GRADES_HEAD, "grades csv header")
gr = {row[0]: row for row in g[1:]}
t.eq(list(gr), [u["id"] for u in T1["units"]], "grades csv: one row per unit in tree order")
t.eq(gr["bb2"][1], "'" + FORMULA, "grades csv: the formula-like name is neutralised with a leading '")
t.ok(b'"\'=HYPERLINK(""http://x"",""y"")"' in raw, "... quoted, quotes doubled")
t.eq([gr["bb1"][COL[c]] for c in ["票数", "有效票", "满意率", "得分", "不满意率", "是否达标", "等级", "排名",
                                  "较上轮变化", "连续后进次数"]],
     ["9", "9", "77.77%", "77.7", "22.22%", "否", "后进", "3", "+17.77%", "2"],
     "grades csv: bb1's figures as the workbook shows them (cut)")
t.eq([gr["ba2"][COL[c]] for c in ["票数", "有效票", "满意率", "得分", "不满意率", "是否达标", "等级"]],
     ["3", "3", DASH, DASH, DASH, DASH, "未定"], "grades csv: ba2 (under k): counts, then \"—\"")
t.eq([gr["univ"][COL[c]] for c in ["票数", "满意率", "含下级票数", "含下级满意率"]],
     ["", "", str(U1["univ"]["subtree"]["ballots"]), DASH], "grades csv: univ: own empty, subtree hidden")
t.eq(gr["gb"][COL["含下级满意率"]], "%.2f%%" % (cut(EXPECT["gb+"]["rate"], 10000) * 100), "grades csv: gb subtree")
t.ok("66.6" not in raw.decode("utf-8") and "0.6666" not in raw.decode("utf-8"), "grades csv: ba2's rate appears nowhere")
_, gw = read_csv("rw-grades.csv")
t.eq({row[0]: row[COL["满意率"]] for row in gw[1:]}["w1"], "94.99%", "rw grades csv: w1 is 94.99%")

raw, rc_rows = read_csv("r1-rect.csv")
t.ok(raw.startswith(b"\xef\xbb\xbf") and raw.endswith(b"\r\n"), "rectification csv: BOM, ends with CRLF")
t.eq(rc_rows[0], RECT_HEAD, "rectification csv header")
rr = {row[0] or row[1]: row for row in rc_rows[1:]}
t.eq(list(rr), ["ba1", "bb1", "bb2", "（本轮总体）"], "rectification csv rows")
t.eq(rr["bb2"][1], "'" + FORMULA, "rectification csv: the formula-like name is neutralised")
t.ok(rr["bb1"][8].endswith("李老师：" + REC_BB1), "rectification csv: the record, its line break kept in the cell")
t.ok(rr["ba1"][9].endswith("刘老师：" + ESCAPE), "rectification csv: text as typed (no XLSX escape)")
t.eq(rr["ba1"][2:5], ["2", "1", "1"], "rectification csv: ba1's tickets")
t.eq(raw.count(b"\r\n"), 1 + 4, "rectification csv: CRLF ends each record; the line break inside a cell is LF")
t.ok(all(not c or c[0] not in "=+-@" for row in rc_rows + g for c in row if c not in (DASH,) and
         not re.match(r"^[+-]\d+\.\d\d%$", c)),
     "no text cell of either table starts with = + - @")

# ---- refusals, and the file is written whole or not at all -----------------------------------
keep = w.write("keep.xlsx", "old contents")
refused(["export", "nosuch", "--format", "xlsx", "--out", keep], 1, 'no round "nosuch"', "an unknown round")
refused(["export", "r1", "--format", "pdf", "--out", keep], 1, 'unknown format "pdf"', "an unknown format")
refused(["export", "r1", "--format", "csv", "--table", "x", "--out", keep], 1, 'unknown table "x"',
        "an unknown table")
refused(["export", "r1", "--format", "xlsx", "--table", "grades", "--out", keep], 1, "--table",
        "--table with xlsx")
refused(["export", "r1", "--format", "xlsx"], 2, "usage:", "no --out: usage")
refused(["export", "--format", "xlsx", "--out", keep], 2, "usage:", "no round: usage")
refused(["export", "r1", "--format", "xlsx", "--out", w.path("no/such/dir/x.xlsx")], 1, "cannot write",
        "a folder that does not exist")
os.mkdir(w.path("adir"))
refused(["export", "r1", "--format", "xlsx", "--out", w.path("adir")], 1, "cannot replace",
        "--out naming a folder: refused after writing")
refused(["export", "r1", "--format", "csv", "--out", w.path("adir")], 1, "cannot replace", "... csv too")
t.eq(open(keep).read(), "old contents", "the refused exports left the existing file as it was")
t.eq(sorted(f for f in os.listdir(w.dir) if f.startswith(".")) + os.listdir(w.path("adir")), [],
     "and left no temporary file")
r = w.pingyi("export", "--help")
t.ok(r.returncode == 0 and "--format xlsx" in r.stdout and "--table" in r.stdout, "export --help", r.stderr)
r = w.pingyi("--help")
t.ok("export ROUND" in r.stdout, "pingyi --help lists export")
export("r1", "--format", "xlsx", "--out", keep)
t.ok(zipfile.is_zipfile(keep), "an existing file is replaced by the whole workbook")

# records beyond what one Excel cell holds (32767 characters) are cut there, saying so
CUT_NOTE = "……（内容超出单元格长度，全文见台账：pingyi ledger）"
for i in range(9):
    run_ok("rectify", "add", "r1", "--unit", "ba2", "--by", "记录员%d" % i, "--text", "整" * 3999 + str(i))
export("r1", "--format", "xlsx", "--out", w.path("long.xlsx"))
export("r1", "--format", "csv", "--table", "rectification", "--out", w.path("long.csv"))
cellx = [r for r in openpyxl.load_workbook(w.path("long.xlsx"))["整改汇总表"].iter_rows(min_row=4)
         if r[0].value == "ba2"][0][8].value
cellc = {row[0]: row for row in read_csv("long.csv")[1][1:]}["ba2"][8]
t.ok(len(cellx) == 32767 and cellx.endswith(CUT_NOTE) and all("整" * 3999 + str(i) in cellx for i in range(8))
     and "记录员8：整" in cellx and "整" * 3999 + "8" not in cellx,
     "9 records of 4000 characters: the cell holds 8 whole, the 9th cut at 32767 characters saying so",
     "%d characters, ends %r" % (len(cellx), cellx[-40:]))
t.eq(cellc, cellx, "the CSV cell is the same")

col.stop()
t.ok(not sanitizer_reports(col.log_text()), "collector: no sanitizer reports", col.log_text()[-2000:])
t.done()
