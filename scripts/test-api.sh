#!/usr/bin/env bash
# make test-api: the API against its OpenAPI document, with the tools
# integrators use (.ci/run runs it after make test).
#   - Redocly CLI lints /openapi.json (recommended rules: no error, no
#     warning);
#   - the end-to-end tests (lifecycle, privacy, routing, notifications) and
#     the property run over every operation (TestAPIProperties, API_CHECKS
#     checks per operation) talk to the server through Prism's validating
#     proxy: no answer may violate the document, and no request the
#     document calls invalid may succeed;
#   - oapi-codegen generates a typed Go client from the document, and a
#     program built on it raises a signal and reads it back
#     (TestGeneratedClient).
# Redocly CLI and Prism come from npm (npm ci in scripts/apitools, the
# versions its lock file pins); where npm or its registry is not there the
# run goes on without the proxy and the lint, says so in one line, and
# repeats that line at the end.
set -uo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
API_CHECKS=${API_CHECKS:-100}
started=$(date +%s)
notes=()
. scripts/apitools.sh
summary=$(mktemp)
trap 'rm -f "$summary"' EXIT
if have_apitools; then
	export BUURTSIGNAAL_PRISM="$PWD/$apitools_bin/prism"
else
	export BUURTSIGNAAL_SKIP_APITOOLS="SKIPPED: Redocly CLI's lint and Prism's validating proxy need npm packages that are not installed and could not be installed here (no npm or no registry): install them with 'npm ci --prefix scripts/apitools'"
	notes+=("$BUURTSIGNAAL_SKIP_APITOOLS")
	echo "make test-api: $BUURTSIGNAAL_SKIP_APITOOLS" >&2
fi
export BUURTSIGNAAL_TEST_API=1
tests='^(TestOpenAPILintsClean|TestGeneratedClient|TestAPIProperties|TestLifecycleEndToEnd|TestEveryReadOfPersonalDataIsAuditedOnce|TestErasure|TestRoutingRules|TestEverySignalReachesATeam|TestNotificationsEndToEnd)$'
echo "+ go test -race -run '$tests' ./cmd/buurtsignaal -rapid.checks=$API_CHECKS" >&2
BUURTSIGNAAL_API_SUMMARY="$summary" "$GO" test -race -count=1 -timeout 30m -run "$tests" ./cmd/buurtsignaal -rapid.checks="$API_CHECKS"
status=$?
cat "$summary" >&2
for n in "${notes[@]}"; do
	echo "make test-api: $n" >&2
done
elapsed=$(($(date +%s) - started))
if [ $status = 0 ]; then
	echo "make test-api: passed in $((elapsed / 60))m$((elapsed % 60))s" >&2
else
	echo "make test-api: FAILED after $((elapsed / 60))m$((elapsed % 60))s" >&2
fi
exit $status
