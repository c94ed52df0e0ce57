#!/usr/bin/python3
"""Anonymity (DESIGN.md §3): nothing kept with a ballot can lead back to a person.

The tables a ballot touches have no column for a time, address, agent,
session, cookie or code, and no rowid -- but for the intake, where a ballot
waits in arrival order until the collector moves it on (within 2 s of the
last ballot). A collector takes ballots from
distinctive browsers (WeChat user agents, X-Forwarded-For and X-Real-IP
behind a trusted proxy, cookies), with comments, in an open round and with
ballot codes in a code round; afterwards no file the system wrote -- the
database, its WAL, the log -- holds any of the addresses, agents, codes, form
tokens or cookie values. Ballot and comment keys are random: 60 ballots sent
in a known order are stored in an order unrelated to it."""
import csv
import io
import json
import os
import re
import socket
import sqlite3
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import harness  # noqa: E402

QUESTIONS = ["leadership", "members", "mechanism", "performance", "reputation", "overall"]
FORM_CT = {"Content-Type": "application/x-www-form-urlencoded"}
BALLOT_TABLES = ["ballot_store", "ballot_intake", "comments", "code_uses", "counts", "ballot_counts"]

t = harness.Tap()
w = harness.Workspace()
w.pingyi("init", "--base-url", "https://py.example.edu", check=True)
TOK = w.import_small_org("zb2,dw,general_branch,学院党总支,School General Branch",
                         "b4,zb2,branch,第四党支部,Fourth Branch",
                         "b5,zb2,branch,第五党支部,Fifth Branch")
w.open_round("ro", "--title-zh", "开放测评", "--title-en", "Open", "--scope", "zb")
w.open_round("rc", "--title-zh", "测评码测评", "--title-en", "Coded", "--scope", "zb2", "--codes")
CODES = w.pingyi("codes", "issue", "rc", "--group", "党员", "--scope", "zb2", "--count", "4",
                 check=True).stdout.split()
CODE_UNITS = ["zb2", "b4", "b5"]

# ---- the schema ----
con = sqlite3.connect(w.db)
master = {name: sql or "" for name, sql in
          con.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'")}
columns = {tb: [row[1] for row in con.execute("PRAGMA table_info(%s)" % tb)] for tb in BALLOT_TABLES}
triggers = con.execute("SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN (%s)"
                       % ",".join("?" * len(BALLOT_TABLES)), BALLOT_TABLES).fetchall()
con.close()
WORDS = {"at", "ts", "time", "timestamp", "date", "day", "hour", "created", "updated", "modified", "when",
         "ip", "ipv4", "ipv6", "addr", "address", "remote", "peer", "client", "host", "agent", "ua", "browser",
         "session", "sess", "sid", "cookie", "device", "fingerprint", "code", "token", "nonce", "user", "person",
         "seq", "serial", "order", "position"}
PARTS = ["time", "date", "addr", "agent", "session", "cookie", "device", "created", "stamp", "finger", "nonce"]
t.ok(all(columns[tb] for tb in BALLOT_TABLES), "the ballot tables exist", columns)
suspicious = ["%s.%s" % (tb, c) for tb in BALLOT_TABLES for c in columns[tb]
              if set(re.split(r"[_\W]+", c.lower())) & WORDS or any(p in c.lower() for p in PARTS)]
t.ok(suspicious == ["ballot_intake.seq"], "no column of %s names a time, address, agent, session, cookie, "
     "device or code; only the intake has an arrival order (seq)" % ", ".join(BALLOT_TABLES),
     "%r\nall columns: %r" % (suspicious, columns))
for tb in ["ballot_store", "comments", "code_uses"]:
    t.ok("WITHOUT ROWID" in master.get(tb, "").upper(), "%s is WITHOUT ROWID (no insertion-order key)" % tb,
         master.get(tb))
t.ok("grp" in columns["ballot_store"] and not set(columns["comments"]) & {"ballot", "ballot_id", "grp"},
     "a comment does not point at its ballot", columns["comments"])
t.eq(triggers, [], "no trigger on the ballot tables (nothing copies a ballot elsewhere)")

# ---- a collector behind a (trusted) proxy, with distinctive clients ----
col = w.collector("--trust-proxy")
ADDRS = ["203.0.113.%d" % (17 + i) for i in range(6)] + ["198.51.100.%d" % (141 + i) for i in range(6)]
REAL = ["192.0.2.%d" % (201 + i) for i in range(4)]
UAS = ["Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
       "Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/zh_CN PyProbeUA%02d" % i
       for i in range(6)] + \
      ["Mozilla/5.0 (Linux; Android 14; PGT-AN10 Build/HONORPGT-AN10) XWEB/1160065 MMWEBSDK/20231202 "
       "MicroMessenger/8.0.47.2560(0x28002F30) WeChat/arm64 Weixin PyProbeUA%02d" % (6 + i) for i in range(6)]
SIDS = ["PyProbeSession%02dQx7" % i for i in range(12)]
form_tokens, vote_cookies, problems = [], [], []


def client(i):
    h = {"User-Agent": UAS[i % len(UAS)], "X-Forwarded-For": "10.9.8.7, " + ADDRS[i % len(ADDRS)],
         "Cookie": "sid=%s; theme=dark" % SIDS[i % len(SIDS)], "Accept-Language": "zh-CN,zh;q=0.9"}
    if i % 3 == 0:
        h["X-Real-IP"] = REAL[i % len(REAL)]
    return h


def ballot(path, i, level, comment=None, complaint=False):
    h = client(i)
    ft = col.form_token(path.split("?")[0], headers=h)
    if not ft:
        problems.append("no form at %s" % path)
        return None
    form_tokens.append(ft)
    pairs = [(q, level) for q in QUESTIONS] + [("ft", ft)]
    if comment:
        pairs.append(("comment", comment))
    if complaint:
        pairs.append(("complaint", "1"))
    hh = dict(h)
    hh.update(FORM_CT)
    r = col.request("POST", path, body=urllib.parse.urlencode(pairs), headers=hh)
    if r.status != 303:
        problems.append("POST %s: %d" % (path, r.status))
    sc = r.headers.get("set-cookie")
    if sc:
        vote_cookies.append(sc.split(";")[0].partition("=")[2])
    return r


# open round: poster ballots with comments, a complaint, and the vote cookie sent back
for i in range(12):
    unit = ["b1", "b2", "zb"][i % 3]
    ballot("/u/" + TOK[unit], i, "sbdu"[i % 4], comment="匿名意见 %d：食堂很好" % i, complaint=(i == 5))
for i in range(3):
    h = client(i)
    h["Cookie"] += "; pv_%s=%s" % (TOK["b1"], vote_cookies[0] if vote_cookies else "")
    col.get("/u/" + TOK["b1"], headers=h)
# code round: typed (lower case, spaced) and scanned codes, each walked through its units
for k, code in enumerate(CODES):
    h = client(k)
    hh = dict(h)
    hh.update(FORM_CT)
    typed = code.lower().replace("-", " ") if k % 2 else code
    r = col.request("POST", "/c", body=urllib.parse.urlencode([("code", typed)]), headers=hh)
    path = r.headers.get("location", "")
    col.get(path, headers=h)
    path = "/c/%s/%s?lang=zh" % (code.replace("-", ""), TOK[CODE_UNITS[0]])
    for step in range(len(CODE_UNITS)):
        r = ballot(path, k, "sb"[step % 2], comment="测评码意见 %d-%d" % (k, step))
        path = r.headers.get("location", "") if r else ""
    if path != "/c/done?lang=zh":
        problems.append("code %d: the walk ended at %r" % (k, path))
t.ok(not problems and len(form_tokens) == 12 + len(CODES) * len(CODE_UNITS) and len(set(vote_cookies)) == 3,
     "ballots stored from 12 distinct clients (open round) and 4 codes x 3 units (code round)",
     "\n".join(problems) + "\n%d tokens, cookies %r" % (len(form_tokens), vote_cookies))


# ---- the physical order of ballots and comments ----
SENT = 60


def pattern(i):
    """A distinct answer pattern for ballot i: i in base 4 over the questions."""
    return tuple("sbdu"[(i >> (2 * k)) & 3] for k in range(len(QUESTIONS)))


order_problems = []
for i in range(SENT):
    pairs = list(zip(QUESTIONS, pattern(i))) + [("comment", "order-%02d" % i)]
    r = col.post("/u/" + TOK["b3"], pairs)
    if r.status != 303:
        order_problems.append("ballot %d: %d" % (i, r.status))
t.ok(not order_problems, "%d ballots with distinct answer patterns sent to one unit, one after another" % SENT,
     "\n".join(order_problems))


def kendall_tau(seq):
    n = len(seq)
    s = 0
    for i in range(n):
        for j in range(i + 1, n):
            s += (seq[j] > seq[i]) - (seq[j] < seq[i])
    return s / (n * (n - 1) / 2) if n > 1 else 0.0


# ---- ballots wait in the intake in arrival order, then move into the store ----
con = sqlite3.connect(w.db)
intake_sizes = []
for _ in range(50):           # idle: the collector moves them on 50 ms after the last ballot
    intake_sizes.append(con.execute("SELECT count(*) FROM ballot_intake").fetchone()[0])
    if intake_sizes[-1] == 0:
        break
    time.sleep(0.1)
t.ok(intake_sizes[-1] == 0 and len(intake_sizes) <= 20,
     "the intake, which holds ballots in arrival order, is empty within 2 s of the last ballot "
     "(rows seen: %s)" % intake_sizes)
by_pattern = {pattern(i): i for i in range(SENT)}
plain_order = []
for (answers,) in con.execute("SELECT answers FROM ballots WHERE unit = 'b3'"):
    a = json.loads(answers)
    plain_order.append(by_pattern.get(tuple(a[q] for q in QUESTIONS), -1))
key_order = []
for (answers,) in con.execute("SELECT answers FROM ballots WHERE unit = 'b3' ORDER BY id"):
    a = json.loads(answers)
    key_order.append(by_pattern.get(tuple(a[q] for q in QUESTIONS), -1))
comment_order = [int(b[6:]) for (b,) in con.execute("SELECT body FROM comments ORDER BY id")
                 if b.startswith("order-")]
ids = [row[0] for row in con.execute("SELECT id FROM ballots")]
cids = [row[0] for row in con.execute("SELECT id FROM comments")]
try:
    con.execute("SELECT rowid FROM ballot_store").fetchall()
    has_rowid = True
except sqlite3.OperationalError:
    has_rowid = False
con.close()

t.eq(sorted(plain_order), list(range(SENT)), "SELECT answers FROM ballots finds each of the %d ballots once" % SENT)
t.ok(plain_order != list(range(SENT)) and plain_order != list(range(SENT))[::-1],
     "... not in the order sent (nor reversed)", plain_order)
tau = kendall_tau(plain_order)
t.ok(abs(tau) < 0.45, "... Kendall's tau between sent and stored order is near 0 (%.3f; random: sd 0.09)" % tau)
t.ok(key_order == plain_order, "the physical order is the key order (ORDER BY id gives the same)", key_order)
t.eq(sorted(comment_order), list(range(SENT)), "each ballot's comment stored once")
ctau = kendall_tau(comment_order)
t.ok(comment_order != list(range(SENT)) and abs(ctau) < 0.45,
     "comments are not stored in the order sent either (tau %.3f)" % ctau, comment_order)
t.ok(not has_rowid, "ballot_store has no rowid to read the insertion order from")

t.ok(all(isinstance(k, bytes) and len(k) == 16 for k in ids + cids), "ballot and comment keys are 16-byte blobs")
t.eq(len(set(ids)), len(ids), "all %d ballot keys differ" % len(ids))
ints = sorted(int.from_bytes(k, "big") for k in ids)
gaps = [b - a for a, b in zip(ints, ints[1:])]
t.ok(min(gaps) > 1 << 64, "ballot keys are not sequential (smallest gap between sorted keys > 2^64)",
     "smallest gap %d" % min(gaps))
t.ok(len({k[0] for k in ids}) >= len(ids) // 3 and len({k[-1] for k in ids}) >= len(ids) // 3,
     "... their first and last bytes are spread (random, not a counter or a clock)",
     "%d / %d distinct first bytes" % (len({k[0] for k in ids}), len(ids)))
cints = [int.from_bytes(k, "big") for k in cids]
near = [c for c in cints if any(abs(c - b) < 1 << 64 for b in ints)]
t.ok(not near, "no comment key is equal or near to a ballot key (a comment cannot be matched to its ballot)")

# ---- the WAL keeps pages in commit order: it is emptied once the collector is idle ----
wal = w.db + "-wal"
wal_sizes = []
for _ in range(50):           # the collector empties it 1 s after the last commit
    wal_sizes.append(os.path.getsize(wal) if os.path.exists(wal) else -1)
    if wal_sizes[-1] == 0:
        break
    time.sleep(0.1)
t.ok(wal_sizes[0] > 0 and wal_sizes[-1] == 0,
     "the WAL file, which holds the last commits' pages in order, is emptied within 5 s of the last ballot "
     "(sizes seen: %s ... %s)" % (wal_sizes[0], wal_sizes[-1]))
con = sqlite3.connect("file:%s?mode=ro" % w.db, uri=True)
t.eq(con.execute("SELECT count(*) FROM ballots WHERE unit = 'b3'").fetchone()[0], SENT,
     "... and the ballots are all in the database file")
con.close()

# A long reader (a recount, a backup) keeps the WAL from being emptied; the collector
# must not hold ballots up while it waits for that reader to leave.
r = col.post("/u/" + TOK["b3"], list(zip(QUESTIONS, pattern(SENT))))
reader = sqlite3.connect(w.db, isolation_level=None)
reader.execute("BEGIN")
reader.execute("SELECT count(*) FROM ballots").fetchone()
time.sleep(2.5)                # the idle checkpoint (1-2 s after the last commit) tries to empty the WAL
t0 = time.monotonic()
r2 = col.post("/u/" + TOK["b3"], list(zip(QUESTIONS, pattern(SENT + 1))))
waited = time.monotonic() - t0
kept = os.path.getsize(wal)
reader.execute("COMMIT")
reader.close()
t.ok(r.status == 303 and r2.status == 303 and waited < 1.0,
     "with a reader holding a read transaction, a ballot is still answered at once (303 in %.2f s)" % waited,
     "statuses %d, %d" % (r.status, r2.status))
t.ok(kept > 0, "... and the WAL was left as it was while the reader held it (%d bytes)" % kept)
for _ in range(50):
    if os.path.getsize(wal) == 0:
        break
    time.sleep(0.1)
t.eq(os.path.getsize(wal), 0, "... and emptied once the reader was done")

# ---- nothing identifying in any file, while running and after stopping ----
NEEDLES = {}
for a in ADDRS + REAL:
    NEEDLES["address " + a] = [a.encode(), socket.inet_aton(a)]    # as text and as 4 raw bytes
NEEDLES["address 10.9.8.7"] = [b"10.9.8.7"]
for i, ua in enumerate(UAS):
    NEEDLES["user agent %d" % i] = [ua.encode(), b"PyProbeUA%02d" % i]
NEEDLES["user agent (MicroMessenger)"] = [b"MicroMessenger", b"XWEB/1160065"]
for s in SIDS:
    NEEDLES["cookie " + s] = [s.encode()]
for i, v in enumerate(sorted(set(vote_cookies))):
    NEEDLES["vote cookie value %d" % i] = [v.encode()]
for i, ft in enumerate(form_tokens):
    NEEDLES["form token %d" % i] = [ft.encode()]
for code in CODES:
    p = code.replace("-", "")
    NEEDLES["code " + code] = [f.encode() for f in {code, p, code.lower(), p.lower(), code.lower().replace("-", " ")}]
DB_ONLY = {"client address 127.0.0.1": [b"127.0.0.1"]}


def scan(files, needles):
    found = []
    for path in files:
        data = open(path, "rb").read()
        low = data.lower()
        for label, forms in needles.items():
            if any(f in data or (f.isascii() and f.lower() in low) for f in forms):
                found.append("%s in %s" % (label, os.path.basename(path)))
    return found


def db_files():
    return [w.db + s for s in ("", "-wal", "-shm") if os.path.exists(w.db + s)]


files = db_files()
t.ok(w.db + "-wal" in files, "while the collector runs, the database has a WAL file", files)
found = scan(files, dict(NEEDLES, **DB_ONLY))
t.ok(not found, "while running: the database and its WAL hold no address, agent, cookie, form token or code",
     "\n".join(found[:20]))

rc = col.stop()
t.eq(rc, 0, "SIGTERM: the collector exits 0")
log = col.log_text()
found = scan([col.log_path], NEEDLES)
t.ok(not found, "the collector's log holds no address, agent, cookie, form token or code", "\n".join(found[:20]))
bad_lines = [line for line in log.splitlines() if "127.0.0.1" in line
             and not re.search(r"pingyi-collector info: listening on http://127\.0\.0\.1:%d \(" % col.port, line)]
t.ok(not bad_lines and log.count("127.0.0.1") == 1,
     "127.0.0.1 appears in the log once, in the 'listening on' line only", "\n".join(bad_lines))
comments = ["匿名意见", "测评码意见", "order-"]
t.ok(not any(c in log for c in comments), "the log holds no comment text")
con = sqlite3.connect(w.db)
con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
con.close()
found = scan(db_files(), dict(NEEDLES, **DB_ONLY))
t.ok(not found, "after stopping: no file of the database holds any of them either", "\n".join(found[:20]))
reports = harness.sanitizer_reports(log)
t.ok(not reports, "no sanitizer report in the collector's log", "\n".join(reports[:20]))
t.done()
