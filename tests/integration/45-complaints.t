#!/usr/bin/python3
"""Complaints (投诉) as tickets, rectification (整改) and leaders' reviews (点评).

Ballots with comments, some marked as complaints, go in through the
collector. `pingyi complaints sync` turns the complaints into numbered
tickets, but only in hourly batches per round (the first an hour after the
round opened), so a ticket's number and time say no more about when its
ballot came than the hour (DESIGN.md §3); the test moves the round's opening
and the last batch back in the database to let an hour pass. Then:
`complaints list` shows a complaint's text only for units with at least the
round's k_comments (10) comments, tickets move new -> in_progress -> resolved
with a required note, illegal moves are refused, every step is in the ledger
(without the comment's text) and the ledger verifies, ticket_steps refuses
UPDATE and DELETE, `complaints times` reports hours, reviews and
rectification records go to the ledger, and pingyi-aggregator makes tickets
by itself on its tick.
"""
import csv
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from harness import BIN, ROOT, Tap, Workspace, sanitizer_reports  # noqa: E402

t = Tap()
w = Workspace()

ORG = """id,parent,kind,name_zh,name_en
univ,,committee,中共测试大学委员会,Party Committee of Test University
ga,univ,general_branch,文学院党总支,School of Letters General Branch
ba1,ga,branch,文学院教工党支部,Letters Faculty Branch
ba2,ga,branch,文学院本科生党支部,Letters Undergraduate Branch
gb,univ,general_branch,物理学院党总支,Physics General Branch
bb1,gb,branch,物理学院教工党支部,Physics Faculty Branch
"""
QS = ["leadership", "members", "mechanism", "performance", "reputation", "overall"]
K_COMMENTS = 10


def run(*args):
    return w.pingyi(*args)


def run_ok(*args):
    r = w.pingyi(*args)
    t.ok(r.returncode == 0, "pingyi %s" % " ".join(args), r.stdout + r.stderr)
    return r


def refused(args, want_rc, want_text, name):
    r = w.pingyi(*args)
    t.ok(r.returncode == want_rc and want_text in r.stderr and r.stdout == "",
         "%s (exit %d, says %r)" % (name, want_rc, want_text),
         "rc %d\nstdout: %s\nstderr: %s" % (r.returncode, r.stdout, r.stderr))
    return r


def db():
    return sqlite3.connect(w.db)


def query(sql, params=()):
    con = db()
    try:
        return [tuple(row) for row in con.execute(sql, params)]
    finally:
        con.close()


def execute(sql, params=()):
    con = db()
    try:
        con.execute(sql, params)
        con.commit()
    finally:
        con.close()


def ledger(kind_prefix):
    return [(k, json.loads(b)) for k, b in query("SELECT kind, body FROM ledger WHERE kind LIKE ? ORDER BY seq",
                                                 (kind_prefix + "%",))]


run_ok("init")
run_ok("units", "import", w.write("org.csv", ORG))
paths = {}
for line in run("units", "list", "--format", "csv").stdout.lstrip("\ufeff").splitlines()[1:]:
    f = line.split(",")
    paths[f[0]] = "/u/" + f[5]
run_ok("round", "create", "r1", "--form", "branch", "--title-zh", "党支部测评", "--title-en", "Branch appraisal")
run_ok("round", "open", "r1")
t.eq(query("PRAGMA user_version"), [(5,)], "the database is at schema version 5")

col = w.collector()

# ---- ballots with comments through the collector --------------------------------
# ba1 gets exactly k_comments comments, two of them complaints: their text may
# be shown. ba2 gets three comments, one a complaint: withheld. bb1: none.
COMPLAINTS = {
    "ba1": ["组织生活会流于形式，希望改进。", "支部活动通知太晚，\n经常来不及参加。"],
    "ba2": ["本科生支部发展党员程序不透明。"],
}
PLAIN = {"ba1": ["很好 %d" % i for i in range(K_COMMENTS - 2)], "ba2": ["不错", "一般般"]}
problems = []
sent = 0
for uid in ["ba1", "ba2"]:
    items = [(c, True) for c in COMPLAINTS[uid]] + [(c, False) for c in PLAIN[uid]]
    for text, complaint in items:
        fields = [(q, "s") for q in QS] + [("comment", text)]
        if complaint:
            fields.append(("complaint", "1"))
        r = col.post(paths[uid], fields)
        sent += 1
        if r.status != 303:
            problems.append("%s: %d %s" % (uid, r.status, r.text[:200]))
for _ in range(3):
    r = col.post(paths["bb1"], [(q, "b") for q in QS])
    if r.status != 303:
        problems.append("bb1: %d" % r.status)
t.ok(not problems, "%d ballots with comments (3 complaints) and 3 without were stored (303)" % sent,
     "\n".join(problems))
t.eq(query("SELECT unit, count(*), sum(complaint) FROM comments GROUP BY unit ORDER BY unit"),
     [("ba1", K_COMMENTS, 2), ("ba2", 3, 1)], "the comments table holds them")

# ---- sync: hourly batches ----------------------------------------------------------
r = run_ok("complaints", "sync")
t.ok("no new tickets" in r.stdout and "next batch is due at" in r.stdout,
     "within the round's first hour, sync makes no ticket and says when the batch is due", r.stdout)
t.eq(query("SELECT count(*) FROM tickets"), [(0,)], "no ticket exists yet")

execute("UPDATE rounds SET opened_at = opened_at - 7200 WHERE id = 'r1'")  # the first hour has passed
before = int(time.time())
r = run_ok("complaints", "sync")
after = int(time.time())
t.ok("opened 3 tickets" in r.stdout, "an hour after opening, sync opens 3 tickets", r.stdout)
rows = query("SELECT id, round, unit, state, opened_at, taken_at, resolved_at FROM tickets ORDER BY id")
t.eq([(x[0], x[1], x[3], x[5], x[6]) for x in rows], [(1, "r1", "new", None, None)] + [
    (2, "r1", "new", None, None), (3, "r1", "new", None, None)], "tickets 1-3: round r1, state new")
t.eq(sorted(x[2] for x in rows), ["ba1", "ba1", "ba2"], "one ticket per complaint, for its unit")
t.ok(all(before <= x[4] <= after for x in rows), "each ticket's opened_at is the time of the sync",
     repr(rows))
t.eq(sorted(c[1] for c in query("PRAGMA table_info(tickets)")),
     sorted(["id", "comment", "round", "unit", "state", "opened_at", "taken_at", "resolved_at"]),
     "tickets hold their own number, state and step times, the comment key, round and unit; nothing else")
keys = [c[0] for c in query("SELECT comment FROM tickets ORDER BY id")]
t.ok(keys == sorted(keys), "within a batch, tickets are numbered in the order of the comments' random keys")
t.eq(query("SELECT count(*) FROM tickets t JOIN comments c ON c.id = t.comment WHERE c.complaint = 1 "
           "AND c.round = t.round AND c.unit = t.unit"), [(3,)], "each ticket points to its complaint comment")
steps = query("SELECT ticket, step, who, note FROM ticket_steps ORDER BY id")
t.eq(steps, [(1, "opened", "pingyi complaints sync", None), (2, "opened", "pingyi complaints sync", None),
             (3, "opened", "pingyi complaints sync", None)], "each ticket has its 'opened' step")

r = run_ok("complaints", "sync")
t.ok("no new tickets" in r.stdout, "a second sync right after makes none", r.stdout)
t.eq(query("SELECT count(*) FROM tickets"), [(3,)], "still 3 tickets")

# a new complaint waits for the next hourly batch
NEW_COMPLAINT = "书记从不回复邮件。"
r = col.post(paths["ba1"], [(q, "d") for q in QS] + [("comment", NEW_COMPLAINT), ("complaint", "1")])
t.eq(r.status, 303, "one more complaint for ba1 was stored")
r = run_ok("complaints", "sync")
t.ok("no new tickets" in r.stdout and query("SELECT count(*) FROM tickets") == [(3,)],
     "a complaint that came within the hour after the last batch waits for the next", r.stdout)
execute("UPDATE complaint_batches SET at = at - 3600 WHERE round = 'r1'")
r = run_ok("complaints", "sync")
t.ok("opened 1 ticket " in r.stdout, "an hour after the last batch, sync opens 1 ticket", r.stdout)
t.eq(query("SELECT id, unit, state FROM tickets WHERE id = 4"), [(4, "ba1", "new")], "ticket 4 is ba1's")

# ---- list: text only for units with k_comments comments --------------------------
tick = {}
for tid, unit, comment in query("SELECT t.id, t.unit, c.body FROM tickets t JOIN comments c ON c.id = t.comment"):
    tick[comment] = (tid, unit)
BA2_TEXT = COMPLAINTS["ba2"][0]
ba2_ticket = tick[BA2_TEXT][0]
r = run_ok("complaints", "list")
out = r.stdout
t.ok(out.splitlines()[0].split() == ["ticket", "round", "unit", "state", "age", "by"],
     "the table's header: ticket round unit state age by", out)
for n in range(1, 5):
    t.ok(any(l.startswith("#%d " % n) for l in out.splitlines()), "ticket #%d is listed" % n, out)
t.ok(COMPLAINTS["ba1"][0] in out and NEW_COMPLAINT in out,
     "ba1 (%d comments, k=%d): the complaints' text is shown" % (K_COMMENTS + 1, K_COMMENTS), out)
t.ok("    经常来不及参加。" in out, "a line break in a complaint continues on an indented line", out)
t.ok(BA2_TEXT not in out, "ba2 (3 comments): the complaint's text is not shown", out)
t.ok("withheld until ba2 has 10 comments in round r1; it has 3" in out,
     "ba2's ticket says the text is withheld until the unit has 10 comments", out)

r = run_ok("complaints", "list", "r1", "--format", "csv")
raw = subprocess.run([os.path.join(BIN, "pingyi"), "--db", w.db, "complaints", "list", "r1", "--format", "csv"],
                     cwd=ROOT, capture_output=True, timeout=60).stdout
t.ok(raw.startswith(b"\xef\xbb\xbf") and raw.endswith(b"\r\n") and raw.count(b"\r\n") == 1 + 4,
     "csv: UTF-8 BOM, and CRLF after the header and each of the 4 tickets", raw[:200])
rows = list(csv.reader(io.StringIO(r.stdout.lstrip("\ufeff"), newline="")))
t.eq(rows[0], ["ticket", "round", "unit", "state", "opened", "taken", "resolved", "by", "age_hours",
               "comment_shown", "comment"], "csv header")
by_id = {int(x[0]): x for x in rows[1:]}
t.eq(sorted(by_id), [1, 2, 3, 4], "csv: four tickets")
t.eq((by_id[ba2_ticket][2], by_id[ba2_ticket][9], by_id[ba2_ticket][10]), ("ba2", "0", ""),
     "csv: ba2's complaint is withheld (comment_shown 0, empty comment)")
shown = sorted(x[10] for x in rows[1:] if x[2] == "ba1")
t.eq(shown, sorted(COMPLAINTS["ba1"] + [NEW_COMPLAINT]), "csv: ba1's complaints are shown in full")
t.ok(BA2_TEXT not in r.stdout, "csv: ba2's text appears nowhere")

r = run_ok("complaints", "list", "--unit", "ba2")
t.ok(("#%d " % ba2_ticket) in r.stdout and len([l for l in r.stdout.splitlines() if l.startswith("#")]) == 1,
     "--unit ba2 lists only ba2's ticket", r.stdout)
refused(["complaints", "list", "--state", "done"], 1, "unknown state", "--state with an unknown state is refused")
refused(["complaints", "list", "nosuch"], 1, "no round \"nosuch\"", "list of an unknown round is refused")
refused(["complaints", "list", "--format", "xml"], 1, "unknown format", "an unknown format is refused")

# ---- take and resolve -----------------------------------------------------------------
t1, t2 = tick[COMPLAINTS["ba1"][0]][0], tick[COMPLAINTS["ba1"][1]][0]
r = run_ok("complaints", "take", str(t1), "--by", "王书记", "--note", "已约谈食堂负责人")
t.ok("in progress" in r.stdout, "take: the ticket is in progress", r.stdout)
refused(["complaints", "take", str(t1), "--by", "李老师"], 1, "already in progress",
        "taking a ticket that is in progress is refused")
refused(["complaints", "resolve", str(t1), "--by", "王书记"], 1, "needs --note",
        "resolving without --note is refused")
refused(["complaints", "resolve", str(t1), "--by", "王书记", "--note", "   "], 1,
        "resolving needs a note", "resolving with a blank note is refused")
refused(["complaints", "take", str(t2)], 2, "usage:", "take without --by is bad usage")
refused(["complaints", "take", str(t2), "--by", "a\nb"], 1, "one line", "a name on two lines is refused")
refused(["complaints", "take", "999", "--by", "王书记"], 1, "no ticket 999", "an unknown ticket is refused")
refused(["complaints", "take", "abc", "--by", "王书记"], 1, "bad ticket", "a ticket that is not a number is refused")
t.eq(query("SELECT state FROM tickets WHERE id = ?", (t1,)), [("in_progress",)],
     "the refused steps left the ticket in progress")
NOTE = "已整改：组织生活会改为每月固定时间并提前一周通知。"
r = run_ok("complaints", "resolve", "#%d" % t1, "--by", "王书记", "--note", NOTE)
t.ok("resolved" in r.stdout, "resolve with a note (ticket given as #N)", r.stdout)
refused(["complaints", "resolve", str(t1), "--by", "王书记", "--note", "again"], 1, "resolved already",
        "resolving a resolved ticket is refused")
refused(["complaints", "take", str(t1), "--by", "王书记"], 1, "resolved already",
        "taking a resolved ticket is refused")
run_ok("complaints", "resolve", str(t2), "--by", "张委员", "--note", "通知改为提前三天发出。")
t.eq(query("SELECT id, state, taken_at IS NOT NULL, resolved_at IS NOT NULL FROM tickets WHERE id IN (?, ?) "
           "ORDER BY id", (t1, t2)), sorted([(t1, "resolved", 1, 1), (t2, "resolved", 0, 1)]),
     "a new ticket can be resolved directly with a note; taken_at stays empty then")
t.eq(query("SELECT step, who, note FROM ticket_steps WHERE ticket = ? ORDER BY id", (t1,)),
     [("opened", "pingyi complaints sync", None), ("progress", "王书记", "已约谈食堂负责人"),
      ("resolved", "王书记", NOTE)], "ticket %d's steps: opened, progress, resolved with the note" % t1)
r = run_ok("complaints", "list", "--state", "resolved")
t.ok(sorted(l.split()[0] for l in r.stdout.splitlines() if l.startswith("#")) == sorted(["#%d" % t1, "#%d" % t2])
     and "王书记" in r.stdout and "张委员" in r.stdout,
     "--state resolved lists the two resolved tickets and who resolved them", r.stdout)

# ---- the ledger --------------------------------------------------------------------------
entries = ledger("complaint.")
t.eq([(k, b["ticket"]) for k, b in entries],
     [("complaint.opened", 1), ("complaint.opened", 2), ("complaint.opened", 3), ("complaint.opened", 4),
      ("complaint.progress", t1), ("complaint.resolved", t1), ("complaint.resolved", t2)],
     "the ledger has each ticket step, in order")
t.ok(all(sorted(b) == ["note", "round", "ticket", "unit", "who"] for _, b in entries),
     "each entry's body holds ticket, round, unit, who and note only", repr(entries))
t.eq(entries[5][1], {"ticket": t1, "round": "r1", "unit": "ba1", "who": "王书记", "note": NOTE},
     "the resolved entry records who and the 整改 note")
bodies = "".join(b for (b,) in query("SELECT body FROM ledger"))
t.ok(not any(c in bodies for c in COMPLAINTS["ba1"] + COMPLAINTS["ba2"] + [NEW_COMPLAINT]),
     "no complaint's text is in the ledger")
t.eq(query("SELECT DISTINCT round FROM ledger WHERE kind LIKE 'complaint.%'"), [("r1",)],
     "the entries are filed under the round")
r = run_ok("ledger", "verify")
t.ok(r.stdout.startswith("ledger intact:"), "ledger verify: intact", r.stdout)

# ---- the database guards the record --------------------------------------------------------
for what, sql, want in [
        ("UPDATE of ticket_steps", "UPDATE ticket_steps SET note = 'x' WHERE ticket = %d" % t1, "append-only"),
        ("DELETE of ticket_steps", "DELETE FROM ticket_steps WHERE ticket = %d" % t1, "append-only"),
        ("DELETE of all ticket_steps", "DELETE FROM ticket_steps", "append-only"),
        ("DELETE of a ticket", "DELETE FROM tickets WHERE id = %d" % t1, "never deleted"),
        ("reopening a resolved ticket", "UPDATE tickets SET state = 'new' WHERE id = %d" % t1, "moves forward"),
        ("back-dating a ticket", "UPDATE tickets SET opened_at = 0 WHERE id = %d" % ba2_ticket, "moves forward"),
        ("INSERT OR REPLACE over a step (deletes without DELETE triggers)",
         "INSERT OR REPLACE INTO ticket_steps(id, ticket, step, who, note, at) SELECT id, ticket, step, who, "
         "'forged', at FROM ticket_steps WHERE ticket = %d AND step = 'resolved'" % t1, "append-only"),
        ("INSERT OR REPLACE over a ticket",
         "INSERT OR REPLACE INTO tickets(id, comment, round, unit, state, opened_at) SELECT id, comment, round, "
         "unit, 'new', opened_at FROM tickets WHERE id = %d" % t1, "never deleted")]:
    con = db()
    try:
        con.execute(sql)
        con.commit()
        err = None
    except sqlite3.DatabaseError as e:
        err = str(e)
    finally:
        con.close()
    t.ok(err is not None and want in err, "the database refuses %s (%s)" % (what, want), repr(err))
t.eq(len(query("SELECT * FROM ticket_steps")), 4 + 3, "ticket_steps is unchanged")

# ---- time to resolve ---------------------------------------------------------------------------
r = run_ok("complaints", "times", "r1")
lines = r.stdout.splitlines()
t.eq(lines[0].split(), ["unit", "tickets", "resolved", "open", "median_h", "max_h", "oldest_open_h"],
     "times: header")
t.eq([l.split()[:4] for l in lines[1:]], [["ba1", "3", "2", "1"], ["ba2", "1", "0", "1"]],
     "times: tickets, resolved and open per unit, in the units' order")
t.ok(lines[2].split()[4:6] == ["-", "-"], "times: no median or max for a unit with nothing resolved", r.stdout)

# Known durations: on a copy whose forward-only trigger is dropped, tickets are
# back-dated so ba1's resolved tickets took 2 h and 7 h and its open one has
# waited 30 h; ba2's open one 5 h.
copy = w.path("times.db")
con = db()
con.execute("VACUUM INTO ?", (copy,))
con.close()
con = sqlite3.connect(copy)
con.execute("DROP TRIGGER tickets_forward_only")
con.execute("UPDATE tickets SET opened_at = resolved_at - 2 * 3600 WHERE id = ?", (t1,))
con.execute("UPDATE tickets SET opened_at = resolved_at - 7 * 3600 WHERE id = ?", (t2,))
now = int(time.time())
con.execute("UPDATE tickets SET opened_at = ? WHERE id = ?", (now - 30 * 3600, tick[NEW_COMPLAINT][0]))
con.execute("UPDATE tickets SET opened_at = ? WHERE id = ?", (now - 5 * 3600, ba2_ticket))
con.commit()
con.close()
r = subprocess.run([os.path.join(BIN, "pingyi"), "--db", copy, "complaints", "times", "r1", "--format", "csv"],
                   cwd=ROOT, capture_output=True, text=True, timeout=60)
rows = list(csv.reader(io.StringIO(r.stdout.lstrip("\ufeff"), newline="")))
t.ok(r.returncode == 0 and r.stdout.startswith("\ufeff"), "times --format csv", r.stderr)
t.eq(rows[0], ["unit", "tickets", "resolved", "open", "median_hours", "max_hours", "oldest_open_hours"],
     "times csv: header")
t.eq(rows[1][:6], ["ba1", "3", "2", "1", "4.5", "7.0"], "ba1: median of 2 h and 7 h is 4.5 h, max 7.0 h")
t.ok(rows[1][6] in ("30.0", "30.1"), "ba1: the open ticket has waited 30 h", rows[1])
t.eq(rows[2][:6], ["ba2", "1", "0", "1", "", ""], "ba2: nothing resolved: empty median and max")
t.ok(rows[2][6] in ("5.0", "5.1"), "ba2: the open ticket has waited 5 h", rows[2])
refused(["complaints", "times", "nosuch"], 1, "no round", "times of an unknown round is refused")

# ---- leaders' reviews and rectification records -----------------------------------------------
REVIEW = "本轮测评组织有序，请各支部认真对照整改。"
r = run_ok("review", "add", "r1", "--by", "校党委书记", "--text", REVIEW)
t.ok("ledger as entry" in r.stdout, "review add: recorded in the ledger", r.stdout)
run_ok("review", "add", "r1", "--unit", "ga", "--by", "组织部部长", "--text", "文学院党总支工作扎实。")
refused(["review", "add", "r1", "--unit", "nosuch", "--by", "x", "--text", "y"], 1, "not part of round",
        "a review of a unit outside the round is refused")
refused(["review", "add", "r1", "--by", "x"], 2, "usage:", "a review without --text is bad usage")
refused(["review", "add", "nosuch", "--by", "x", "--text", "y"], 1, "no round", "a review of an unknown round")
RECT = "ba2：发展党员全过程公示，已于支部大会通报。"
run_ok("rectify", "add", "r1", "--unit", "ba2", "--by", "ba2支部书记", "--text", RECT)
refused(["rectify", "add", "r1", "--by", "x", "--text", "y"], 2, "usage:", "rectify without --unit is bad usage")
refused(["rectify", "add", "r1", "--unit", "ba1", "--by", "x", "--text", "  "], 1, "text is required",
        "rectify with a blank text is refused")
t.eq(ledger("review.") + ledger("rectification."),
     [("review.added", {"round": "r1", "unit": None, "who": "校党委书记", "text": REVIEW}),
      ("review.added", {"round": "r1", "unit": "ga", "who": "组织部部长", "text": "文学院党总支工作扎实。"}),
      ("rectification.recorded", {"round": "r1", "unit": "ba2", "who": "ba2支部书记", "text": RECT})],
     "the ledger holds the reviews and the rectification record")
run_ok("round", "create", "r2", "--form", "branch", "--scope", "gb", "--title-zh", "草稿", "--title-en", "Draft")
refused(["review", "add", "r2", "--by", "x", "--text", "y"], 1, "has not opened",
        "a review of a draft round is refused")

# ---- --help ----------------------------------------------------------------------------------------
for args in [["complaints", "--help"], ["complaints", "list", "--help"], ["complaints", "resolve", "--help"],
             ["review", "--help"], ["review", "add", "--help"], ["rectify", "--help"], ["rectify", "add", "-h"]]:
    r = run(*args)
    t.ok(r.returncode == 0 and r.stdout.startswith("usage: pingyi"), "pingyi %s" % " ".join(args), r.stderr)
r = run("--help")
t.ok(all(s in r.stdout for s in ["complaints sync", "complaints take", "review add", "rectify add"]),
     "pingyi --help lists the new commands", r.stdout)

# ---- the aggregator makes tickets on its tick --------------------------------------------------------
r = col.post(paths["ba2"], [(q, "s") for q in QS] + [("comment", "第二条投诉"), ("complaint", "1")])
t.eq(r.status, 303, "one more complaint for ba2 was stored")
execute("UPDATE complaint_batches SET at = at - 3600 WHERE round = 'r1'")
agg = w.aggregator("--tick", "1")
deadline = time.time() + 20
while time.time() < deadline and query("SELECT count(*) FROM tickets") != [(5,)]:
    time.sleep(0.2)
t.eq(query("SELECT id, unit, state FROM tickets WHERE id = 5"), [(5, "ba2", "new")],
     "pingyi-aggregator made ticket 5 on its tick")
t.eq(ledger("complaint.opened")[-1][1], {"ticket": 5, "round": "r1", "unit": "ba2", "who": "pingyi-aggregator",
                                         "note": None}, "and wrote it to the ledger as pingyi-aggregator")
time.sleep(1.5)
t.eq(query("SELECT count(*) FROM tickets"), [(5,)], "later ticks make no duplicate")
t.eq(agg.stop(), 0, "the aggregator stops cleanly")
t.ok("made 1 complaint ticket" in agg.log_text(), "its log says it made a ticket", agg.log_text())
t.eq(col.stop(), 0, "the collector stops cleanly")
t.eq(sanitizer_reports(agg.log_text() + col.log_text()), [], "no sanitizer reports")
run_ok("ledger", "verify")

# ---- an older database upgrades ----------------------------------------------------------------------
# Older databases are made from this one by undoing the later migrations; version 5 added the
# ballot intake, and the view ballots over it and the store.
UNDO_V5 = "DROP VIEW ballots; DROP TABLE ballot_intake; ALTER TABLE ballot_store RENAME TO ballots; "
old = w.path("v2.db")
shutil.copyfile(w.db, old)
con = sqlite3.connect(old)
con.executescript(UNDO_V5 + "DROP TABLE ticket_steps; DROP TABLE tickets; DROP TABLE complaint_batches; DROP INDEX comments_by_unit; "
                  "DROP TRIGGER ledger_no_replace; "
                  "PRAGMA user_version = 2;")
con.close()
r = subprocess.run([os.path.join(BIN, "pingyi"), "--db", old, "complaints", "list"],
                   cwd=ROOT, capture_output=True, text=True, timeout=60)
con = sqlite3.connect(old)
version = con.execute("PRAGMA user_version").fetchone()[0]
con.close()
t.ok(r.returncode == 0 and r.stdout == "no tickets\n" and version == 5,
     "a version 2 database upgrades to 5 when opened and lists no tickets", r.stdout + r.stderr)

# version 3 kept ballots keyed by id alone; 4 keys them by (round, id) and keeps every one
v3 = w.path("v3.db")
shutil.copyfile(w.db, v3)
con = sqlite3.connect(v3)
con.executescript("PRAGMA foreign_keys = OFF; " + UNDO_V5 +
                  "CREATE TABLE b3(id BLOB PRIMARY KEY CHECK (length(id) = 16), round TEXT NOT NULL, "
                  "unit TEXT NOT NULL, grp TEXT NOT NULL, answers TEXT NOT NULL, "
                  "FOREIGN KEY (round, unit) REFERENCES round_units(round, unit)) STRICT, WITHOUT ROWID; "
                  "INSERT INTO b3 SELECT id, round, unit, grp, answers FROM ballots; "
                  "DROP TABLE ballots; ALTER TABLE b3 RENAME TO ballots; PRAGMA user_version = 3;")
before = sorted(con.execute("SELECT id, round, unit, grp, answers FROM ballots").fetchall())
con.close()
tally_v4 = run("tally", "r1", "--format", "json").stdout
r = subprocess.run([os.path.join(BIN, "pingyi"), "--db", v3, "tally", "r1", "--format", "json"],
                   cwd=ROOT, capture_output=True, text=True, timeout=60)
con = sqlite3.connect(v3)
after = sorted(con.execute("SELECT id, round, unit, grp, answers FROM ballots").fetchall())
version = con.execute("PRAGMA user_version").fetchone()[0]
ddl = con.execute("SELECT sql FROM sqlite_schema WHERE name = 'ballot_store'").fetchone()[0]
con.close()
t.ok(r.returncode == 0 and version == 5 and before and after == before,
     "a version 3 database upgrades to 5 when opened, with all %d ballots as they were" % len(before),
     r.stderr + " version %d, %d -> %d ballots" % (version, len(before), len(after)))
t.ok("PRIMARY KEY (round, id)" in ddl and "WITHOUT ROWID" in ddl, "... ballots are stored keyed by (round, id)", ddl)
t.eq(r.stdout, tally_v4, "... and its tally is the same as before the upgrade")

t.done()
