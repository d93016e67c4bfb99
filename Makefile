# The commands in README.md. CI runs `make test` from .ci/run.

.PHONY: demo test check contracts

demo:
	go run ./cmd/quid demo

# Every test, with the race detector.
test:
	go test -race -count=1 ./...

# Formatting and vet, run by CI before the tests.
check:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt needed'; exit 1; }
	go vet ./...

# Recompile the Solidity token and regenerate its Go bindings (needs Node and npm).
contracts:
	bash evm/contracts/build.sh
