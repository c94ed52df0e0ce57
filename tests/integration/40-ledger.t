#!/usr/bin/python3
"""The ledger (台账) is tamper-evident.

The database refuses UPDATE and DELETE on it; someone who drops those
triggers and edits the file is caught by `pingyi ledger verify`, which must
exit 1 and name the entry. Each tampering runs on a fresh copy of one
database holding several entries (rounds opened and closed)."""
import hashlib
import os
import re
import shutil
import sqlite3
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import harness  # noqa: E402

t = harness.Tap()
w = harness.Workspace()

r = w.pingyi("init", check=True)
w.write("units.csv",
        "id,parent,kind,name_zh,name_en\n"
        "dw,,committee,党委,Party Committee\n"
        "zb1,dw,general_branch,机关党总支,Admin General Branch\n"
        "zb1-1,zb1,branch,第一党支部,First Branch\n"
        "hq,dw,department,后勤处,Logistics\n"
        "win1,hq,window,食堂窗口,Canteen Window\n")
w.pingyi("units", "import", w.path("units.csv"), check=True)
r = w.pingyi("ledger", "verify")
t.ok(r.returncode == 0 and "ledger intact: 0 entries" in r.stdout, "an empty ledger verifies",
     r.stdout + r.stderr)
r = w.pingyi("ledger", "head")
t.ok(r.returncode == 0 and r.stdout.startswith("0"), "ledger head of an empty ledger starts with 0",
     r.stdout + r.stderr)

for rid, form in [("r1", "branch"), ("r2", "window"), ("r3", "branch")]:
    w.pingyi("round", "create", rid, "--form", form, "--title-zh", "测评 " + rid, "--title-en", "Round " + rid,
             check=True)
for step in [("open", "r1"), ("open", "r2"), ("close", "r1"), ("close", "r2"), ("open", "r3")]:
    w.pingyi("round", *step, check=True)

con = sqlite3.connect(w.db)
ENTRIES = [tuple(row) for row in con.execute("SELECT seq, at, kind, round, body, prev, hash FROM ledger ORDER BY seq")]
con.close()
N = len(ENTRIES)
t.eq([(e[0], e[2], e[3]) for e in ENTRIES],
     [(1, "round.opened", "r1"), (2, "round.opened", "r2"), (3, "round.closed", "r1"),
      (4, "round.closed", "r2"), (5, "round.opened", "r3")],
     "opening and closing rounds wrote five ledger entries")

r = w.pingyi("ledger", "verify")
t.ok(r.returncode == 0 and r.stdout.strip().startswith("ledger intact: %d entries" % N),
     "ledger verify: exit 0, 'ledger intact: 5 entries'", "rc %d\n%s%s" % (r.returncode, r.stdout, r.stderr))


def entry_hash(seq, at, kind, rnd, body, prev):
    """The chain's hash, as documented in aggregator/ledger.c: SHA-256 over
    length-prefixed fields. Anyone holding the database can recompute it."""
    h = hashlib.sha256()
    for field in [b"pingyi-ledger-v1", str(seq).encode(), str(at).encode(), kind.encode(),
                  (rnd or "").encode(), body.encode(), prev]:
        h.update(b"%d:" % len(field) + field)
    return h.digest()


ok = all(e[6] == entry_hash(*e[:6]) for e in ENTRIES)
chained = all(ENTRIES[i][5] == (ENTRIES[i - 1][6] if i else bytes(32)) for i in range(N))
t.ok(ok and chained, "each entry's hash is recomputable and each entry carries the previous hash")

# ---- the database refuses UPDATE and DELETE ----
for what, sql in [("UPDATE", "UPDATE ledger SET body = 'x' WHERE seq = 3"),
                  ("DELETE", "DELETE FROM ledger WHERE seq = 3"),
                  ("DELETE of all", "DELETE FROM ledger"),
                  ("UPDATE of seq", "UPDATE ledger SET seq = 99 WHERE seq = 5")]:
    con = sqlite3.connect(w.db)
    try:
        con.execute(sql)
        con.commit()
        err = None
    except sqlite3.IntegrityError as e:
        err = str(e)
    except sqlite3.DatabaseError as e:
        err = "wrong error class %s: %s" % (type(e).__name__, e)
    finally:
        con.close()
    t.ok(err is not None and "append-only" in err, "the database refuses %s on ledger (append-only)" % what,
         repr(err))
con = sqlite3.connect(w.db)
t.eq([tuple(row) for row in con.execute("SELECT seq, at, kind, round, body, prev, hash FROM ledger ORDER BY seq")],
     ENTRIES, "the ledger is unchanged after the refused statements")
con.close()

# ---- tampering with the file ----
copies = 0


def tampered(*statements, params=()):
    """A fresh copy of the database with the triggers dropped and statements run."""
    global copies
    copies += 1
    path = w.path("tampered-%d.db" % copies)
    shutil.copyfile(w.db, path)
    if os.path.exists(w.db + "-wal"):
        shutil.copyfile(w.db + "-wal", path + "-wal")
    con = sqlite3.connect(path)
    con.executescript("DROP TRIGGER ledger_no_update; DROP TRIGGER ledger_no_delete;")
    for i, sql in enumerate(statements):
        con.execute(sql, params[i] if i < len(params) else ())
    con.commit()
    con.close()
    return path


def verify(path):
    import subprocess
    r = subprocess.run([os.path.join(harness.BIN, "pingyi"), "--db", path, "ledger", "verify"],
                       capture_output=True, text=True, timeout=60, cwd=harness.ROOT)
    return r.returncode, r.stdout + r.stderr


def caught(name, path, seq):
    rc, out = verify(path)
    t.ok(rc == 1 and re.search(r"\bentry %d\b" % seq, out) and "intact" not in out,
         "%s: ledger verify exits 1 and names entry %d" % (name, seq), "rc %d\n%s" % (rc, out))


def flip_text(s):
    i = len(s) // 2
    return s[:i] + ("X" if s[i] != "X" else "Y") + s[i + 1:]


def flip_blob(b):
    return bytes([b[0] ^ 1]) + b[1:]


MID = 3
seq, at, kind, rnd, body, prev, hsh = ENTRIES[MID - 1]
for column, value in [("at", at + 1), ("kind", flip_text(kind)), ("round", flip_text(rnd)),
                      ("body", flip_text(body)), ("prev", flip_blob(prev)), ("hash", flip_blob(hsh))]:
    assert value != ENTRIES[MID - 1][["seq", "at", "kind", "round", "body", "prev", "hash"].index(column)]
    caught("one byte of %s changed in entry %d" % (column, MID),
           tampered("UPDATE ledger SET %s = ? WHERE seq = ?" % column, params=[(value, MID)]), MID)

# Text after a NUL byte is still stored, and read back by other programs
# (Python's sqlite3 returns it): it must be covered by the hash too.
caught("bytes hidden after a NUL in the body of entry %d" % MID,
       tampered("UPDATE ledger SET body = ? WHERE seq = ?", params=[(body + "\0forged", MID)]), MID)
caught("bytes hidden after a NUL in the kind of entry %d" % MID,
       tampered("UPDATE ledger SET kind = ? WHERE seq = ?", params=[(kind + "\0x", MID)]), MID)
caught("round set to NULL in entry %d" % MID, tampered("UPDATE ledger SET round = NULL WHERE seq = 3"), MID)
caught("first entry changed", tampered("UPDATE ledger SET body = body || ' ' WHERE seq = 1"), 1)
caught("last entry changed", tampered("UPDATE ledger SET at = at - 3600 WHERE seq = %d" % N), N)
caught("a middle entry deleted", tampered("DELETE FROM ledger WHERE seq = %d" % MID), MID)
caught("the first entry deleted", tampered("DELETE FROM ledger WHERE seq = 1"), 1)
caught("two entries swapped (2 and 3)",
       tampered("UPDATE ledger SET seq = -1 WHERE seq = 2", "UPDATE ledger SET seq = 2 WHERE seq = 3",
                "UPDATE ledger SET seq = 3 WHERE seq = -1"), 2)

# A forger who recomputes the changed entry's hash breaks the link to the next one.
new_body = body.replace('"round"', '"round" ', 1)
forged = entry_hash(seq, at, kind, rnd, new_body, prev)
caught("entry %d rewritten with a recomputed hash" % MID,
       tampered("UPDATE ledger SET body = ?, hash = ? WHERE seq = ?", params=[(new_body, forged, MID)]), MID + 1)
# An entry appended by hand, without the chain.
caught("an entry appended with a made-up hash",
       tampered("INSERT INTO ledger(seq, at, kind, round, body, prev, hash) VALUES (?, ?, 'round.closed', 'r3', "
                "'{}', ?, ?)", params=[(N + 1, at, ENTRIES[-1][6], bytes(32))]), N + 1)
caught("an entry appended that does not link to the head",
       tampered("INSERT INTO ledger(seq, at, kind, round, body, prev, hash) VALUES (?, ?, 'x', NULL, '{}', ?, ?)",
                params=[(N + 1, at, bytes(32), entry_hash(N + 1, at, "x", None, "{}", bytes(32)))]), N + 1)

rc, out = verify(w.db)
t.ok(rc == 0, "the original database still verifies", out)

# ---- ledger head ----
r = w.pingyi("ledger", "head")
m = re.fullmatch(r"(\d+) ([0-9a-f]{64})\n", r.stdout)
t.ok(r.returncode == 0 and m and int(m.group(1)) == N and m.group(2) == ENTRIES[-1][6].hex(),
     "ledger head prints 'SEQ HEXHASH' of the newest entry", repr(r.stdout) + r.stderr)
w.pingyi("round", "close", "r3", check=True)
r2 = w.pingyi("ledger", "head")
m2 = re.fullmatch(r"(\d+) ([0-9a-f]{64})\n", r2.stdout)
t.ok(m and m2 and int(m2.group(1)) == N + 1 and m2.group(2) != m.group(2),
     "ledger head changes after a new entry", repr(r.stdout) + " -> " + repr(r2.stdout))
r = w.pingyi("ledger", "verify")
t.ok(r.returncode == 0 and "ledger intact: %d entries" % (N + 1) in r.stdout, "and the ledger still verifies",
     r.stdout + r.stderr)
t.done()
