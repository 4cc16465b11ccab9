# Sourced by scripts/test.sh and scripts/test-api.sh: installs the npm tools
# of the API's tests (Redocly CLI, Prism: the exact versions of
# scripts/apitools/package-lock.json) with npm ci where they are missing.
apitools_bin=scripts/apitools/node_modules/.bin
have_apitools() { [ -x "$apitools_bin/redocly" ] && [ -x "$apitools_bin/prism" ]; }
if ! have_apitools && [ -z "${BUURTSIGNAAL_SKIP_APITOOLS:-}" ] && command -v npm >/dev/null 2>&1; then
	echo "installing Redocly CLI and Prism for the API's tests (npm ci in scripts/apitools)" >&2
	npm ci --prefix scripts/apitools --no-audit --no-fund --loglevel=error >/dev/null 2>&1 ||
		echo "npm ci in scripts/apitools failed" >&2
fi
