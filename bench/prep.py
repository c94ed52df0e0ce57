#!/usr/bin/python3
"""bench/prep.py - helpers for bench/run.sh (Debian's Python, standard library).

    prep.py tokens DB ROUND UNIT COUNT OUT   COUNT fresh form tokens ("ft"), one a line
    prep.py nginx-conf TEMPLATE PAGE PREFIX PORT OUT
                                             nginx.conf from nginx.conf.in, the page
                                             inlined for `return 200 "..."`
    prep.py ballots DB ROUND                 number of ballots stored for ROUND

Form tokens are made the way collector/guard.c makes them, so wrk can post a
fresh one with every ballot without fetching a form first:
    token_key = HMAC-SHA256(key = server secret, "pingyi-form-token-v2")
    head      = nonce (9 random bytes) || issued-at (uint32, big-endian)
    mac       = BLAKE2b(key = token_key, 16-byte digest,
                        head || round || NUL || unit || NUL || code)[:12]
    token     = base64url(head || mac), no padding
(code is empty in the poster flow). The server secret is meta.secret, 64 hex
digits. run.sh posts one token with curl first, so a change in guard.c shows up
as a refused token, not as a benchmark full of 400s.
"""
import base64
import hashlib
import hmac
import os
import sqlite3
import struct
import sys
import time


def form_tokens(db, round_id, unit, count, out):
    con = sqlite3.connect(db)
    secret = bytes.fromhex(con.execute("SELECT value FROM meta WHERE key = 'secret'").fetchone()[0])
    con.close()
    key = hmac.new(secret, b"pingyi-form-token-v2", hashlib.sha256).digest()
    tail = round_id.encode() + b"\0" + unit.encode() + b"\0"
    at = struct.pack(">I", int(time.time()))
    nonces = os.urandom(9 * count)
    with open(out, "w") as f:
        lines = []
        for i in range(count):
            head = nonces[9 * i:9 * i + 9] + at
            mac = hashlib.blake2b(head + tail, key=key, digest_size=16).digest()[:12]
            lines.append(base64.urlsafe_b64encode(head + mac).rstrip(b"=").decode())
        f.write("\n".join(lines) + "\n")


def nginx_string(text):
    """text as an nginx single-quoted string. Inside quotes nginx takes \\ and
    ' escaped with a backslash; $ starts a variable and has no escape, so it is
    written as ${dollar} (a variable the template sets to "$")."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'").replace("$", "${dollar}") + "'"


def chunks(text, limit=3000):
    """text cut into pieces of at most limit UTF-8 bytes (nginx refuses a
    parameter longer than its 4 KiB read buffer, so the page cannot be one)."""
    out, cur, size = [], [], 0
    for ch in text:
        n = len(ch.encode("utf-8"))
        if size + n > limit:
            out.append("".join(cur))
            cur, size = [], 0
        cur.append(ch)
        size += n
    out.append("".join(cur))
    return out


def nginx_conf(template, page, prefix, port, out):
    """The page goes in as `set $page_N '...';` lines (@PAGE_SET@) joined by
    `return 200 "$page_1$page_2..."` (@PAGE_VARS@): still nothing read per request."""
    conf = open(template, encoding="utf-8").read()
    parts = chunks(open(page, encoding="utf-8", newline="").read())
    sets = "\n".join("            set $page_%d %s;" % (i + 1, nginx_string(p)) for i, p in enumerate(parts))
    names = "".join("${page_%d}" % (i + 1) for i in range(len(parts)))
    conf = (conf.replace("@PREFIX@", prefix).replace("@PORT@", port)
            .replace("@PAGE_DIR@", os.path.dirname(os.path.abspath(page)))
            .replace("@PAGE_FILE@", os.path.basename(page))
            .replace("@PAGE_SET@", sets.lstrip())
            .replace("@PAGE_VARS@", '"%s"' % names))
    open(out, "w", encoding="utf-8").write(conf)


def ballots(db, round_id):
    con = sqlite3.connect(db, timeout=30)
    print(con.execute("SELECT count(*) FROM ballots WHERE round = ?", (round_id,)).fetchone()[0])
    con.close()


def main(argv):
    if len(argv) == 7 and argv[1] == "tokens":
        form_tokens(argv[2], argv[3], argv[4], int(argv[5]), argv[6])
    elif len(argv) == 7 and argv[1] == "nginx-conf":
        nginx_conf(*argv[2:])
    elif len(argv) == 4 and argv[1] == "ballots":
        ballots(argv[2], argv[3])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
