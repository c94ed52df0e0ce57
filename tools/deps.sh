#!/bin/sh
# Install the Debian packages pingyi needs that are missing.
#
#   sh tools/deps.sh          packages to build and run
#   sh tools/deps.sh test     ... plus those the tests use
#   sh tools/deps.sh bench    ... plus those make bench uses
#   sh tools/deps.sh npm      npm, where the nodejs package does not bring it
#
# As root it runs apt-get; otherwise it prints the command to run.
set -eu

build="gcc make pkg-config libc6-dev libmicrohttpd-dev libsqlite3-dev libsodium-dev
libjansson-dev libqrencode-dev libpng-dev libxlsxwriter-dev"
test="$build libcmocka-dev perl zbar-tools curl sqlite3 python3 python3-openpyxl
nodejs chromium fonts-noto-cjk"
bench="$build wrk nginx-light python3 sqlite3"

case "${1:-build}" in
build) wanted=$build ;;
test) wanted=$test ;;
bench) wanted=$bench ;;
npm) wanted=npm ;;
*) echo "usage: sh tools/deps.sh [build|test|bench|npm]" >&2; exit 2 ;;
esac

missing=
for p in $wanted; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "pingyi needs these Debian packages:$missing" >&2
	echo "install them with:  sudo apt-get install -y$missing" >&2
	exit 1
fi
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing
