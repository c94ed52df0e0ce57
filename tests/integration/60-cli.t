#!/usr/bin/python3
"""The pingyi command line: help, usage errors, refusals, schema versions.

Exit codes: 0 ok, 1 failure with "pingyi: ..." on stderr, 2 bad usage.
Every refusal must leave the database as it was."""
import os
import re
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import harness  # noqa: E402

t = harness.Tap()
w = harness.Workspace()
PINGYI = os.path.join(harness.BIN, "pingyi")


def run(*args, db=None):
    argv = [PINGYI] + (["--db", db] if db else []) + list(args)
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=w.dir,
                          env=dict(os.environ, PINGYI_DB=w.path("env-default.db")))


def show(r):
    return "rc %d\nstdout: %s\nstderr: %s" % (r.returncode, r.stdout, r.stderr)


def db_dump(path=None):
    con = sqlite3.connect(path or w.db)
    try:
        return list(con.iterdump())
    finally:
        con.close()


# ---- help ----
for args in [["--help"], ["help"], ["init", "--help"], ["units", "--help"], ["units", "import", "--help"],
             ["units", "list", "--help"], ["round", "--help"], ["round", "create", "--help"],
             ["round", "open", "--help"], ["tally", "--help"], ["qr", "--help"], ["ledger", "--help"],
             ["ledger", "verify", "--help"]]:
    r = run(*args, db=w.path("no-such.db"))
    t.ok(r.returncode == 0 and r.stdout.startswith("usage:") and len(r.stdout.splitlines()) >= 1
         and not r.stderr, "pingyi %s: exit 0, usage on stdout" % " ".join(args), show(r))
t.ok(not os.path.exists(w.path("no-such.db")) and not os.path.exists(w.path("env-default.db")),
     "--help creates no database")

r = run()
t.ok(r.returncode == 2 and "usage:" in r.stderr and not r.stdout, "pingyi alone: exit 2, usage on stderr", show(r))
r = run("frobnicate")
t.ok(r.returncode == 2 and 'unknown command "frobnicate"' in r.stderr, "an unknown command: exit 2 and says so",
     show(r))
for args in [["units"], ["units", "export"], ["round"], ["round", "open"], ["round", "frob", "x"], ["tally"],
             ["ledger"], ["ledger", "fix"], ["init", "extra"], ["qr"], ["round", "create", "r9"]]:
    r = run(*args, db=w.db)
    t.ok(r.returncode == 2 and "usage:" in r.stderr, "pingyi %s: exit 2 with usage" % " ".join(args), show(r))

# ---- a database that does not exist ----
w.write("u.csv", "id,parent,kind,name_zh,name_en\nx,,committee,党委,Committee\n")
missing = w.path("missing.db")
for args in [["units", "import", w.path("u.csv")], ["units", "list"], ["round", "list"],
             ["round", "create", "r1", "--form", "branch", "--title-zh", "测评", "--title-en", "Round"],
             ["round", "open", "r1"], ["round", "close", "r1"], ["tally", "r1"],
             ["qr", "--all", "--out", w.path("qr-missing")], ["ledger", "verify"], ["ledger", "head"]]:
    r = subprocess.run([PINGYI, "--db", missing] + args, capture_output=True, text=True, timeout=60,
                       cwd=harness.ROOT)
    t.ok(r.returncode == 1 and r.stderr.startswith("pingyi: ") and "pingyi init" in r.stderr and missing in r.stderr,
         "pingyi %s with a missing --db: exit 1, tells to run pingyi init" % " ".join(args[:2]), show(r))
    created = [p for p in (missing, w.path("qr-missing")) if os.path.exists(p)]
    t.ok(not created, "... and creates nothing (no database, no --out folder)", "created: %r" % created)
    for p in created:
        (os.rmdir if os.path.isdir(p) else os.unlink)(p)

# ---- a database to work on ----
r = w.pingyi("init")
t.ok(r.returncode == 0 and "ready" in r.stdout, "init creates the database", show(r))
w.write("units.csv",
        "id,parent,kind,name_zh,name_en\n"
        "dw,,committee,党委,Party Committee\n"
        "zb1,dw,general_branch,机关党总支,Admin General Branch\n"
        "zb1-1,zb1,branch,第一党支部,First Branch\n"
        "zb1-2,zb1,branch,第二党支部,Second Branch\n"
        "hq,dw,department,后勤处,Logistics\n"
        "win1,hq,window,食堂窗口,Canteen Window\n")
w.pingyi("units", "import", w.path("units.csv"), check=True)
r = w.pingyi("init")
t.ok(r.returncode == 0, "init again: exit 0", show(r))
con = sqlite3.connect(w.db)
t.eq(con.execute("SELECT count(*) FROM units").fetchone()[0], 6, "... the six units are still there")
con.close()

TITLES = ["--title-zh", "测评", "--title-en", "Round"]


def refused(name, args, rc_want, pattern):
    before = db_dump()
    r = w.pingyi(*args)
    after = db_dump()
    problems = []
    if r.returncode != rc_want:
        problems.append("exit %d, want %d" % (r.returncode, rc_want))
    if rc_want == 1 and not r.stderr.startswith("pingyi: "):
        problems.append("stderr does not start with 'pingyi: '")
    if not re.search(pattern, r.stderr, re.I):
        problems.append("stderr does not match %r" % pattern)
    if after != before:
        problems.append("the database changed")
    t.ok(not problems, "%s: exit %d, nothing changed" % (name, rc_want), "\n".join(problems) + "\n" + show(r))


for bad in ["Bad", "has space", "-x", "_x", "a" * 65, "测评", "a/b", "a;b"]:
    refused("round create with bad id %r" % bad[:16], ["round", "create", "--form", "branch"] + TITLES + ["--", bad],
            1, "bad round id")
refused("round create without --form", ["round", "create", "r1"] + TITLES, 2, "usage:")
refused("round create without titles", ["round", "create", "r1", "--form", "branch"], 1, "title")
for bad in ["tomorrow", "2026-13-01", "2026-02-30 25:00", "+0d", "+5x", "+d", "@abc", "@-5", "", "next week"]:
    refused("round create with --closes %r" % bad, ["round", "create", "r1", "--form", "branch", "--closes", bad]
            + TITLES, 1, "bad --closes")
for past in ["2020-01-01", "2020-01-01 08:00", "@1"]:
    refused("round create with past --closes %r" % past,
            ["round", "create", "r1", "--form", "branch", "--closes", past] + TITLES, 1, "past")
refused("round create with an unknown scope", ["round", "create", "r1", "--form", "branch", "--scope", "nosuch"]
        + TITLES, 1, "nosuch")
refused("round create with an unknown form name", ["round", "create", "r1", "--form", "nosuchform"] + TITLES, 1,
        "nosuchform")
w.write("broken.form", "[form]\nid = broken\n[question q\n")
refused("round create with a form file that does not parse",
        ["round", "create", "r1", "--form", w.path("broken.form")] + TITLES, 1, "broken.form")

for args in [["round", "create", "r1", "--form", "branch", "--closes", "+7d"] + TITLES,
             ["round", "create", "r2", "--form", "branch", "--scope", "zb1"] + TITLES,
             ["round", "create", "w1", "--form", "window", "--closes", "2099-12-31 18:00"] + TITLES,
             ["round", "create", "w2", "--form", "window", "--scope", "zb1"] + TITLES]:
    r = w.pingyi(*args)
    t.ok(r.returncode == 0 and "draft" in r.stdout, "round create %s: ok" % args[2], show(r))
refused("round create with an existing id", ["round", "create", "r1", "--form", "window"] + TITLES, 1,
        "already exists")
refused("closing a draft round", ["round", "close", "r1"], 1, "draft")
refused("opening an unknown round", ["round", "open", "nosuch"], 1, "nosuch")
refused("closing an unknown round", ["round", "close", "nosuch"], 1, "nosuch")
refused("opening a round whose scope has no unit its form rates", ["round", "open", "w2"], 1, "scope")
r = w.pingyi("round", "open", "r1")
t.ok(r.returncode == 0 and "3 units" in r.stdout, "round open r1: ok, 3 units", show(r))
refused("opening a round twice", ["round", "open", "r1"], 1, "open")
refused("opening a round over units already in an open round", ["round", "open", "r2"], 1, "already")
r = w.pingyi("round", "close", "r1")
t.ok(r.returncode == 0, "round close r1: ok", show(r))
refused("closing a round twice", ["round", "close", "r1"], 1, "closed")
refused("re-opening a closed round", ["round", "open", "r1"], 1, "closed")
r = w.pingyi("round", "list")
t.ok(r.returncode == 0 and re.search(r"^r1\s+closed", r.stdout, re.M) and re.search(r"^r2\s+draft", r.stdout, re.M),
     "round list shows each round's state", show(r))

refused("tally of an unknown round", ["tally", "nosuch"], 1, "nosuch")
refused("tally with an unknown format", ["tally", "r1", "--format", "xml"], 1, "format")
r = w.pingyi("tally", "r1", "--format", "json")
t.ok(r.returncode == 0 and r.stdout.lstrip().startswith("{"), "tally of a known round works", show(r))

qr_dir = w.path("qr")
refused("qr for an unknown unit", ["qr", "nosuch", "--out", qr_dir], 1, "nosuch")
t.ok(not os.path.exists(qr_dir) or not os.listdir(qr_dir), "... and writes no file")
refused("qr --format gif", ["qr", "--all", "--format", "gif", "--out", qr_dir], 1, "gif")
t.ok(not os.path.exists(qr_dir) or not os.listdir(qr_dir), "... and writes no file")
refused("qr --scale 0", ["qr", "--all", "--scale", "0", "--out", qr_dir], 1, "scale")
refused("qr --all together with a unit", ["qr", "--all", "dw", "--out", qr_dir], 2, "usage:")
r = w.pingyi("qr", "zb1-1", "--out", qr_dir)
t.ok(r.returncode == 0 and os.path.exists(os.path.join(qr_dir, "zb1-1.png")), "qr for a known unit writes its PNG",
     show(r))

# ---- schema versions ----
newer = w.path("newer.db")
subprocess.run([PINGYI, "--db", newer, "init"], capture_output=True, check=True, cwd=w.dir)
con = sqlite3.connect(newer)
con.execute("PRAGMA user_version = 999")
con.commit()
con.close()
before = db_dump(newer)
for args in [["units", "list"], ["ledger", "verify"], ["round", "list"], ["init"]]:
    r = run(*args, db=newer)
    t.ok(r.returncode == 1 and "newer" in r.stderr, "a database from a newer build is refused by %s" % " ".join(args),
         show(r))
con = sqlite3.connect(newer)
t.ok(con.execute("PRAGMA user_version").fetchone()[0] == 999 and db_dump(newer) == before,
     "... and left as it was")
con.close()

for name, make in [("an empty (0-byte) file", lambda p: open(p, "wb").close()),
                   ("an SQLite file with user_version 0 and no tables",
                    lambda p: (lambda c: (c.execute("PRAGMA user_version = 0"), c.execute("PRAGMA page_size = 4096"),
                                          c.execute("VACUUM"), c.close()))(sqlite3.connect(p)))]:
    p = w.path("empty-%d.db" % t.n)
    make(p)
    ino = os.stat(p).st_ino
    r = run("init", db=p)
    con = sqlite3.connect(p)
    version = con.execute("PRAGMA user_version").fetchone()[0]
    tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}
    con.close()
    t.ok(r.returncode == 0 and version >= 1 and {"units", "rounds", "ballots", "ledger", "meta"} <= tables
         and os.stat(p).st_ino == ino,
         "%s is upgraded in place by pingyi init" % name, show(r) + "\nversion %d tables %r" % (version, tables))
    r = run("units", "import", w.path("units.csv"), db=p)
    t.ok(r.returncode == 0, "... and is usable afterwards", show(r))

junk = w.write("junk.db", "this is not a database, just some text that is long enough to look like a header\n" * 20)
r = run("units", "list", db=junk)
t.ok(r.returncode == 1 and r.stderr.startswith("pingyi: ") and "junk.db" in r.stderr,
     "a file that is not a database: exit 1 naming it", show(r))
r = run("init", db=junk)
t.ok(r.returncode == 1 and open(junk).read().startswith("this is not a database"),
     "init does not overwrite a file that is not a database", show(r))

# ---- the collector's options ----
COLLECTOR = os.path.join(harness.BIN, "pingyi-collector")
r = subprocess.run([COLLECTOR, "--help"], capture_output=True, text=True, timeout=60)
t.ok(r.returncode == 0 and r.stdout.startswith("usage: pingyi-collector") and "--drain-seconds" in r.stdout,
     "pingyi-collector --help: exit 0, usage on stdout, naming --drain-seconds", show(r))
for opt, value in [("--connections", "0"), ("--per-ip", "-1"), ("--ballot-limit", "1"),
                   ("--code-limit", "a,b"), ("--drain-seconds", "x"), ("--drain-seconds", "3601")]:
    r = subprocess.run([COLLECTOR, "--db", w.path("none.db"), opt, value], capture_output=True, text=True,
                       timeout=60)
    t.ok(r.returncode == 1 and r.stderr.startswith("pingyi-collector: " + opt + " takes ")
         and not os.path.exists(w.path("none.db")),
         "pingyi-collector %s %s: exit 1, saying what the option takes" % (opt, value), show(r))
t.done()
