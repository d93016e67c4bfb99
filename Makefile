# The commands in README.md. CI runs `make test` from .ci/run.

.PHONY: demo test check contracts

demo:
	go run ./cmd/quid demo

# Every test, with the race detector. The interop tests also run the pinned JavaScript x402
# packages; their prerequisite installs them.
test: interop/node_modules/.package-lock.json
	go test -race -count=1 ./...

# The JavaScript packages of the interop tests, exactly as interop/package-lock.json pins them:
# npm ci installs the lockfile or fails, it never resolves versions anew. It runs when the
# lockfile is newer than the installed tree (always on a fresh clone). Without npm the interop
# tests skip, or fail when CI is set.
interop/node_modules/.package-lock.json: interop/package.json interop/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --prefix interop --no-audit --no-fund; \
	else \
		echo "npm not found: the interop tests will skip (or fail, with CI set)"; \
	fi

# Formatting and vet, run by CI before the tests.
check:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt needed'; exit 1; }
	go vet ./...

# Recompile the Solidity token and regenerate its Go bindings (needs Node and npm).
contracts:
	bash evm/contracts/build.sh
