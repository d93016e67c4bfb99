package bench

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os/exec"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/quidpay/quid/devnet"
	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/x402"
)

// Roles of the devnet accounts in the bench, as in cmd/quid and interop: 1 sells, 3 is quid's
// relayer, 4 the TypeScript facilitator's. Every account from 2 on also pays: EIP-3009
// authorizations do not touch account nonces, so paying and relaying do not interfere.
const (
	sellerAccount    = 1
	quidRelayer      = 3
	tsRelayer        = 4
	firstPayer       = 2
	benchPriceAtomic = 1000 // 0.001 qUSD per request
)

// chainEnv is a fresh devnet for one scenario: in a process of its own when the bench was
// given a way to start one (Config.ChainProcess), otherwise in this process.
type chainEnv struct {
	client    *ethclient.Client
	rpcURL    string // the devnet's JSON-RPC on loopback, for other processes
	chainID   uint64
	pid       int // the devnet's process; 0 when in-process
	token     evm.Asset
	acc       []devnet.Account
	seller    devnet.Account
	payers    []devnet.Account
	maxTime   time.Duration // maxTimeoutSeconds of the scenario's routes and authorizations
	startHead uint64
	stop      func()
}

func (b *runner) startChain(ctx context.Context) (*chainEnv, error) {
	var c *chainEnv
	var err error
	if b.cfg.ChainProcess != nil {
		c, err = startChainProcess(b.cfg.ChainProcess(b.cfg.ChainLead))
	} else {
		c, err = startChainInProcess(b.cfg.ChainLead)
	}
	if err != nil {
		return nil, fmt.Errorf("starting the devnet: %w", err)
	}
	c.token = evm.DevToken(c.chainID)
	c.seller, c.payers, c.maxTime = c.acc[sellerAccount], c.acc[firstPayer:], b.cfg.maxTimeout()
	head, err := c.client.HeaderByNumber(ctx, nil)
	if err != nil {
		c.close()
		return nil, err
	}
	c.startHead = head.Number.Uint64()
	return c, nil
}

func startChainInProcess(lead time.Duration) (*chainEnv, error) {
	d, err := devnet.Start(devnet.Config{Accounts: devnet.MaxAccounts, MaxTimestampLead: lead})
	if err != nil {
		return nil, err
	}
	url, err := d.Serve("127.0.0.1:0")
	if err != nil {
		d.Close()
		return nil, err
	}
	return &chainEnv{client: d.Client(), rpcURL: url, chainID: d.ChainID(), acc: d.Accounts(), stop: func() { d.Close() }}, nil
}

// chainHello is the line a chain process prints once it serves: the devnet's JSON-RPC URL, chain
// id and the (public, well-known) keys of its funded accounts.
type chainHello struct {
	RPC     string   `json:"rpc"`
	ChainID uint64   `json:"chainId"`
	Keys    []string `json:"keys"`
}

// ServeChain is the chain process of the bench: it starts a devnet with every test account
// funded and block time allowed to lead the clock by lead, serves its JSON-RPC on loopback,
// prints a chainHello line to stdout, and runs until stdin closes or ctx ends.
func ServeChain(ctx context.Context, lead time.Duration, stdin io.Reader, stdout io.Writer) error {
	d, err := devnet.Start(devnet.Config{Accounts: devnet.MaxAccounts, MaxTimestampLead: lead})
	if err != nil {
		return err
	}
	defer d.Close()
	url, err := d.Serve("127.0.0.1:0")
	if err != nil {
		return err
	}
	hello := chainHello{RPC: url, ChainID: d.ChainID()}
	for _, a := range d.Accounts() {
		hello.Keys = append(hello.Keys, fmt.Sprintf("%x", crypto.FromECDSA(a.Key)))
	}
	line, err := json.Marshal(hello)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(stdout, "%s\n", line); err != nil {
		return err
	}
	eof := make(chan struct{})
	go func() { io.Copy(io.Discard, stdin); close(eof) }()
	select {
	case <-eof:
	case <-ctx.Done():
	}
	return nil
}

// startChainProcess starts cmd, a chain process (ServeChain), and connects to it.
func startChainProcess(cmd *exec.Cmd, err error) (*chainEnv, error) {
	if err != nil {
		return nil, err
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr := &tailBuffer{max: 8 << 10}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan struct{})
	hello := make(chan chainHello, 1)
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		if sc.Scan() {
			var h chainHello
			if json.Unmarshal(sc.Bytes(), &h) == nil {
				hello <- h
			}
		}
		io.Copy(io.Discard, stdout)
		cmd.Wait()
	}()
	stop := func() {
		stdin.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}
	var h chainHello
	select {
	case h = <-hello:
	case <-done:
		return nil, fmt.Errorf("the chain process exited: %s", stderr.String())
	case <-time.After(60 * time.Second):
		stop()
		return nil, fmt.Errorf("the chain process did not start within 60s: %s", stderr.String())
	}
	c := &chainEnv{rpcURL: h.RPC, chainID: h.ChainID, pid: cmd.Process.Pid, stop: stop}
	for _, k := range h.Keys {
		key, err := crypto.HexToECDSA(k)
		if err != nil {
			stop()
			return nil, fmt.Errorf("the chain process: %w", err)
		}
		c.acc = append(c.acc, devnet.Account{Key: key, Address: crypto.PubkeyToAddress(key.PublicKey)})
	}
	if len(c.acc) < devnet.MaxAccounts {
		stop()
		return nil, fmt.Errorf("the chain process funded %d accounts, want %d", len(c.acc), devnet.MaxAccounts)
	}
	if c.client, err = ethclient.Dial(h.RPC); err != nil {
		stop()
		return nil, err
	}
	return c, nil
}

// close stops the devnet.
func (c *chainEnv) close() {
	if c.client != nil && c.pid != 0 {
		c.client.Close()
	}
	c.stop()
}

// peakRSS returns the chain process's peak resident set, or 0 when the chain is in-process.
func (c *chainEnv) peakRSS() int64 {
	if c.pid == 0 {
		return 0
	}
	return childPeakRSS(c.pid)
}

// requirements are the exact requirements of the bench's paid route, as quid's paywall builds
// them.
func (c *chainEnv) requirements() x402.PaymentRequirements {
	extra := x402.Object{}
	extra.SetString("name", c.token.Name)
	extra.SetString("version", c.token.Version)
	return x402.PaymentRequirements{
		Scheme: x402.SchemeExact, Network: x402.EIP155(c.chainID), Amount: evm.NewAmount(benchPriceAtomic).String(),
		Asset: c.token.Address.Hex(), PayTo: c.seller.Address.Hex(), MaxTimeoutSeconds: int64(c.maxTime / time.Second), Extra: extra,
	}
}

// authorize signs a fresh authorization from payer for req, valid for req.MaxTimeoutSeconds
// from now, as a buyer's wallet does.
func authorize(payer devnet.Account, domain evm.Domain, req x402.PaymentRequirements) (evm.Authorization, evm.Signature, error) {
	nonce, err := evm.NewNonce()
	if err != nil {
		return evm.Authorization{}, evm.Signature{}, err
	}
	value, err := evm.ParseAmount(req.Amount)
	if err != nil {
		return evm.Authorization{}, evm.Signature{}, err
	}
	auth := evm.Authorization{
		From: payer.Address, To: common.HexToAddress(req.PayTo), Value: value,
		ValidBefore: uint64(time.Now().Add(time.Duration(req.MaxTimeoutSeconds) * time.Second).Unix()),
		Nonce:       nonce,
	}
	sig, err := evm.SignAuthorization(payer.Key, domain, &auth)
	return auth, sig, err
}

// payment signs a fresh payment from payer for req and wraps it as an x402 v2 payload.
func payment(payer devnet.Account, domain evm.Domain, req x402.PaymentRequirements, resource *x402.ResourceInfo, extensions x402.Object) (*x402.PaymentPayload, error) {
	auth, sig, err := authorize(payer, domain, req)
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(x402.ExactEVMPayload{Authorization: auth.Wire(), Signature: sig.String()})
	if err != nil {
		return nil, err
	}
	accepted := req
	return &x402.PaymentPayload{X402Version: x402.V2, Payload: raw, Resource: resource, Accepted: &accepted, Extensions: extensions}, nil
}

// balance returns owner's token balance.
func (c *chainEnv) balance(ctx context.Context, owner common.Address) (evm.Amount, error) {
	ret, err := c.client.CallContract(ctx, ethereum.CallMsg{To: &c.token.Address, Data: evm.BalanceOfCalldata(owner)}, nil)
	if err != nil {
		return evm.Amount{}, err
	}
	return evm.DecodeUint256(ret)
}

// checkPaid compares what the seller received since before with price × served.
func (c *chainEnv) checkPaid(ctx context.Context, r *Result, before evm.Amount, served int64) error {
	after, err := c.balance(ctx, c.seller.Address)
	if err != nil {
		return err
	}
	got, _ := after.Sub(before)
	want := new(big.Int).Mul(big.NewInt(benchPriceAtomic), big.NewInt(served))
	if got.Big().Cmp(want) != 0 {
		return fmt.Errorf("on-chain check failed: %d requests were served as paid (warmup and stragglers included), so the seller should have received %s qUSD, but received %s",
			served, c.token.Format(evm.NewAmount(want.Uint64())), c.token.Format(got))
	}
	r.detail("on-chain check", "%s responses served as paid over the whole run; the seller received exactly %s", group(fmt.Sprint(served)), c.token.Format(got))
	return nil
}

// chainDetail reports how many blocks the scenario mined and how far block time ran ahead of
// the clock.
func (c *chainEnv) chainDetail(ctx context.Context, r *Result, lead time.Duration) {
	head, err := c.client.HeaderByNumber(ctx, nil)
	if err != nil {
		return
	}
	ahead := time.Until(time.Unix(int64(head.Time), 0)).Round(time.Second)
	bound := "no bound"
	if lead >= 0 {
		bound = "bound " + lead.String()
	}
	r.PeakRSSChain = c.peakRSS()
	r.detail("devnet", "%d blocks mined in the scenario; head block time %s ahead of the clock (%s); block gas limit %s",
		head.Number.Uint64()-c.startHead, max(ahead, 0), bound, group(fmt.Sprint(head.GasLimit)))
	if lead >= 0 && ahead >= lead-time.Second {
		r.detail("WARNING", "block time reached the lead bound: from then on the devnet sealed at most one block a second, and settlement waited for it")
	}
}

// sender sends transactions from one account with its own nonce sequence, and waits for their
// receipts. One goroutine uses it.
type sender struct {
	c      *chainEnv
	key    *ecdsa.PrivateKey
	addr   common.Address
	signer types.Signer
	nonce  uint64
	seeded bool
}

func (c *chainEnv) sender(a devnet.Account) *sender {
	return &sender{c: c, key: a.Key, addr: a.Address, signer: types.LatestSignerForChainID(new(big.Int).SetUint64(c.chainID))}
}

var tip = big.NewInt(1_000_000_000)

// send signs and sends a call (a contract creation when to is nil) and returns its receipt.
func (s *sender) send(ctx context.Context, to *common.Address, data []byte, gas uint64) (*types.Receipt, error) {
	cl := s.c.client
	if !s.seeded {
		n, err := cl.PendingNonceAt(ctx, s.addr)
		if err != nil {
			return nil, err
		}
		s.nonce, s.seeded = n, true
	}
	head, err := cl.HeaderByNumber(ctx, nil)
	if err != nil {
		return nil, err
	}
	tx, err := types.SignNewTx(s.key, s.signer, &types.DynamicFeeTx{
		Nonce: s.nonce, GasTipCap: tip, GasFeeCap: new(big.Int).Add(tip, new(big.Int).Mul(head.BaseFee, big.NewInt(2))),
		Gas: gas, To: to, Data: data,
	})
	if err != nil {
		return nil, err
	}
	if err := cl.SendTransaction(ctx, tx); err != nil {
		s.seeded = false
		return nil, err
	}
	s.nonce++
	return s.c.receipt(ctx, tx.Hash())
}

// receipt polls for a receipt; the devnet mines what it is sent within milliseconds.
func (c *chainEnv) receipt(ctx context.Context, h common.Hash) (*types.Receipt, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for delay := time.Millisecond; ; delay = min(2*delay, 20*time.Millisecond) {
		r, err := c.client.TransactionReceipt(ctx, h)
		if err == nil {
			return r, nil
		}
		if !errors.Is(err, ethereum.NotFound) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("transaction %s not mined: %w", h, ctx.Err())
		case <-time.After(delay):
		}
	}
}
