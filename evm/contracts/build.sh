#!/usr/bin/env bash
# Rebuilds the committed contract artifacts and Go bindings from QuidToken.sol and
# QuidBatchSettler.sol.
#
# Needs node and npm; nothing else in the repo does. Go builds and tests use the committed
# outputs, so run this (and commit its outputs) only after editing a .sol file:
#
#   evm/contracts/build.sh
#
# Outputs: artifacts/QuidToken.{abi.json,bin,build.json} and token/token.go;
# artifacts/QuidBatchSettler.{abi.json,bin,build.json} and batch/batch.go.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

npm ci --no-audit --no-fund --loglevel=error
node compile.mjs

mkdir -p token
go tool abigen --v2 \
	--abi artifacts/QuidToken.abi.json \
	--bin artifacts/QuidToken.bin \
	--pkg token \
	--type QuidToken \
	--out token/token.go
chmod 644 token/token.go
gofmt -l token | (! grep .) || { echo "build.sh: token/token.go is not gofmt-clean" >&2; exit 1; }

mkdir -p batch
go tool abigen --v2 \
	--abi artifacts/QuidBatchSettler.abi.json \
	--bin artifacts/QuidBatchSettler.bin \
	--pkg batch \
	--type QuidBatchSettler \
	--out batch/batch.go
chmod 644 batch/batch.go
gofmt -l batch | (! grep .) || { echo "build.sh: batch/batch.go is not gofmt-clean" >&2; exit 1; }
