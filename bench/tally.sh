#!/bin/sh
# bench/tally.sh - a tally from the counters against a recount from the raw ballots.
#
#   sh bench/tally.sh [BUILD]        BUILD: the build folder (default build; make bench passes it)
#
# DESIGN.md §4: "reading a tally costs O(units), not O(ballots); a recount from
# raw ballots must always agree". This builds (once) a database with 1,000 units
# and 10,000,000 ballots of one open round, stored the way collector/writer.c
# stores them (random 16-byte keys, answers as JSON, the counts and
# ballot_counts counters to match), then times
#   - `pingyi tally ROUND --format json` (counters; target < 50 ms),
#   - `pingyi recount ROUND` (counters against a GROUP BY over every ballot's
#     answers, plus a tally from the raw ballots; must agree, exit 0),
#   - the raw tally's GROUP BY alone, through sqlite3,
# and prints the figures and the ratio. Exit 1 when the tally misses its target
# or the recount disagrees.
#
# The database is kept in $PINGYI_BENCH_CACHE (default bench/.cache; one already
# built in /tmp/pingyi-bench is used too) and reused; delete it to rebuild. PINGYI_BENCH_UNITS and PINGYI_BENCH_BALLOTS change the
# size (a smaller run for trying the script: PINGYI_BENCH_BALLOTS=100000).
# Needs the sqlite3 command line tool (Debian: sqlite3).
set -eu

cd "$(dirname "$0")/.."
BUILD=${1:-build}
PINGYI=$BUILD/pingyi
UNITS=${PINGYI_BENCH_UNITS:-1000}
BALLOTS=${PINGYI_BENCH_BALLOTS:-10000000}
CACHE=${PINGYI_BENCH_CACHE:-bench/.cache}
DB=$CACHE/tally-$UNITS-$BALLOTS.db
[ -f "$DB" ] || [ ! -f "/tmp/pingyi-bench/${DB##*/}" ] || DB=/tmp/pingyi-bench/${DB##*/}
ROUND=bench
TARGET_MS=50

[ -x "$PINGYI" ] || { echo "bench/tally.sh: no $PINGYI (run make first)" >&2; exit 1; }
command -v sqlite3 >/dev/null || { echo "bench/tally.sh: needs the sqlite3 tool (apt-get install sqlite3)" >&2; exit 1; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

now_ns() { date +%s%N; }

QUESTIONS="leadership members mechanism performance reputation overall"

# ", sum(l1 = 's') AS l1_s, ..." : per unit, how many ballots gave each level to each question.
level_sums() {
	i=0
	for q in $QUESTIONS; do
		i=$((i + 1))
		for lv in s b d u; do
			printf ", sum(l%d = '%s') AS l%d_%s" $i $lv $i $lv
		done
	done
}

# The same as counts rows: "SELECT unit, 'leadership' AS question, 's' AS level, l1_s AS n FROM per_unit UNION ALL ..."
level_rows() {
	i=0
	sep=""
	for q in $QUESTIONS; do
		i=$((i + 1))
		for lv in s b d u; do
			printf "%sSELECT unit, '%s' AS question, '%s' AS level, l%d_%s AS n FROM per_unit" "$sep" $q $lv $i $lv
			sep=" UNION ALL "
		done
	done
}

build_db() {
	mkdir -p "$CACHE"
	tmp=$DB.tmp
	rm -f "$tmp" "$tmp-wal" "$tmp-shm"
	echo "building $DB: $UNITS units, $BALLOTS ballots (once; reused afterwards)"
	t0=$(now_ns)
	"$PINGYI" --db "$tmp" init >/dev/null
	# A committee, general branches (one per 20 units), branches under them.
	awk -v n="$UNITS" 'BEGIN {
		print "id,parent,kind,name_zh,name_en"
		print "c,,committee,基准测试大学党委,Benchmark University Committee"
		gb = int(n / 20); if (gb < 1) gb = 1
		for (g = 0; g < gb && g + 1 < n; g++)
			printf "g%03d,c,general_branch,第%d党总支,General branch %d\n", g, g, g
		for (b = 0; b + gb + 1 < n; b++)
			printf "b%04d,g%03d,branch,第%d党支部,Branch %d\n", b, b % gb, b, b
	}' >"$WORK/units.csv"
	"$PINGYI" --db "$tmp" units import "$WORK/units.csv" >/dev/null
	"$PINGYI" --db "$tmp" round create "$ROUND" --form branch --title-zh 基准测试 --title-en Benchmark >/dev/null
	"$PINGYI" --db "$tmp" round open "$ROUND" >/dev/null
	# One transaction. Each unit gets an answer mix (some near the target,
	# some far below); units are drawn with a skew (the min of two uniform
	# draws), so some units have thousands of ballots and some a handful.
	# Ballots are inserted in key order (the keys are random; sorting them
	# first makes the B-tree appends instead of random inserts), and the
	# counters come from the same generated rows, in one pass over them.
	sqlite3 "$tmp" >/dev/null <<EOF
PRAGMA synchronous = OFF;
PRAGMA cache_size = -500000;
PRAGMA temp_store = FILE;
CREATE TEMP TABLE mix(i INTEGER PRIMARY KEY, unit TEXT NOT NULL, m TEXT NOT NULL);
INSERT INTO mix SELECT row_number() OVER (ORDER BY unit) - 1, unit,
  CASE (row_number() OVER (ORDER BY unit)) % 6
    WHEN 0 THEN 'sssssssssssssssssbdu' WHEN 1 THEN 'ssssssssssssssbbbbdu'
    WHEN 2 THEN 'sssssssssssbbbbbddduu' WHEN 3 THEN 'sssssssbbbbbbddddddu'
    WHEN 4 THEN 'sssssssssssssssssssb' ELSE 'ssssbbbbddddddduuuuu' END
  FROM round_units WHERE round = '$ROUND';
CREATE TEMP TABLE gen AS
  WITH RECURSIVE n(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM n WHERE k < $BALLOTS - 1),
    pick(i) AS MATERIALIZED (SELECT min(abs(random()) % (SELECT count(*) FROM mix),
                                        abs(random()) % (SELECT count(*) FROM mix)) FROM n)
  SELECT randomblob(16) AS id, unit,
    substr(m, 1 + abs(random()) % length(m), 1) AS l1, substr(m, 1 + abs(random()) % length(m), 1) AS l2,
    substr(m, 1 + abs(random()) % length(m), 1) AS l3, substr(m, 1 + abs(random()) % length(m), 1) AS l4,
    substr(m, 1 + abs(random()) % length(m), 1) AS l5, substr(m, 1 + abs(random()) % length(m), 1) AS l6
  FROM pick JOIN mix USING (i);
BEGIN;
INSERT INTO ballot_store(id, round, unit, grp, answers)
  SELECT id, '$ROUND', unit, '群众', '{"leadership":"' || l1 || '","members":"' || l2 || '","mechanism":"' || l3
    || '","performance":"' || l4 || '","reputation":"' || l5 || '","overall":"' || l6 || '"}'
  FROM gen ORDER BY id;
CREATE TEMP TABLE per_unit AS SELECT unit, count(*) AS n$(level_sums) FROM gen GROUP BY unit;
INSERT INTO ballot_counts(round, unit, grp, n) SELECT '$ROUND', unit, '群众', n FROM per_unit;
INSERT INTO counts(round, unit, grp, question, level, n)
  SELECT '$ROUND', unit, '群众', question, level, n FROM ($(level_rows)) WHERE n > 0;
COMMIT;
DROP TABLE gen;
PRAGMA wal_checkpoint(TRUNCATE);
EOF

	n=$(sqlite3 "$tmp" "SELECT count(*) FROM ballots WHERE round = '$ROUND'")
	[ "$n" -eq "$BALLOTS" ] || { echo "bench/tally.sh: built $n ballots, not $BALLOTS" >&2; exit 1; }
	mv "$tmp" "$DB"
	rm -f "$tmp-wal" "$tmp-shm"
	echo "built in $(( ($(now_ns) - t0) / 1000000000 )) s ($(du -m "$DB" | cut -f1) MB)"
}

[ -f "$DB" ] || build_db
units=$(sqlite3 "$DB" "SELECT count(*) FROM round_units WHERE round = '$ROUND'")
ballots=$(sqlite3 "$DB" "SELECT count(*) FROM ballots WHERE round = '$ROUND'")
echo "database $DB: $units rated units, $ballots ballots; $PINGYI"

# The raw tally's GROUP BY alone (also warms the page cache for what follows).
t0=$(now_ns)
sqlite3 "$DB" "SELECT count(*) FROM (SELECT b.unit, b.grp, j.key, j.value, count(*) FROM ballots b,
  json_each(b.answers) j WHERE b.round = '$ROUND' GROUP BY 1, 2, 3, 4)" >/dev/null
raw_ms=$(( ($(now_ns) - t0) / 1000000 ))

# The tally from the counters: the whole command, start to exit; 9 runs.
runs=""
for i in 1 2 3 4 5 6 7 8 9; do
	t0=$(now_ns)
	"$PINGYI" --db "$DB" tally "$ROUND" --format json >/dev/null
	runs="$runs $(( ($(now_ns) - t0) / 1000 ))"
done
sorted=$(echo $runs | tr ' ' '\n' | sort -n)
tally_us=$(echo "$sorted" | sed -n 5p)
tally_min=$(echo "$sorted" | sed -n 1p)

# The recount: counters against the raw ballots, and a tally from them.
t0=$(now_ns)
rc=0
"$PINGYI" --db "$DB" recount "$ROUND" >"$WORK/recount.out" 2>&1 || rc=$?
recount_ms=$(( ($(now_ns) - t0) / 1000000 ))

awk -v t="$tally_us" -v tmin="$tally_min" -v r="$recount_ms" -v raw="$raw_ms" -v target="$TARGET_MS" -v n="$ballots" 'BEGIN {
	printf "tally from counters:          %8.1f ms  (median of 9 runs, min %.1f ms; target < %d ms: %s)\n",
		t / 1000, tmin / 1000, target, t / 1000 < target ? "met" : "MISSED"
	printf "recount from raw ballots:     %8.2f s   (pingyi recount, %d ballots)\n", r / 1000, n
	printf "raw GROUP BY alone (sqlite3): %8.2f s   (the raw tally'"'"'s query over json_each)\n", raw / 1000
	printf "ratio recount / tally:        %8.0fx\n", r * 1000 / t
}'
if [ "$rc" -ne 0 ]; then
	echo "bench/tally.sh: pingyi recount exited $rc:" >&2
	head -20 "$WORK/recount.out" >&2
	exit 1
fi
[ "$tally_us" -lt $((TARGET_MS * 1000)) ]
