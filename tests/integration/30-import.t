#!/usr/bin/python3
"""pingyi units import: all or nothing, and every refusal names FILE:LINE.

A good file (BOM, CRLF, quoted names with commas and "" quotes, Chinese) goes
in; then each malformed file must fail with exit 1, "pingyi: FILE:LINE: why"
naming the right line, and leave the units table exactly as it was. A changed
file imported again updates units in place and keeps their tokens."""
import csv
import io
import os
import re
import sqlite3
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import harness  # noqa: E402

HEADER = "id,parent,kind,name_zh,name_en"

t = harness.Tap()
w = harness.Workspace()
w.pingyi("init", "--base-url", "https://pingyi.example.edu.cn", check=True)


def write_bytes(name, data):
    p = w.path(name)
    with open(p, "wb") as f:
        f.write(data)
    return p


def crlf(lines, bom=True):
    return (("\ufeff" if bom else "") + "\r\n".join(lines) + "\r\n").encode("utf-8")


def units_dump():
    """Every column of every unit, in storage order: the 'byte-for-byte' view."""
    con = sqlite3.connect(w.db)
    try:
        return [tuple(r) for r in con.execute("SELECT rowid, * FROM units ORDER BY rowid")]
    finally:
        con.close()


def listed():
    r = w.pingyi("units", "list", "--format", "csv")
    return {row["id"]: row for row in csv.DictReader(io.StringIO(r.stdout.lstrip("\ufeff"), newline=""))}


# ---- a good import ----
GOOD = [
    HEADER,
    'dw,,committee,中共示范大学委员会,"Party Committee, Example University"',
    'zb2-1,zb2,branch,"计算机学院""第一""党支部",Computing First Branch',   # child before its parent
    'zb2,dw,general_branch,计算机学院党委,"School of Computing ""CS"" Committee"',
    'zb1,dw,general_branch,机关党总支,Admin General Branch',
    'zb1-1,zb1,branch,"机关第一党支部，综合办","Admin Branch 1, General Office"',
    'hq,dw,department,后勤处,Logistics',
    'win.1,hq,window,食堂一号窗口,Canteen_Window 1',
]
WANT = {
    "dw": ("", "committee", "中共示范大学委员会", "Party Committee, Example University"),
    "zb2-1": ("zb2", "branch", '计算机学院"第一"党支部', "Computing First Branch"),
    "zb2": ("dw", "general_branch", "计算机学院党委", 'School of Computing "CS" Committee'),
    "zb1": ("dw", "general_branch", "机关党总支", "Admin General Branch"),
    "zb1-1": ("zb1", "branch", "机关第一党支部，综合办", "Admin Branch 1, General Office"),
    "hq": ("dw", "department", "后勤处", "Logistics"),
    "win.1": ("hq", "window", "食堂一号窗口", "Canteen_Window 1"),
}
good = write_bytes("good.csv", crlf(GOOD))
r = w.pingyi("units", "import", good)
t.ok(r.returncode == 0 and "imported 7 units" in r.stdout and "7 new" in r.stdout,
     "a good file (BOM, CRLF, quotes, Chinese) imports 7 new units",
     "rc %d\n%s%s" % (r.returncode, r.stdout, r.stderr))
got = listed()
t.eq({k: (v["parent"], v["kind"], v["name_zh"], v["name_en"]) for k, v in got.items()}, WANT,
     "units list --format csv shows every unit with its parent, kind and names")
tokens = {k: v["token"] for k, v in got.items()}
t.ok(len(set(tokens.values())) == 7 and all(re.fullmatch(r"[2-9a-z]{8}", x) for x in tokens.values()),
     "each unit has its own 8-character token", repr(tokens))
t.ok(all(v["url"] == "https://pingyi.example.edu.cn/u/" + v["token"] for v in got.values()),
     "each unit's URL is BASE_URL/u/TOKEN")
r = w.pingyi("units", "list")
t.ok(r.returncode == 0 and all(name in r.stdout for name in
                               ["中共示范大学委员会", '计算机学院"第一"党支部', "Admin Branch 1, General Office",
                                "食堂一号窗口"]),
     "units list (table) shows them", r.stdout + r.stderr)
t.ok(r.stdout.index("计算机学院党委") < r.stdout.index('计算机学院"第一"党支部'),
     "units list shows a parent above its child even when the file listed the child first", r.stdout)

# ---- malformed files: nothing changes, the line is named ----
# Each file first changes some existing units and adds one, so that a partial
# import would show in the dump.
PRELUDE = [
    HEADER,
    "dw,,committee,改了名的党委,Renamed Committee",
    "zb1-1,zb2,branch,搬家的支部,Moved Branch",
    "new1,dw,department,新部门,New Department",
]


def bad(name, data, line, why=None, line_alt=()):
    """data: the file's bytes; line: the line the message must name."""
    path = write_bytes("bad-%d.csv" % t.n, data)
    before = units_dump()
    r = w.pingyi("units", "import", path)
    after = units_dump()
    first = r.stderr.splitlines()[0] if r.stderr else ""
    lines = (line,) + tuple(line_alt)
    m = re.match(r"pingyi: %s:(\d+): (.+)" % re.escape(path), first)
    problems = []
    if r.returncode != 1:
        problems.append("exit %d, want 1" % r.returncode)
    if not m:
        problems.append("first line of stderr is not 'pingyi: %s:LINE: why'" % path)
    elif int(m.group(1)) not in lines:
        problems.append("names line %s, want %s" % (m.group(1), " or ".join(map(str, lines))))
    elif why and not re.search(why, m.group(2), re.I):
        problems.append("the reason does not match %r" % why)
    if "nothing was imported" not in r.stderr:
        problems.append("does not say that nothing was imported")
    if after != before:
        problems.append("the units table changed")
    if r.stdout:
        problems.append("printed to stdout: %r" % r.stdout)
    t.ok(not problems, "%s: exit 1, names line %d, nothing changed" % (name, line),
         "\n".join(problems) + "\nstderr: " + r.stderr)


bad("wrong header", crlf(["id,parent,kind,name,name_en"] + PRELUDE[1:]), 1, "header")
bad("header with a missing column", crlf(["id,parent,kind,name_zh"] + PRELUDE[1:]), 1, "header")
bad("data without a header", crlf(PRELUDE[1:]), 1, "header")
bad("wrong field count (4)", crlf(PRELUDE + ["x1,dw,branch,某支部"]), 5, "field")
bad("wrong field count (6)", crlf(PRELUDE + ["x1,dw,branch,某支部,Some Branch,extra"]), 5, "field")
bad("bad kind", crlf(PRELUDE + ["x1,dw,office,某办公室,Some Office"]), 5, "kind")
bad("kind with different case", crlf(PRELUDE + ["x1,dw,Branch,某支部,Some Branch"]), 5, "kind")
for bad_id in ["a b", "x/y", "../x", "支部", ".hidden", "-x", "a" * 65, "a;DROP"]:
    bad("bad id %r" % bad_id[:20], crlf(PRELUDE + ["%s,dw,branch,某支部,Some Branch" % bad_id]), 5, "id")
bad("empty id", crlf(PRELUDE + [",dw,branch,某支部,Some Branch"]), 5, "id")
bad("bad parent id", crlf(PRELUDE + ["x1,../dw,branch,某支部,Some Branch"]), 5, "parent")
bad("parent missing", crlf(PRELUDE + ["x1,nosuch,branch,某支部,Some Branch", "x2,dw,branch,另一支部,Other"]), 5,
    "nosuch")
bad("own parent", crlf(PRELUDE + ["x1,x1,branch,某支部,Some Branch"]), 5, "parent")
bad("parent cycle a->b->a", crlf(PRELUDE + ["a,b,branch,甲支部,Branch A", "b,a,branch,乙支部,Branch B"]), 5,
    "loop|ancestor", line_alt=(6,))
# The loop closes through units already in the database: only the file's row
# can be blamed. zb2-1 was stored before zb2 (the good file listed it first).
bad("parent cycle through stored units (zb2 under its own child)",
    crlf(PRELUDE + ["zb2,zb2-1,general_branch,计算机学院党委,School of Computing"]), 5, "loop|ancestor")
bad("parent cycle through stored units (dw under a grandchild)",
    crlf([HEADER, "x1,dw,branch,某支部,Some Branch", "dw,zb1-1,committee,党委,Committee"]), 3,
    "loop|ancestor")
bad("duplicate id", crlf(PRELUDE + ["x1,dw,branch,某支部,Some Branch", "x1,dw,branch,某支部,Some Branch"]), 6,
    "twice|duplicate")
bad("duplicate of a unit changed earlier in the file", crlf(PRELUDE + ["dw,,committee,党委,Committee"]), 5,
    "twice|duplicate")
bad("empty name_zh", crlf(PRELUDE + ["x1,dw,branch,,Some Branch"]), 5, "name_zh")
bad("empty name_en", crlf(PRELUDE + ['x1,dw,branch,某支部,""']), 5, "name_en")
bad("name_zh of 101 characters", crlf(PRELUDE + ["x1,dw,branch,%s,Some Branch" % ("党" * 101)]), 5, "name_zh")
bad("name_en of 101 characters", crlf(PRELUDE + ["x1,dw,branch,某支部,%s" % ("n" * 101)]), 5, "name_en")
bad("name with a line break inside quotes", crlf(PRELUDE + ['x1,dw,branch,"某\r\n支部",Some Branch']), 5,
    "name_zh")
gbk = ("\r\n".join(PRELUDE) + "\r\n").encode("gbk")
bad("GBK-encoded file (Excel's plain 'CSV')", gbk, 2, "UTF-8")
bad("GBK name on a later line",
    crlf(PRELUDE) + "x1,dw,branch,某支部,Some Branch\r\n".encode("gbk"), 5, "UTF-8")
bad("unterminated quote", crlf(PRELUDE + ['x1,dw,branch,"某支部,Some Branch', "x2,dw,branch,乙,B"]), 5,
    "quote")
bad("text after a closing quote", crlf(PRELUDE + ['x1,dw,branch,"某"支部,Some Branch']), 5, "quote")
bad("NUL byte in a name", crlf(PRELUDE) + "x1,dw,branch,某\0支部,Some Branch\r\n".encode(), 5)
bad("empty file", b"", 1, "empty")
bad("only a BOM", b"\xef\xbb\xbf", 1, "empty")

path = write_bytes("header-only.csv", crlf([HEADER]))
before = units_dump()
r = w.pingyi("units", "import", path)
t.ok(r.returncode == 1 and r.stderr.startswith("pingyi: %s:" % path) and units_dump() == before,
     "a file with only the header: exit 1, named, nothing changed", r.stderr)
before = units_dump()
r = w.pingyi("units", "import", w.path("missing.csv"))
t.ok(r.returncode == 1 and "missing.csv" in r.stderr and units_dump() == before,
     "a file that does not exist: exit 1 with its name", r.stderr)
t.eq(listed(), got, "after all the refused files, units list is exactly as after the good import")

# ---- re-import updates in place and keeps tokens ----
CHANGED = [
    HEADER,
    'dw,,committee,中共示范大学委员会,"Party Committee, Example University"',
    'zb2,dw,general_branch,计算机与人工智能学院党委,"School of Computing and AI Committee"',
    'zb2-1,zb2,branch,计算机学院第一党支部,Computing First Branch',
    'zb1,dw,general_branch,机关党委,Admin Committee',
    'zb1-1,zb2,branch,"机关第一党支部，综合办","Admin Branch 1, General Office"',   # moved
    'win.1,dw,window,食堂一号窗口（新）,Canteen Window 1 (new)',                 # moved
    'win.2,hq,window,食堂二号窗口,Canteen Window 2',                              # new
]                                                                                # hq: not listed, kept
changed = write_bytes("changed.csv", crlf(CHANGED, bom=False))
r = w.pingyi("units", "import", changed)
t.ok(r.returncode == 0 and "1 new" in r.stdout and "6 updated" in r.stdout,
     "re-importing a changed file: 1 new, 6 updated", r.stdout + r.stderr)
after = listed()
t.eq({k: (v["parent"], v["name_zh"], v["name_en"]) for k, v in after.items() if k in ("zb2", "zb1-1", "win.1", "zb1")},
     {"zb2": ("dw", "计算机与人工智能学院党委", "School of Computing and AI Committee"),
      "zb1-1": ("zb2", "机关第一党支部，综合办", "Admin Branch 1, General Office"),
      "zb1": ("dw", "机关党委", "Admin Committee"),
      "win.1": ("dw", "食堂一号窗口（新）", "Canteen Window 1 (new)")},
     "names and parents are updated in place")
t.eq({k: after[k]["token"] for k in tokens}, tokens, "every unit keeps its token")
t.eq({k: after[k]["url"] for k in tokens}, {k: got[k]["url"] for k in tokens},
     "and so its QR URL")
t.ok("hq" in after and "win.2" in after and after["win.2"]["token"] not in tokens.values(),
     "a unit left out of the file is kept; a new unit gets a new token")
r = w.pingyi("units", "import", changed)
t.ok(r.returncode == 0 and "0 new" in r.stdout and listed() == after,
     "importing the same file again changes nothing", r.stdout + r.stderr)
t.done()
