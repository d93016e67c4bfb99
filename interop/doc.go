// Package interop proves that quid pays and is paid by the x402 implementations that already
// exist: the TypeScript packages (@x402/fetch, @x402/express, the facilitator of @x402/core and
// @x402/evm, and the legacy v1 x402-fetch and x402-express), pinned in package-lock.json here.
//
// It owns no library code, only tests. The live tests start quid's devnet, facilitator and
// paywall in-process on loopback, spawn the node scripts in scripts/ against them, and check the
// outcome on chain. They need `npm ci --prefix interop` (make test runs it); without the
// packages they skip, or fail when the CI environment variable is set. The golden tests decode
// wire captures of the real TypeScript client committed in testdata/ and need no node at all;
// `npm run golden --prefix interop` regenerates them.
//
// Nothing here may download anything at run time or listen on anything but loopback.
package interop
