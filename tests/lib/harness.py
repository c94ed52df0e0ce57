"""Shared helpers for pingyi's integration tests (run by prove, speak TAP).

Each test file is a script under tests/integration/ with the shebang
#!/usr/bin/python3 (Debian's Python: the tests need only its standard library
and the programs built by make). The programs come from $PINGYI_BIN (make test
sets it to the sanitizer build) or build/.

    t = Tap()
    t.ok(cond, "what was checked")
    t.eq(got, want, "what")
    t.done()                      # prints the plan, exits 1 on any failure

    w = Workspace()               # temp dir + database; removed at exit
    w.pingyi("init")              # runs the CLI; returns CompletedProcess
    col = w.collector()           # starts pingyi-collector on a free port
    col.get("/u/TOKEN")           # -> Reply(status, headers, body)
    col.post("/u/TOKEN", {"q": "s"})
"""
import atexit
import csv
import http.client
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("PINGYI_BIN") or os.path.join(ROOT, "build")


class Tap:
    """Minimal TAP producer; the plan is printed at the end."""

    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, name, diag=None):
        self.n += 1
        print(("ok %d - %s" if cond else "not ok %d - %s") % (self.n, name), flush=True)
        if not cond:
            self.failed += 1
            if diag is not None:
                self.diag(diag)
        return cond

    def eq(self, got, want, name):
        return self.ok(got == want, name, "got:  %r\nwant: %r" % (got, want))

    def diag(self, text):
        for line in str(text).splitlines():
            print("# " + line, flush=True)

    def done(self):
        print("1..%d" % self.n, flush=True)
        sys.exit(1 if self.failed else 0)


class Reply:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers          # dict, lower-case names
        self.body = body                # bytes

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")


class Daemon:
    """A running pingyi-collector or pingyi-aggregator on 127.0.0.1:<port>."""

    def __init__(self, argv, log_path):
        self.log_path = log_path
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT)
        self.port = None
        deadline = time.time() + 20
        while time.time() < deadline and self.port is None:
            m = re.search(rb"listening on http://[0-9.]+:(\d+)", open(log_path, "rb").read())
            if m:
                self.port = int(m.group(1))
            elif self.proc.poll() is not None:
                break
            else:
                time.sleep(0.02)
        if self.port is None:
            raise RuntimeError("daemon did not start: " + open(log_path, "rb").read().decode("utf-8", "replace"))

    def request(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        reply = Reply(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
        conn.close()
        return reply

    def get(self, path, headers=None):
        return self.request("GET", path, headers=headers)

    def form_token(self, path, headers=None):
        """The form token ("ft") of the form page at path, or None."""
        r = self.get(path, headers=headers)
        m = re.search(r'name="ft" value="([^"]+)"', r.text)
        return m.group(1) if m else None

    def post(self, path, fields, headers=None, token=True):
        """POST fields (a dict or a list of pairs, or raw bytes/str) urlencoded.

        For a ballot (a dict or list posted to /u/... or /c/...), a fresh form
        token is fetched from the form page and added unless the fields carry
        "ft" or token is False; raw bodies are sent exactly as given."""
        if isinstance(fields, (dict, list)):
            pairs = list(fields.items()) if isinstance(fields, dict) else list(fields)
            if token and re.match(r"^/(u|c)/[^?]*/?", path) and path.count("/") >= 2 \
                    and not any(k == "ft" for k, _ in pairs):
                ft = self.form_token(path.split("?")[0], headers=headers)
                if ft:
                    pairs.append(("ft", ft))
            body = urllib.parse.urlencode(pairs).encode()
        else:
            body = fields.encode() if isinstance(fields, str) else fields
        h = {"Content-Type": "application/x-www-form-urlencoded"}
        h.update(headers or {})
        return self.request("POST", path, body=body, headers=h)

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode

    def log_text(self):
        return open(self.log_path, "rb").read().decode("utf-8", "replace")


class Workspace:
    """A temporary folder with a database path; daemons are stopped at exit."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="pingyi-test-")
        self.db = os.path.join(self.dir, "test.db")
        self.daemons = []
        atexit.register(self.close)

    def path(self, name):
        return os.path.join(self.dir, name)

    def write(self, name, text):
        p = self.path(name)
        with open(p, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        return p

    def pingyi(self, *args, check=False):
        """Run the CLI against this workspace's database (cwd: the repo root)."""
        r = subprocess.run([os.path.join(BIN, "pingyi"), "--db", self.db] + list(args),
                           cwd=ROOT, capture_output=True, text=True, timeout=120)
        if check and r.returncode != 0:
            raise RuntimeError("pingyi %s failed (%d): %s" % (" ".join(args), r.returncode, r.stderr))
        return r

    SMALL_ORG = ("id,parent,kind,name_zh,name_en\n"
                 "dw,,committee,党委,Party Committee\n"
                 "zb,dw,general_branch,机关党总支,Admin General Branch\n"
                 "b1,zb,branch,第一党支部,First Branch\n"
                 "b2,zb,branch,第二党支部,Second Branch\n"
                 "b3,zb,branch,第三党支部,Third Branch\n")

    def import_small_org(self, *extra_rows):
        """Import the party committee several tests share (dw > zb > b1, b2, b3), plus
        extra CSV rows; returns tokens()."""
        self.write("units.csv", self.SMALL_ORG + "".join(r + "\n" for r in extra_rows))
        self.pingyi("units", "import", self.path("units.csv"), check=True)
        return self.tokens()

    def open_round(self, rid, *args, form="branch"):
        """pingyi round create RID --form FORM ARGS..., then round open RID."""
        self.pingyi("round", "create", rid, "--form", form, *args, check=True)
        self.pingyi("round", "open", rid, check=True)

    def tokens(self):
        """{unit id: public token}, as `pingyi units list --format csv` prints them."""
        out = self.pingyi("units", "list", "--format", "csv", check=True).stdout.lstrip("\ufeff")
        return {row["id"]: row["token"] for row in csv.DictReader(io.StringIO(out))}

    def collector(self, *extra):
        d = Daemon([os.path.join(BIN, "pingyi-collector"), "--db", self.db,
                    "--listen", "127.0.0.1:0"] + list(extra), self.path("collector-%d.log" % len(self.daemons)))
        self.daemons.append(d)
        return d

    def aggregator(self, *extra):
        d = Daemon([os.path.join(BIN, "pingyi-aggregator"), "--db", self.db,
                    "--listen", "127.0.0.1:0"] + list(extra), self.path("aggregator-%d.log" % len(self.daemons)))
        self.daemons.append(d)
        return d

    def close(self):
        for d in self.daemons:
            d.stop()
        if os.environ.get("PINGYI_KEEP_TEST_DIRS"):
            print("# kept " + self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def diff(got, want, path=""):
    """Lines naming each field where got (parsed JSON) differs from want:
    dicts key by key, lists of equal length item by item. An expected value
    with a matches(got) method (e.g. an exact number compared with its
    printed form) decides for itself."""
    if hasattr(want, "matches"):
        return [] if want.matches(got) else ["%s: got %r, want %r" % (path, got, want)]
    if isinstance(want, dict) and isinstance(got, dict):
        out = []
        for k in list(want) + [k for k in got if k not in want]:
            if k not in want:
                out.append("%s.%s: unexpected field" % (path, k))
            elif k not in got:
                out.append("%s.%s: missing" % (path, k))
            else:
                out += diff(got[k], want[k], "%s.%s" % (path, k))
        return out
    if isinstance(want, list) and isinstance(got, list) and len(want) == len(got):
        out = []
        for i, (g, w) in enumerate(zip(got, want)):
            out += diff(g, w, "%s[%d]" % (path, i))
        return out
    if type(got) is not type(want) or got != want:
        return ["%s: got %r, want %r" % (path, got, want)]
    return []


def load_test(name):
    """Import another test file (e.g. "65-property.t", which holds the
    exact-fraction tally model) as a module, without running it as a test
    (it must guard its test run with __name__ == "__main__")."""
    import importlib.machinery
    import importlib.util
    path = os.path.join(ROOT, "tests", "integration", name)
    loader = importlib.machinery.SourceFileLoader(name.split(".")[0].replace("-", "_"), path)
    spec = importlib.util.spec_from_loader(loader.name, loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def sanitizer_reports(text):
    """Lines in a daemon log that show an ASan/UBSan report."""
    return [l for l in text.splitlines() if "Sanitizer" in l or "runtime error:" in l]
