#!/usr/bin/env bash
# make test: sets up what the suite needs where it is missing, then runs it.
#   1. Debian's packages the tests drive: chromium (the console's browser
#      test) and haproxy (its own check of the deployment kit's load balancer
#      configuration), installed with apt-get as root, or through sudo when
#      that needs no password. Where neither works the test that needs one is
#      skipped with one line naming the package, and that line is printed
#      again at the end: never a silent pass.
#      axe-core for the console's accessibility audit comes from npm (npm ci
#      in scripts/axe: the version its lock file pins), skipped the same way
#      where npm or its registry is not there; so are Redocly CLI and Prism
#      (npm ci in scripts/apitools) for the API's document.
#   2. go vet, then the whole suite with the race detector.
#   3. The tests whose injected clock meets a real client (cookie jar,
#      browser, TLS peer) again with that clock 52 weeks back and 52 weeks
#      forward, so a test that only passes near the day it was written fails
#      today rather than some day later (BUURTSIGNAAL_TEST_CLOCK_SHIFT).
# GO (go) and TEST_TIMEOUT (12m) override the defaults.
set -uo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
started=$(date +%s)
notes=()

have_chromium() {
	command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || [ -n "${BUURTSIGNAAL_CHROMIUM:-}" ]
}
have_haproxy() { command -v haproxy >/dev/null 2>&1; }

# install PACKAGE...: apt-get install as root or through password-less sudo;
# false where neither is possible.
install() {
	local sudo=()
	if [ "$(id -u)" != 0 ]; then
		if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
			sudo=(sudo -n)
		else
			return 1
		fi
	fi
	command -v apt-get >/dev/null 2>&1 || return 1
	echo "make test: installing Debian's $* for the tests" >&2
	if [ -z "${apt_updated:-}" ]; then
		"${sudo[@]}" apt-get update -qq >/dev/null 2>&1 || true
		apt_updated=1
	fi
	DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "$@" >/dev/null 2>&1 ||
		echo "make test: apt-get install $* failed" >&2
}

missing=()
if ! have_chromium && [ -z "${BUURTSIGNAAL_SKIP_BROWSER:-}" ]; then missing+=(chromium); fi
if ! have_haproxy && [ -z "${BUURTSIGNAAL_SKIP_HAPROXY:-}" ]; then missing+=(haproxy); fi
if [ ${#missing[@]} -gt 0 ]; then
	install "${missing[@]}" || true
fi
cannot="is not installed and could not be installed here (apt-get needs root or password-less sudo)"
if ! have_chromium && [ -z "${BUURTSIGNAAL_SKIP_BROWSER:-}" ]; then
	export BUURTSIGNAAL_SKIP_BROWSER="SKIPPED: the console's browser test (TestConsoleInBrowser) needs Debian's package chromium, which $cannot: install it with 'apt-get install chromium'"
	notes+=("$BUURTSIGNAAL_SKIP_BROWSER")
	echo "make test: $BUURTSIGNAAL_SKIP_BROWSER" >&2
fi
if ! have_haproxy && [ -z "${BUURTSIGNAAL_SKIP_HAPROXY:-}" ]; then
	export BUURTSIGNAAL_SKIP_HAPROXY="SKIPPED: HAProxy's own check of the deployment kit's haproxy.cfg (TestHAProxyConfig) needs Debian's package haproxy, which $cannot: install it with 'apt-get install haproxy'"
	notes+=("$BUURTSIGNAAL_SKIP_HAPROXY")
	echo "make test: $BUURTSIGNAAL_SKIP_HAPROXY" >&2
fi
# axe-core for the console's accessibility audit (TestConsoleAxe): npm ci
# in scripts/axe (the exact version its package-lock.json pins) where it is
# missing; where npm or the registry is not there, one skip line, repeated
# at the end.
axe_js=scripts/axe/node_modules/axe-core/axe.min.js
have_axe() { [ -f "$axe_js" ] || [ -n "${BUURTSIGNAAL_AXE_JS:-}" ]; }
if ! have_axe && [ -z "${BUURTSIGNAAL_SKIP_AXE:-}" ] && command -v npm >/dev/null 2>&1; then
	echo "make test: installing axe-core for the accessibility audit (npm ci in scripts/axe)" >&2
	npm ci --prefix scripts/axe --no-audit --no-fund --loglevel=error >/dev/null 2>&1 ||
		echo "make test: npm ci in scripts/axe failed" >&2
fi
if ! have_axe && [ -z "${BUURTSIGNAAL_SKIP_AXE:-}" ]; then
	export BUURTSIGNAAL_SKIP_AXE="SKIPPED: the console's accessibility audit (TestConsoleAxe) needs axe-core from npm, which is not installed and could not be installed here (no npm or no registry): install it with 'npm ci --prefix scripts/axe'"
	notes+=("$BUURTSIGNAAL_SKIP_AXE")
	echo "make test: $BUURTSIGNAAL_SKIP_AXE" >&2
fi
# Redocly CLI and Prism for the API's document (TestOpenAPILintsClean here,
# Prism in make test-api): npm ci in scripts/apitools, skipped the same way.
. scripts/apitools.sh
if ! have_apitools && [ -z "${BUURTSIGNAAL_SKIP_APITOOLS:-}" ]; then
	export BUURTSIGNAAL_SKIP_APITOOLS="SKIPPED: the OpenAPI lint (TestOpenAPILintsClean) needs Redocly CLI from npm, which is not installed and could not be installed here (no npm or no registry): install it with 'npm ci --prefix scripts/apitools'"
	notes+=("$BUURTSIGNAAL_SKIP_APITOOLS")
	echo "make test: $BUURTSIGNAAL_SKIP_APITOOLS" >&2
fi
if have_chromium; then
	chromium --version 2>/dev/null || true
fi

status=0
run() {
	echo "+ $*" >&2
	"$@" || status=1
}
run "$GO" vet ./...
run "$GO" test -race -count=1 -timeout "${TEST_TIMEOUT:-12m}" ./...
# The tests that take clientFacingStart, with their clocks a year away.
clocked='^(TestConsoleInBrowser|TestNotificationsEndToEnd|TestAClockSteppingBack)$'
for shift in -8736h 8736h; do
	run env BUURTSIGNAAL_TEST_CLOCK_SHIFT=$shift "$GO" test -race -count=1 -timeout 5m -run "$clocked" ./cmd/buurtsignaal
done

for n in "${notes[@]}"; do
	echo "make test: $n" >&2
done
elapsed=$(($(date +%s) - started))
if [ $status = 0 ]; then
	echo "make test: passed in $((elapsed / 60))m$((elapsed % 60))s" >&2
else
	echo "make test: FAILED after $((elapsed / 60))m$((elapsed % 60))s" >&2
fi
exit $status
