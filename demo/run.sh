#!/bin/sh
# The demo behind "make run": a sample university in var/demo.db with two
# open rounds (party branches; service windows), QR codes in var/qr/, and
# both daemons on 127.0.0.1. Ctrl-C stops them; the data stays for next time
# (delete var/demo.db to start over).
set -eu
BUILD=${1:-build}
DB=var/demo.db
COLLECTOR=${PINGYI_COLLECTOR:-127.0.0.1:8080}
AGGREGATOR=${PINGYI_AGGREGATOR:-127.0.0.1:8081}
pingyi() { "$BUILD/pingyi" --db "$DB" "$@"; }

if [ ! -f "$DB" ]; then
	echo "== creating the demo university in $DB"
	pingyi init --base-url "http://$COLLECTOR"
	pingyi units import demo/units.csv
	pingyi round create demo-branch --form branch --series "党支部工作群众满意度测评" \
		--title-zh "2026年下半年党支部工作群众满意度测评" \
		--title-en "Party branch work appraisal, second half of 2026" --closes +30d
	pingyi round open demo-branch
	pingyi round create demo-window --form window --series "服务窗口满意度测评" \
		--title-zh "2026年下半年服务窗口满意度测评" \
		--title-en "Service window appraisal, second half of 2026" --closes +30d
	pingyi round open demo-window
fi

echo "== QR codes"
pingyi qr --all --out var/qr >/dev/null
echo "   written to var/qr/ (one PNG per unit)"
echo
echo "== forms to open on a phone or in a browser"
pingyi units list
echo
echo "== the office's tally page:  http://$AGGREGATOR/"
echo "== tally from the command line:  $BUILD/pingyi --db $DB tally demo-branch"
echo

"$BUILD/pingyi-collector" --db "$DB" --listen "$COLLECTOR" &
collector=$!
"$BUILD/pingyi-aggregator" --db "$DB" --listen "$AGGREGATOR" &
aggregator=$!
trap 'kill $collector $aggregator 2>/dev/null; wait; exit 0' INT TERM
echo "== running; press Ctrl-C to stop"
wait
