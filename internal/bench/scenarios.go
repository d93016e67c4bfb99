package bench

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/quidpay/quid/devnet"
	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/facilitator"
	"github.com/quidpay/quid/paywall"
	"github.com/quidpay/quid/store"
	"github.com/quidpay/quid/x402"
)

var scenarios = []scenario{
	{"floor", "1", "floor: ECDSA recovery",
		"one secp256k1 public-key recovery of a fixed digest and signature (go-ethereum crypto.Ecrecover)", runFloor},
	{"verify-path", "1", "verify path: EIP-712 digest + recover",
		"the arithmetic of verifying an exact payment: its EIP-712 digest under the token's cached domain, recovery of the signer and comparison with authorization.from (evm.Digest, evm.Recover)", runVerifyPath},
	{"facilitator-verify", "1", "facilitator.Verify, in-process",
		"quid's facilitator.Verify of a freshly signed payment, called in-process: parsing, recovery, eth_getCode and an eth_call simulation against the devnet, a head and balanceOf read, and the balance reservation written to SQLite", runFacilitatorVerify},
	{"unpaid", "2", "unpaid baseline",
		"GET /weather answered by the route's handler with no paywall, over keep-alive HTTP/1.1 on loopback", runUnpaid},
	{"exact", "3", "quid x402 exact, end to end",
		"GET /weather with a freshly signed PAYMENT-SIGNATURE, through quid's paywall with the default SettleAfter: facilitator.Verify in-process, the claim in SQLite, the handler, facilitator.Settle (transaction sent, mined on the devnet, receipt and Transfer log checked, recorded in SQLite), then the 200", runExact},
	{"exact-deferred", "3", "quid x402 exact, SettleDeferred",
		"GET /weather with a freshly signed PAYMENT-SIGNATURE, through quid's paywall with SettleDeferred: facilitator.Defer in-process (verified with the simulation, queued and reserved in SQLite), the claim, the handler, the release to the batcher, then the 200; the payment is settled later in a batch", runExactDeferred},
	{"capability", "4", "quid capability token",
		"GET /weather presenting a Quid-Capability token bought by an earlier payment, through quid's paywall: the macaroon verified, the payer's block flag read and a use counted in SQLite, the handler, then the 200; no 402 and no payment", runCapability},
	{"ts-peer", "5", "@x402/express + TS facilitator",
		"GET /weather with a freshly signed PAYMENT-SIGNATURE, through @x402/express 2.27 with the TypeScript facilitator (@x402/core + @x402/evm, viem over the devnet's JSON-RPC) in the same node process; settles before the 200 like quid", runTSPeer},
	{"go-sdk", "6", "official Go SDK net/http", "", runGoSDK},
	{"settle-facilitator", "7", "settle: quid facilitator, 1 per tx",
		"one authorization settled by quid's facilitator.Settle in-process (re-verify, SQLite record, estimateGas, send, mined on the devnet, receipt and Transfer log checked)", runSettleFacilitator},
	{"settle-raw", "7", "settle: transferWithAuthorization, 1 per tx",
		"one authorization settled by a bare transferWithAuthorization transaction, its receipt awaited; no facilitator", runSettleRaw},
	{"settle-batch", "7", "settle: QuidBatchSettler, " + strconv.Itoa(batchSize) + " per tx",
		"one authorization settled inside a QuidBatchSettler.settle transaction of " + strconv.Itoa(batchSize) + ", its receipt awaited and every item checked for its Transfer log; no facilitator", runSettleBatch},
}

const weatherBody = `{"city":"Lisbon","tempC":21,"sky":"clear"}`

func weather(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, weatherBody)
}

// ---------------------------------------------------------------- 1: the floor

// fixture is one signed authorization for the CPU-only scenarios.
type fixture struct {
	key    *ecdsa.PrivateKey
	domain evm.Domain
	auth   evm.Authorization
	digest [32]byte
	sig    evm.Signature
	raw    []byte // sig with v = 0/1, as crypto.Ecrecover takes it
}

func newFixture() (*fixture, error) {
	key, err := crypto.HexToECDSA("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")
	if err != nil {
		return nil, err
	}
	f := &fixture{key: key, domain: evm.DevToken(devnet.DefaultChainID).Domain()}
	f.auth = evm.Authorization{From: crypto.PubkeyToAddress(key.PublicKey), To: common.HexToAddress("0x70997970C51812dc3A010C7d01b50e0d17dc79C8"),
		Value: evm.NewAmount(benchPriceAtomic), ValidBefore: uint64(time.Now().Add(time.Hour).Unix())}
	if f.auth.Nonce, err = evm.NewNonce(); err != nil {
		return nil, err
	}
	f.digest = f.auth.Digest(f.domain)
	if f.sig, err = evm.Sign(key, f.digest); err != nil {
		return nil, err
	}
	f.raw = append([]byte(nil), f.sig[:]...)
	f.raw[64] -= 27
	return f, nil
}

func runFloor(ctx context.Context, b *runner, r *Result) error {
	f, err := newFixture()
	if err != nil {
		return err
	}
	r.Processes = "the bench process (the load generator's workers doing the recoveries)"
	if _, err := b.load(ctx, r, loadConfig{}, one(func(context.Context, int) error {
		_, err := crypto.Ecrecover(f.digest[:], f.raw)
		return err
	})); err != nil {
		return err
	}
	impl := "pure Go (built without cgo)"
	if b.report.Meta.Cgo {
		impl = "libsecp256k1 through cgo"
	}
	r.detail("implementation", "%s; %d workers on %d CPUs, so the rate is the machine's, not one core's", impl, b.cfg.Concurrency, b.report.Meta.GOMAXPROCS)
	// What a buyer spends per paid request, which the load generator pays in every paid scenario.
	const n = 500
	began := time.Now()
	for range n {
		a := f.auth
		if _, err := evm.SignAuthorization(f.key, f.domain, &a); err != nil {
			return err
		}
	}
	r.detail("signing", "one EIP-3009 signature, as the load generator makes for every paid request: %s single-threaded", dur(us(time.Since(began))/n))
	return nil
}

func runVerifyPath(ctx context.Context, b *runner, r *Result) error {
	f, err := newFixture()
	if err != nil {
		return err
	}
	r.Processes = "the bench process (the load generator's workers doing the verifications)"
	_, err = b.load(ctx, r, loadConfig{}, one(func(context.Context, int) error {
		d := f.auth.Digest(f.domain)
		from, err := evm.Recover(d, f.sig)
		if err != nil {
			return err
		}
		if from != f.auth.From {
			return errors.New("recovered the wrong signer")
		}
		return nil
	}))
	return err
}

// ---------------------------------------------------------------- quid's facilitator

// quidStack is a devnet with quid's facilitator on it, storing in a SQLite file. The
// facilitator's chain and store, and the paywall's claims, are timed into rec.
type quidStack struct {
	*chainEnv
	db  *store.DB
	st  timedStore
	fac *facilitator.Facilitator
	rec *phaseRecorder
}

// deferCap is the credit a SettleDeferred seller extends to one payer (facilitator MaxDeferred):
// $1, a thousand of the bench's requests.
const deferCap = 1_000_000

func (b *runner) quidStack(ctx context.Context, name string, batching bool) (*quidStack, error) {
	c, err := b.startChain(ctx)
	if err != nil {
		return nil, err
	}
	db, err := store.Open(ctx, filepath.Join(b.dir, name, "quid.db"))
	if err != nil {
		c.close()
		return nil, err
	}
	rec := &phaseRecorder{}
	st := timedStore{DB: db, rec: rec}
	cfg := facilitator.Config{Chain: timedChain{c: c.client, rec: rec}, ChainID: c.chainID, Relayer: c.acc[quidRelayer].Key, Store: st}
	if batching {
		cfg.BatchSettler, cfg.MaxDeferred = devnet.BatchSettlerAddress, evm.NewAmount(deferCap)
	}
	fac, err := facilitator.New(cfg)
	if err != nil {
		db.Close()
		c.close()
		return nil, err
	}
	return &quidStack{chainEnv: c, db: db, st: st, fac: fac, rec: rec}, nil
}

func (q *quidStack) close() {
	q.db.Close()
	q.chainEnv.close()
}

// processes says what a chain scenario's CPU and RSS columns cover: what runs in the bench
// process, and where the devnet is.
func processes(c *chainEnv, bench string) string {
	if c.pid != 0 {
		return "the bench process (" + bench + "); the devnet's own process (go-ethereum's EVM, block sealing, its JSON-RPC server) in the chain columns"
	}
	return "the bench process (" + bench + ", and the devnet running in it)"
}

const quidParts = "load generator, quid's paywall and in-process facilitator with its JSON-RPC client, SQLite"

func runFacilitatorVerify(ctx context.Context, b *runner, r *Result) error {
	q, err := b.quidStack(ctx, r.ID, false)
	if err != nil {
		return err
	}
	defer q.close()
	r.Processes = processes(q.chainEnv, "load generator signing each payment, quid's facilitator with its JSON-RPC client, SQLite")
	r.Note = "Nothing settles these payments, so their reservations pile up for the window, as they would for a seller that verified and never settled."
	_, err = q.facilitatorLoad(ctx, b, r, "facilitator.Verify", func(ctx context.Context, p *x402.PaymentPayload, req x402.PaymentRequirements) error {
		v, err := q.fac.Verify(ctx, p, req)
		if err != nil {
			return err
		}
		if !v.IsValid {
			return fmt.Errorf("invalid: %s %s", v.InvalidReason, v.InvalidMessage)
		}
		return nil
	})
	return err
}

// facilitatorLoad runs call, timed as phase, on a freshly signed payment per operation, then
// reports the phases and the chain.
func (q *quidStack) facilitatorLoad(ctx context.Context, b *runner, r *Result, phase string, call func(context.Context, *x402.PaymentPayload, x402.PaymentRequirements) error) (*sample, error) {
	req, domain := q.requirements(), q.token.Domain()
	resource := &x402.ResourceInfo{URL: "http://127.0.0.1/weather"}
	s, err := b.load(ctx, r, loadConfig{started: q.rec.window, chainPID: q.pid}, one(func(ctx context.Context, w int) error {
		p, err := payment(q.payers[w%len(q.payers)], domain, req, resource, nil)
		if err != nil {
			return err
		}
		defer q.rec.since(phase, time.Now())
		return call(ctx, p, req)
	}))
	if err != nil {
		return nil, err
	}
	r.Phases = q.rec.phases(s.units)
	q.chainDetail(ctx, r, b.cfg.ChainLead)
	return s, nil
}

// ---------------------------------------------------------------- HTTP

// server serves a handler on an ephemeral loopback port.
type server struct {
	url string
	srv *http.Server
}

func serve(h http.Handler) (*server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return &server{url: "http://" + ln.Addr().String(), srv: srv}, nil
}

func (s *server) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if s.srv.Shutdown(ctx) != nil {
		s.srv.Close()
	}
}

// newClient is the load generator's HTTP client: keep-alive connections, one per worker.
func newClient(workers int) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			MaxIdleConns: 2 * workers, MaxIdleConnsPerHost: 2 * workers, IdleConnTimeout: time.Minute,
			DisableCompression: true,
		},
		Timeout: 2 * time.Minute,
	}
}

// get sends req and reads the whole body; a status other than 200 is an error naming the
// x402 reason when there is one.
func get(client *http.Client, req *http.Request) (*http.Response, error) {
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		reason := ""
		if pr, err := x402.DecodePaymentRequired(resp.Header.Get(x402.HeaderPaymentRequired)); err == nil {
			reason = pr.Error
		}
		if s, err := x402.DecodeSettleResponse(resp.Header.Get(x402.HeaderPaymentResponse)); err == nil && s.ErrorReason != "" {
			reason = string(s.ErrorReason) + " " + s.ErrorMessage
		}
		return nil, fmt.Errorf("HTTP %d %s: %s", resp.StatusCode, reason, truncate(string(body), 200))
	}
	return resp, nil
}

func runUnpaid(ctx context.Context, b *runner, r *Result) error {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /weather", weather)
	srv, err := serve(mux)
	if err != nil {
		return err
	}
	defer srv.close()
	client := newClient(b.cfg.Concurrency)
	defer client.CloseIdleConnections()
	r.Processes = "the bench process (load generator and the HTTP server)"
	_, err = b.load(ctx, r, loadConfig{}, one(func(ctx context.Context, _ int) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.url+"/weather", nil)
		if err != nil {
			return err
		}
		_, err = get(client, req)
		return err
	}))
	return err
}

// paidClient pays a route by signing a fresh authorization per request for the terms of the
// route's 402, fetched once, as a wallet that already knows the price does.
type paidClient struct {
	client   *http.Client
	url      string
	payers   []devnet.Account
	domain   evm.Domain
	req      x402.PaymentRequirements
	resource *x402.ResourceInfo
	ext      x402.Object
	// onCredit: the route serves before settling (SettleDeferred), so a 200 carries no
	// PAYMENT-RESPONSE.
	onCredit bool
}

func newPaidClient(ctx context.Context, c *chainEnv, workers int, url string) (*paidClient, error) {
	p := &paidClient{client: newClient(workers), url: url, payers: c.payers, domain: c.token.Domain()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPaymentRequired {
		return nil, fmt.Errorf("unpaid GET %s: %s, want 402", url, resp.Status)
	}
	pr, err := x402.DecodePaymentRequired(resp.Header.Get(x402.HeaderPaymentRequired))
	if err != nil {
		return nil, fmt.Errorf("the 402 of %s: %w", url, err)
	}
	for _, a := range pr.Accepts {
		if a.Scheme == x402.SchemeExact && a.Network == x402.EIP155(c.chainID) && common.HexToAddress(a.Asset) == c.token.Address {
			p.req, p.resource, p.ext = a, pr.Resource, pr.Extensions
			return p, nil
		}
	}
	return nil, fmt.Errorf("the 402 of %s offers no exact payment in qUSD on the devnet", url)
}

func (p *paidClient) op(ctx context.Context, w int) error {
	_, err := p.pay(ctx, w)
	return err
}

// pay sends one paid request as worker w and returns the paid response.
func (p *paidClient) pay(ctx context.Context, w int) (*http.Response, error) {
	pay, err := payment(p.payers[w%len(p.payers)], p.domain, p.req, p.resource, p.ext)
	if err != nil {
		return nil, err
	}
	header, err := x402.EncodeHeader(pay)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set(x402.HeaderPaymentSignature, header)
	resp, err := get(p.client, req)
	if err != nil {
		return nil, err
	}
	if !p.onCredit && resp.Header.Get(x402.HeaderPaymentResponse) == "" {
		return nil, errors.New("200 without PAYMENT-RESPONSE")
	}
	return resp, nil
}

func runExact(ctx context.Context, b *runner, r *Result) error {
	return paidRoute(ctx, b, r, paywall.SettleAfter)
}

func runExactDeferred(ctx context.Context, b *runner, r *Result) error {
	return paidRoute(ctx, b, r, paywall.SettleDeferred)
}

// paidRoute measures GET /weather behind quid's paywall settling in mode, with the facilitator
// in-process and its SQLite store also holding the paywall's claims.
func paidRoute(ctx context.Context, b *runner, r *Result, mode paywall.SettleMode) error {
	deferred := mode == paywall.SettleDeferred
	q, err := b.quidStack(ctx, r.ID, deferred)
	if err != nil {
		return err
	}
	defer q.close()
	var fac paywall.Facilitator = timedFacilitator{f: q.fac, rec: q.rec}
	if deferred {
		fac = timedDeferrer{timedFacilitator: timedFacilitator{f: q.fac, rec: q.rec}, d: q.fac}
	}
	srv, err := q.weatherServer(paywall.Config{Facilitator: fac}, paywall.Route{Settle: mode})
	if err != nil {
		return err
	}
	defer srv.close()
	var batcher sync.WaitGroup
	batchCtx, stopBatcher := context.WithCancel(ctx)
	defer func() { stopBatcher(); batcher.Wait() }()
	if deferred {
		batcher.Go(func() { q.fac.RunBatcher(batchCtx, facilitator.DefaultBatchInterval) })
	}
	pc, err := newPaidClient(ctx, q.chainEnv, b.cfg.Concurrency, srv.url+"/weather")
	if err != nil {
		return err
	}
	pc.onCredit = deferred
	defer pc.client.CloseIdleConnections()
	before, err := q.balance(ctx, q.seller.Address)
	if err != nil {
		return err
	}
	r.Processes = processes(q.chainEnv, quidParts)
	r.Note = "Latency includes the client signing its payment."
	if deferred {
		r.Note += fmt.Sprintf(" The batcher (facilitator.RunBatcher, every %s, up to %d payments per QuidBatchSettler transaction) runs in the same process meanwhile: its calls are among the phases and its CPU in the bench process's. Credit per payer (MaxDeferred): %s.",
			facilitator.DefaultBatchInterval, facilitator.DefaultBatchSize, q.token.Format(evm.NewAmount(deferCap)))
	}
	var loadStart time.Time
	started := func(from, to time.Time) {
		if loadStart.IsZero() {
			loadStart = from.Add(-b.cfg.Warmup)
		}
		q.rec.window(from, to)
	}
	s, err := b.load(ctx, r, loadConfig{started: started, chainPID: q.pid}, one(pc.op))
	if err != nil {
		return err
	}
	r.Phases = q.rec.phases(s.units)
	if deferred {
		// Served on credit: wait for the batcher to settle everything served.
		for _, ph := range r.Phases {
			if ph.Name == "SQLite Settled" && s.units > 0 {
				r.detail("batcher", "confirmed %s payments during the window, %.0f%% as many as were served in it", group(fmt.Sprint(ph.N)), 100*float64(ph.N)/float64(s.units))
			}
		}
		began := time.Now()
		want := new(big.Int).Mul(big.NewInt(benchPriceAtomic), big.NewInt(s.succeeded))
		for time.Since(began) < 2*time.Minute {
			after, err := q.balance(ctx, q.seller.Address)
			if err != nil {
				return err
			}
			if got, _ := after.Sub(before); got.Big().Cmp(want) >= 0 {
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
		r.detail("settlement", "every payment served on credit was settled %s after the load stopped: %s payments served and settled in %s from the start of the warmup, %s a second end to end",
			time.Since(began).Round(10*time.Millisecond), group(fmt.Sprint(s.succeeded)), time.Since(loadStart).Round(10*time.Millisecond),
			num(float64(s.succeeded)/time.Since(loadStart).Seconds()))
	}
	q.chainDetail(ctx, r, b.cfg.ChainLead)
	return q.checkPaid(ctx, r, before, s.succeeded)
}

// weatherServer serves GET /weather behind quid's paywall at the bench price in qUSD, paid to
// the seller, with cfg's and route's other fields as given; the claims live in the stack's
// SQLite store.
func (q *quidStack) weatherServer(cfg paywall.Config, route paywall.Route) (*server, error) {
	cfg.ChainID, cfg.PayTo, cfg.Assets, cfg.Claims, cfg.MaxTimeout = q.chainID, q.seller.Address, evm.NewRegistry(q.token), q.st, q.maxTime
	pw, err := paywall.New(cfg)
	if err != nil {
		return nil, err
	}
	route.Price = fmt.Sprintf("%d %s", benchPriceAtomic, q.token.Address.Hex())
	route.Description, route.MimeType = "Current weather", "application/json"
	charge, err := pw.Charge(route)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /weather", charge(http.HandlerFunc(weather)))
	return serve(mux)
}

// runCapability measures requests that present a capability token bought by one payment per
// worker: the paywall verifies the macaroon and counts a use in the same SQLite store that holds
// the facilitator's and the paywall's records, and the handler runs without a 402.
func runCapability(ctx context.Context, b *runner, r *Result) error {
	q, err := b.quidStack(ctx, r.ID, false)
	if err != nil {
		return err
	}
	defer q.close()
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return err
	}
	srv, err := q.weatherServer(
		paywall.Config{Facilitator: timedFacilitator{f: q.fac, rec: q.rec}, Secret: secret, Uses: q.db, Records: q.db},
		paywall.Route{Method: http.MethodGet, Path: "/weather", Capability: &paywall.CapabilityPolicy{TTL: time.Hour}})
	if err != nil {
		return err
	}
	defer srv.close()
	pc, err := newPaidClient(ctx, q.chainEnv, b.cfg.Concurrency, srv.url+"/weather")
	if err != nil {
		return err
	}
	defer pc.client.CloseIdleConnections()
	before, err := q.balance(ctx, q.seller.Address)
	if err != nil {
		return err
	}
	tokens := make([]string, b.cfg.Concurrency)
	for w := range tokens {
		resp, err := pc.pay(ctx, w)
		if err != nil {
			return fmt.Errorf("buying worker %d's token: %w", w, err)
		}
		if tokens[w] = resp.Header.Get(paywall.HeaderCapability); tokens[w] == "" {
			return errors.New("a settled payment carried no capability token")
		}
	}
	r.Processes = processes(q.chainEnv, "load generator, quid's paywall verifying macaroons and counting uses in SQLite")
	r.Note = fmt.Sprintf("Each of the %d workers paid once for a one-hour token before the window; every measured request presents it and none pays.", len(tokens))
	_, err = b.load(ctx, r, loadConfig{chainPID: q.pid}, one(func(ctx context.Context, w int) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.url+"/weather", nil)
		if err != nil {
			return err
		}
		req.Header.Set(paywall.HeaderCapability, tokens[w])
		_, err = get(pc.client, req)
		return err
	}))
	if err != nil {
		return err
	}
	return q.checkPaid(ctx, r, before, int64(len(tokens)))
}

// ---------------------------------------------------------------- 6: not measurable here

// goSDKError is what the Go module proxy answers for the official Go SDK (see interop/README.md).
const goSDKError = "go: github.com/x402-foundation/x402/go/v2@v2.27.0: reading https://proxy.golang.org/github.com/x402-foundation/x402/go/v2/@v/v2.27.0.info: 403 Forbidden\n\tserver response: This module version is not available."

func runGoSDK(_ context.Context, b *runner, r *Result) error {
	b.skip(r, "The official Go SDK cannot be had: `go get github.com/x402-foundation/x402/go/v2@v2.27.0` fails with\n      "+goSDKError)
	return nil
}

// ---------------------------------------------------------------- 5: the TypeScript peer

func runTSPeer(ctx context.Context, b *runner, r *Result) error {
	interop := b.cfg.Interop
	if interop == "" {
		var err error
		if interop, err = FindInterop("."); err != nil {
			b.skip(r, err.Error())
			return nil
		}
	}
	node, versions, err := checkPeers(interop)
	if errors.Is(err, ErrPeersMissing) && (b.cfg.InstallPeers || (b.cfg.AskInstall != nil && b.prog.ask(b.cfg.AskInstall))) {
		b.prog.note("quid bench: installing the TypeScript peer: npm ci --prefix " + interop)
		if ierr := installPeers(interop, b.cfg.Progress); ierr != nil {
			return ierr
		}
		node, versions, err = checkPeers(interop)
	}
	if err != nil {
		note := err.Error()
		if errors.Is(err, ErrPeersMissing) {
			note += ". Install the pinned packages with `npm ci --prefix interop` (or run `quid bench --install-peers`), then run the bench again."
		}
		b.skip(r, note)
		return nil
	}
	b.report.Meta.Node, b.report.Meta.Peers = nodeVersion(node), versions

	c, err := b.startChain(ctx)
	if err != nil {
		return err
	}
	defer c.close()
	rpcURL := c.rpcURL
	peer, err := startPeer(node, filepath.Join(interop, "scripts", "bench-peer.mjs"), map[string]string{
		"RPC_URL":             rpcURL,
		"CHAIN_ID":            strconv.FormatUint(c.chainID, 10),
		"PRIVATE_KEY":         fmt.Sprintf("0x%x", crypto.FromECDSA(c.acc[tsRelayer].Key)),
		"PAY_TO":              c.seller.Address.Hex(),
		"ASSET":               c.token.Address.Hex(),
		"ASSET_NAME":          c.token.Name,
		"ASSET_VERSION":       c.token.Version,
		"PRICE":               strconv.Itoa(benchPriceAtomic),
		"MAX_TIMEOUT_SECONDS": strconv.FormatInt(int64(c.maxTime/time.Second), 10),
	})
	if err != nil {
		return err
	}
	defer peer.stop()
	pc, err := newPaidClient(ctx, c, b.cfg.Concurrency, peer.URL+"/weather")
	if err != nil {
		return err
	}
	defer pc.client.CloseIdleConnections()
	before, err := c.balance(ctx, c.seller.Address)
	if err != nil {
		return err
	}
	r.Processes = "the node process (express, @x402/express, the TypeScript facilitator, viem) plus " + processes(c, "load generator")
	r.Note = "Latency includes the client signing its payment. Peak RSS is the bench process + node."
	s, err := b.load(ctx, r, loadConfig{chainPID: c.pid, nodePID: peer.pid()}, one(pc.op))
	if err != nil {
		return err
	}
	r.PeakRSSNode = childPeakRSS(peer.pid())
	if tail := peer.stderr.String(); r.Errors > 0 && tail != "" {
		r.detail("node stderr", "%s", truncate(tail, 400))
	}
	r.detail("CPU split", "node %s µs/op, bench process %s µs/op", cpuNum(r.CPUNode*1e6/float64(max(r.Ops, 1))), cpuNum(r.CPUSelf*1e6/float64(max(r.Ops, 1))))
	c.chainDetail(ctx, r, b.cfg.ChainLead)
	if err := c.checkPaid(ctx, r, before, s.succeeded); err != nil {
		return fmt.Errorf("%w; node stderr: %s", err, truncate(peer.stderr.String(), 300))
	}
	return nil
}

// ---------------------------------------------------------------- 7: settlement

func runSettleFacilitator(ctx context.Context, b *runner, r *Result) error {
	q, err := b.quidStack(ctx, r.ID, false)
	if err != nil {
		return err
	}
	defer q.close()
	before, err := q.balance(ctx, q.seller.Address)
	if err != nil {
		return err
	}
	r.Processes = processes(q.chainEnv, "load generator signing the payments, quid's facilitator with its JSON-RPC client, SQLite")
	r.Note = "One relayer key (the default); its sends are serialized, transactions sent meanwhile share blocks."
	s, err := q.facilitatorLoad(ctx, b, r, "facilitator.Settle", func(ctx context.Context, p *x402.PaymentPayload, req x402.PaymentRequirements) error {
		res, err := q.fac.Settle(ctx, p, req)
		if err != nil {
			return err
		}
		if !res.Success {
			return fmt.Errorf("settlement failed: %s %s", res.ErrorReason, res.ErrorMessage)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return q.checkPaid(ctx, r, before, s.succeeded)
}

// batchSize is the number of authorizations per QuidBatchSettler transaction, the facilitator's
// default, and batchItemGas the gas each item's token call may use (QuidToken's needs about
// 40,000).
const (
	batchSize    = facilitator.DefaultBatchSize
	batchItemGas = facilitator.DefaultPerItemGas
)

func runSettleRaw(ctx context.Context, b *runner, r *Result) error {
	return chainSettle(ctx, b, r, 1)
}

func runSettleBatch(ctx context.Context, b *runner, r *Result) error {
	return chainSettle(ctx, b, r, batchSize)
}

// chainSettle settles authorizations straight on the devnet, n per transaction: each worker
// relays from its own account, signs n fresh authorizations, sends them, waits for the receipt
// and checks that every one paid.
func chainSettle(ctx context.Context, b *runner, r *Result, n int) error {
	c, err := b.startChain(ctx)
	if err != nil {
		return err
	}
	defer c.close()
	workers := min(b.cfg.Concurrency, len(c.acc)-firstPayer)
	if workers < b.cfg.Concurrency {
		r.detail("workers", "%d, one per relayer account the devnet has (concurrency %d asked)", workers, b.cfg.Concurrency)
	}
	var settler common.Address
	if n > 1 {
		// The devnet deploys QuidBatchSettler at a fixed address.
		settler = devnet.BatchSettlerAddress
		if code, err := c.client.CodeAt(ctx, settler, nil); err != nil || len(code) == 0 {
			return fmt.Errorf("no QuidBatchSettler at %s on the devnet (%v)", settler, err)
		}
	}
	senders := make([]*sender, workers)
	for i := range senders {
		senders[i] = c.sender(c.acc[firstPayer+i])
	}
	req, domain := c.requirements(), c.token.Domain()
	before, err := c.balance(ctx, c.seller.Address)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	var gas, txs uint64
	r.Processes = processes(c, "load generator signing the authorizations and the transactions")
	if n > 1 {
		r.Note = fmt.Sprintf("Latency is per transaction of %d.", n)
	}
	s, err := b.load(ctx, r, loadConfig{workers: workers, chainPID: c.pid}, func(ctx context.Context, w int) (int, error) {
		items := make([]evm.BatchItem, n)
		for i := range items {
			payer := c.payers[(w+i)%len(c.payers)]
			auth, sig, err := authorize(payer, domain, req)
			if err != nil {
				return 0, err
			}
			items[i] = evm.BatchItem{Auth: auth, Sig: sig}
		}
		var rc *types.Receipt
		var err error
		if n == 1 {
			rc, err = senders[w].send(ctx, &c.token.Address, evm.TransferWithAuthorizationCalldata(&items[0].Auth, items[0].Sig), 150_000)
		} else {
			rc, err = senders[w].send(ctx, &settler, evm.BatchSettleCalldata(c.token.Address, batchItemGas, items), evm.BatchGasLimit(batchItemGas, n))
		}
		if err != nil {
			return 0, err
		}
		if rc.Status != types.ReceiptStatusSuccessful {
			return 0, fmt.Errorf("transaction %s reverted", rc.TxHash)
		}
		if paid := countPaid(rc, settler, c.token.Address, items); paid != n {
			return 0, fmt.Errorf("transaction %s paid %d of %d authorizations", rc.TxHash, paid, n)
		}
		mu.Lock()
		gas += rc.GasUsed
		txs++
		mu.Unlock()
		return n, nil
	})
	if err != nil {
		return err
	}
	if txs > 0 {
		r.detail("gas", "%s per authorization (%s transactions over the run)", group(fmt.Sprint(gas/(txs*uint64(n)))), group(fmt.Sprint(txs)))
	}
	c.chainDetail(ctx, r, b.cfg.ChainLead)
	return c.checkPaid(ctx, r, before, s.succeeded)
}

// countPaid counts the items the receipt proves paid: for a lone transferWithAuthorization its
// Transfer log, for a batch the settler's Settled event and the token's Transfer log.
func countPaid(rc *types.Receipt, settler, token common.Address, items []evm.BatchItem) int {
	if settler == (common.Address{}) {
		a := &items[0].Auth
		for _, l := range rc.Logs {
			if l.Address == token && len(l.Topics) == 3 && l.Topics[0] == evm.TransferTopic &&
				common.BytesToAddress(l.Topics[1][:]) == a.From && common.BytesToAddress(l.Topics[2][:]) == a.To {
				return 1
			}
		}
		return 0
	}
	outcomes, err := evm.DecodeBatchResults(rc, settler, token, items)
	if err != nil {
		return 0
	}
	paid := 0
	for _, o := range outcomes {
		if o.Paid() {
			paid++
		}
	}
	return paid
}
