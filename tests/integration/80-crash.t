#!/usr/bin/python3
"""Durability: a ballot is answered 303 only once it is committed, whatever happens next.

Four times: 16 client threads post ballots as fast as they can, each with a
unique comment "crash-<run>-<thread>-<n>" so it can be found again (comments
are stored apart from ballots, in the same transaction), and the collector is
killed with SIGKILL after about a second. After a restart on the same
database: every comment answered 303 is stored, every stored comment was sent,
each stored comment came with exactly its ballot (same unit and answers), the
counters agree with a recount of the ballots, and the database is intact.
Then SIGTERM with requests in flight, and SIGTERM while slow clients are
still sending their bodies: the collector exits 0; every ballot is either
answered 303 and stored, or answered 503 (not saved), or gets no answer and is
not stored -- never stored without an answer, which a client would send
again. Last, a drain that gives up (the database locked by another
connection): the batch being written is answered, the queued ballots are not
written, and the collector exits 1."""
import csv
import io
import json
import os
import random
import signal
import socket
import sqlite3
import sys
import threading
import time
import urllib.parse
from collections import Counter

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import harness  # noqa: E402

QUESTIONS = ["leadership", "members", "mechanism", "performance", "reputation", "overall"]
FORM_CT = {"Content-Type": "application/x-www-form-urlencoded"}
THREADS = 16
UNITS = ["zb", "b1", "b2", "b3"]

t = harness.Tap()
w = harness.Workspace()
w.pingyi("init", check=True)
TOK = w.import_small_org()
w.open_round("r1", "--title-zh", "测评", "--title-en", "Appraisal")

SENT = {}        # comment -> (unit, answers dict), every ballot POSTed
ANSWERED = {}    # comment -> status, for POSTs that got an answer
UNANSWERED = set()
lock = threading.Lock()


def load(col, tag, stop):
    """Post ballots from THREADS threads until stop is set; returns the threads."""
    def worker(tid):
        rnd = random.Random("%s-%d" % (tag, tid))
        n = 0
        while not stop.is_set():
            unit = rnd.choice(UNITS)
            path = "/u/" + TOK[unit]
            answers = {q: rnd.choice("sbdu") for q in QUESTIONS}
            comment = "crash-%s-%d-%d" % (tag, tid, n)
            n += 1
            try:
                ft = col.form_token(path)
            except Exception:
                time.sleep(0.01)          # the collector is down: nothing was posted
                continue
            if not ft:
                time.sleep(0.01)
                continue
            body = urllib.parse.urlencode(list(answers.items()) + [("comment", comment), ("ft", ft)])
            with lock:
                SENT[comment] = (unit, answers)
            try:
                r = col.request("POST", path, body=body, headers=FORM_CT)
                with lock:
                    ANSWERED[comment] = r.status
            except Exception:
                with lock:
                    UNANSWERED.add(comment)
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for th in threads:
        th.start()
    return threads


def db_check():
    """Compare the database with what the clients saw; returns a list of problems."""
    con = sqlite3.connect(w.db)
    try:
        integrity = con.execute("PRAGMA integrity_check").fetchall()
        comments = [b for (b,) in con.execute("SELECT body FROM comments")]
        ballots = con.execute("SELECT round, unit, grp, answers FROM ballots").fetchall()
        counts = {(r, u, g, qn, lv): n for r, u, g, qn, lv, n in con.execute("SELECT * FROM counts")}
        bcounts = {(r, u, g): n for r, u, g, n in con.execute("SELECT round, unit, grp, n FROM ballot_counts")}
    finally:
        con.close()
    why = []
    if integrity != [("ok",)]:
        why.append("integrity_check: %r" % integrity[:5])
    stored = Counter(comments)
    with lock:
        acked = {c for c, s in ANSWERED.items() if s == 303}
        sent = dict(SENT)
    dup = [c for c, n in stored.items() if n > 1]
    if dup:
        why.append("comments stored twice: %r" % dup[:5])
    lost = sorted(acked - set(stored))
    if lost:
        why.append("%d ballots answered 303 are not stored: %r" % (len(lost), lost[:5]))
    ghosts = sorted(set(stored) - set(sent))
    if ghosts:
        why.append("stored comments that were never sent: %r" % ghosts[:5])
    if len(ballots) != len(comments):
        why.append("%d ballots but %d comments (every ballot carried one)" % (len(ballots), len(comments)))
    want = Counter((sent[c][0], json.dumps(sent[c][1], sort_keys=True)) for c in stored if c in sent)
    got = Counter((u, json.dumps(json.loads(a), sort_keys=True)) for _, u, _, a in ballots)
    if want != got:
        why.append("stored ballots differ from the ballots of the stored comments: %d extra, %d missing"
                   % (sum((got - want).values()), sum((want - got).values())))
    recount, rb = Counter(), Counter()
    for r, u, g, a in ballots:
        rb[(r, u, g)] += 1
        for qn, lv in json.loads(a).items():
            recount[(r, u, g, qn, lv)] += 1
    if dict(rb) != bcounts:
        why.append("ballot_counts %r != recount %r" % (bcounts, dict(rb)))
    if dict(recount) != counts:
        diff = {k: (counts.get(k), recount.get(k)) for k in set(counts) | set(recount)
                if counts.get(k) != recount.get(k)}
        why.append("counts differ from a recount of the ballots: %r" % list(diff.items())[:5])
    return why, len(acked), len(stored)


col = w.collector()
for run in range(1, 5):
    stop = threading.Event()
    threads = load(col, str(run), stop)
    time.sleep(1.0)
    col.proc.kill()                              # SIGKILL, mid-stream
    col.proc.wait()
    time.sleep(0.2)
    stop.set()
    for th in threads:
        th.join(timeout=60)
    col.stop()
    with lock:
        mine = [c for c in SENT if c.startswith("crash-%d-" % run)]
        acked = sum(1 for c in mine if ANSWERED.get(c) == 303)
        other = sorted({ANSWERED[c] for c in mine if c in ANSWERED and ANSWERED[c] != 303})
        lost = sum(1 for c in mine if c in UNANSWERED)
    t.ok(acked > 0 and not other, "run %d: %d ballots posted, %d answered 303, %d unanswered at the kill, "
         "no other answer" % (run, len(mine), acked, lost), "other answers: %r" % other)
    con = sqlite3.connect(w.db)
    left = con.execute("SELECT count(*) FROM ballot_intake").fetchone()[0]
    con.close()
    col = w.collector()                          # restart on the same database
    problems, n_acked, n_stored = db_check()
    t.ok(not problems, "run %d, after restart: all %d acknowledged ballots stored (%d stored), nothing else; "
         "counters = recount; integrity ok" % (run, n_acked, n_stored), "\n".join(problems))
    # The kill leaves ballots in the intake, some perhaps already moved into the
    # store: the restarted collector moves them on, each once, without a ballot.
    for _ in range(50):
        con = sqlite3.connect(w.db)
        still = con.execute("SELECT count(*) FROM ballot_intake").fetchone()[0]
        con.close()
        if still == 0:
            break
        time.sleep(0.1)
    problems, _, n_moved = db_check()
    t.ok(still == 0 and not problems and n_moved == n_stored,
         "run %d: the %d ballots the kill left in the intake are moved into the store within 5 s, "
         "each once" % (run, left), "\n".join(problems) or "%d still in the intake" % still)
    r = col.get("/healthz")
    t.eq(r.status, 200, "run %d: the restarted collector is healthy" % run)
    if run == 1:
        # The WAL the kill left holds the last commits in order; the restarted
        # collector empties it once idle, without waiting for a ballot.
        wal = w.db + "-wal"
        for _ in range(50):
            if not os.path.exists(wal) or os.path.getsize(wal) == 0:
                break
            time.sleep(0.1)
        t.ok(not os.path.exists(wal) or os.path.getsize(wal) == 0,
             "run 1: the WAL left by the kill is emptied by the restarted collector within 5 s, before any ballot")

# ---- SIGTERM with requests in flight ----
for round_no in (1, 2):
    tag = "term%d" % round_no
    stop = threading.Event()
    threads = load(col, tag, stop)
    time.sleep(0.7)
    col.proc.send_signal(signal.SIGTERM)
    try:
        rc = col.proc.wait(timeout=20)
    except Exception:
        rc = None
    time.sleep(0.2)
    stop.set()
    for th in threads:
        th.join(timeout=60)
    col.stop()
    log = col.log_text()
    t.eq(rc, 0, "%s: SIGTERM with requests in flight: the collector exits 0" % tag)
    reports = harness.sanitizer_reports(log)
    t.ok(not reports, "%s: no sanitizer report" % tag, "\n".join(reports[:30]))
    col = w.collector()
    problems, n_acked, n_stored = db_check()
    t.ok(not problems, "%s: every 303 is stored, counters = recount, integrity ok" % tag, "\n".join(problems))
    con = sqlite3.connect(w.db)
    stored = {b for (b,) in con.execute("SELECT body FROM comments WHERE body LIKE ?", ("crash-%s-%%" % tag,))}
    con.close()
    with lock:
        mine = [c for c in SENT if c.startswith("crash-%s-" % tag)]
        outcome = Counter((ANSWERED.get(c), c in stored) for c in mine)
    wrong = {k: n for k, n in outcome.items() if k not in {(303, True), (503, False), (None, False)}}
    t.ok(outcome.get((303, True), 0) > 0 and not wrong,
         "%s: %d ballots posted; each got 303 and was stored, or 503, or no answer and was not stored (%s)"
         % (tag, len(mine), ", ".join("%s/%s: %d" % (s, "stored" if k else "not stored", n)
                                      for (s, k), n in sorted(outcome.items(), key=str))),
         "unexpected: %r" % wrong)

# ---- SIGTERM while clients are still sending their bodies ----
# 240 connections send their headers and part of the body; after SIGTERM the
# rest of each body follows, a third spread over 150 ms and the rest densely
# from 30 to 90 ms (the collector stops about 50 ms after SIGTERM), so some
# ballots are complete just as it stops. Each must be answered 303 and stored, or
# answered 503, or cut off unread -- and not stored.
def raw_ballot(tag, i):
    """A ballot for b1 over its own socket, recorded in SENT: (comment, socket, head, body)."""
    comment = "crash-%s-%d" % (tag, i)
    ft = col.form_token("/u/" + TOK["b1"])
    answers = {q: "sbdu"[(i + k) % 4] for k, q in enumerate(QUESTIONS)}
    body = urllib.parse.urlencode(list(answers.items()) + [("comment", comment), ("ft", ft or "")]).encode()
    head = (b"POST /u/%s HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: %d\r\n\r\n" % (TOK["b1"].encode(), len(body)))
    with lock:
        SENT[comment] = ("b1", answers)
    return comment, socket.create_connection(("127.0.0.1", col.port), timeout=20), head, body


SLOW = 240
slow = []
for i in range(SLOW):
    comment, s, head, body = raw_ballot("slow", i)
    s.sendall(head + body[:10])
    slow.append((comment, s, body))
time.sleep(0.2)
col.proc.send_signal(signal.SIGTERM)
slow_answer = {}


def finish(i, comment, s, body):
    time.sleep(i * 0.15 / SLOW if i % 3 == 0 else 0.03 + i * 0.06 / SLOW)
    data = b""
    try:
        s.sendall(body[10:])
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    s.close()
    status = int(data.split(b" ")[1]) if data.startswith(b"HTTP/1.1 ") else None
    with lock:
        slow_answer[comment] = status
        if status is None:
            UNANSWERED.add(comment)
        else:
            ANSWERED[comment] = status


threads = [threading.Thread(target=finish, args=(i,) + slow[i]) for i in range(SLOW)]
for th in threads:
    th.start()
for th in threads:
    th.join(timeout=60)
try:
    rc = col.proc.wait(timeout=20)
except Exception:
    rc = None
col.stop()
log = col.log_text()
t.eq(rc, 0, "slow bodies: SIGTERM: the collector exits 0 (not killed by a fatal error)")
fatal = [line for line in log.splitlines() if "Fatal" in line or "Sanitizer" in line or "runtime error" in line]
t.ok(not fatal, "slow bodies: no fatal error in the log", "\n".join(fatal[:10]))
col = w.collector()
con = sqlite3.connect(w.db)
stored = {b for (b,) in con.execute("SELECT body FROM comments WHERE body LIKE 'crash-slow-%'")}
con.close()
outcome = Counter()
wrong = []
for comment, status in sorted(slow_answer.items()):
    kept = comment in stored
    outcome[(status, kept)] += 1
    if (status, kept) not in {(303, True), (503, False), (None, False)}:
        wrong.append("%s: answer %s, %s" % (comment, status, "stored" if kept else "not stored"))
t.ok(len(slow_answer) == SLOW and not wrong,
     "slow bodies: each got 303 and was stored, or 503, or was cut off unread and not stored (%s)"
     % ", ".join("%s/%s: %d" % (s, "stored" if k else "not stored", n) for (s, k), n in sorted(
         outcome.items(), key=str)), "\n".join(wrong[:10]))
problems, n_acked, n_stored = db_check()
t.ok(not problems, "slow bodies: every 303 is stored, counters = recount, integrity ok", "\n".join(problems))

# ---- raters who hang up while their ballot is being committed ----
# Each ballot is stored (it was complete); nobody hears the 303. The collector
# must not wait for those answers when it is told to stop.
HANG = 150
hung = []
for i in range(HANG):
    _, s, head, body = raw_ballot("hang", i)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST on close
    hung.append((s, head + body))
for s, data in hung:
    s.sendall(data)
for s, _ in hung:
    s.close()
time.sleep(1.0)
t0 = time.monotonic()
col.proc.send_signal(signal.SIGTERM)
try:
    rc = col.proc.wait(timeout=30)
except Exception:
    rc = None
took = time.monotonic() - t0
col.stop()
log = col.log_text()
t.ok(rc == 0 and "still unanswered" not in log and took < 5,
     "after %d raters hung up mid-ballot, SIGTERM stops the collector at once (exit %s in %.1f s)" % (HANG, rc, took),
     "\n".join(log.splitlines()[-5:]))
col = w.collector()
problems, n_acked, n_stored = db_check()
t.ok(not problems, "hung-up raters: every 303 is stored, counters = recount, integrity ok", "\n".join(problems))

# ---- a drain that gives up ----
# Another connection holds the write lock, so the writer waits on ballot A's
# batch while B queues behind it. The drain (--drain-seconds 1) gives up and
# says so; then the lock is let go. The writer finishes A's batch and A is
# answered; B is neither written nor answered (a rater with no answer sends
# again: stored, it would count twice); the collector exits 1, not aborted
# by libmicrohttpd, which refuses to stop with connections suspended.
t.eq(col.stop(), 0, "the collector before the drain test exits 0")
col = w.collector("--drain-seconds", "1")
holder = sqlite3.connect(w.db, isolation_level=None)
holder.execute("BEGIN IMMEDIATE")
waiting = []
for i in range(2):
    comment, s, head, body = raw_ballot("drain", i)
    s.sendall(head + body)
    waiting.append((comment, s))
    time.sleep(0.3)
col.proc.send_signal(signal.SIGTERM)
for _ in range(100):
    if "still unanswered" in col.log_text():
        break
    time.sleep(0.1)
gave_up = "still unanswered after 1 s" in col.log_text()
t0 = time.monotonic()
holder.execute("ROLLBACK")
holder.close()
try:
    rc = col.proc.wait(timeout=30)
except Exception:
    rc = None
took = time.monotonic() - t0
answers = []
for comment, s in waiting:
    s.settimeout(5)
    try:
        answers.append(s.recv(100).split(b"\r\n")[0])
    except OSError:
        answers.append(b"")
    s.close()
col.stop()
log = col.log_text()
t.ok(gave_up and rc == 1 and took < 5 and answers == [b"HTTP/1.1 303 See Other", b""],
     "a drain that gives up says so; A's batch is finished and answered 303, B gets no answer; exit 1 "
     "%.1f s after the lock is let go" % took,
     "exit %s, answers %r\n%s" % (rc, answers, "\n".join(log.splitlines()[-5:])))
con = sqlite3.connect(w.db)
kept = {b for (b,) in con.execute("SELECT body FROM comments WHERE body LIKE 'crash-drain-%'")}
con.close()
t.ok(kept == {"crash-drain-0"}, "A is stored; the queued ballot B is not", "stored: %r" % sorted(kept))
with lock:
    ANSWERED[waiting[0][0]] = 303
col = w.collector()
problems, n_acked, n_stored = db_check()
t.ok(not problems, "after the drain gave up: every 303 is stored, counters = recount, integrity ok",
     "\n".join(problems))

rc = col.stop()
reports = [r for d in w.daemons for r in harness.sanitizer_reports(d.log_text())]
t.ok(rc == 0 and not reports, "the last collector exits 0; no sanitizer report in any collector's log",
     "\n".join(reports[:30]))
t.done()
