package devnet

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"reflect"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/eth/ethconfig"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/ethclient/simulated"
	"github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/quidpay/quid/evm/contracts/batch"
	"github.com/quidpay/quid/evm/contracts/token"
)

// DefaultChainID is Hardhat's and anvil's chain id, which wallets and tools expect of a local chain.
const DefaultChainID = 31337

// DefaultMaxTimestampLead is how far block timestamps may run ahead of the wall clock by default.
// x402 facilitators require an authorization to stay valid for several more seconds, so a chain
// within 2 s of real time never rejects what a facilitator accepted.
const DefaultMaxTimestampLead = 2 * time.Second

// BatchSettlerAddress is where Start deploys QuidBatchSettler, the contract that settles many
// EIP-3009 authorizations in one transaction: account 0's second contract.
var BatchSettlerAddress = common.HexToAddress("0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512")

// TokenAddress is where Start deploys QuidToken on every devnet, whatever the chain id: the
// CREATE address of account 0 at nonce 0, the first contract address on Hardhat and anvil too.
var TokenAddress = common.HexToAddress("0x5FbDB2315678afecb367f032d93F642f64180aa3")

// Config configures a devnet. The zero value is a valid configuration.
type Config struct {
	ChainID         uint64   // default DefaultChainID (31337)
	Accounts        int      // funded test accounts, default 10, at most MaxAccounts (20)
	ETHPerAccount   *big.Int // wei for each account, default 10,000 ETH
	TokenPerAccount *big.Int // qUSD atomic units minted to each account, default 1,000,000 qUSD

	// MaxTimestampLead bounds how far a block's timestamp may run ahead of the wall clock.
	// Timestamps must increase by at least a second per block, so when transactions arrive
	// faster than one block a second the miner holds the next block back (up to a second,
	// batching whatever arrives meanwhile) rather than drift into the future. Default
	// DefaultMaxTimestampLead; negative means no bound, for tests that send many transactions
	// one after another and do not care about block time.
	MaxTimestampLead time.Duration
}

func (c Config) withDefaults() (Config, error) {
	if c.ChainID == 0 {
		c.ChainID = DefaultChainID
	}
	switch {
	case c.Accounts == 0:
		c.Accounts = 10
	case c.Accounts < 0 || c.Accounts > MaxAccounts:
		return c, fmt.Errorf("devnet: Accounts = %d, want 1 to %d", c.Accounts, MaxAccounts)
	}
	ether := new(big.Int).Exp(big.NewInt(10), big.NewInt(18), nil)
	if c.ETHPerAccount == nil {
		c.ETHPerAccount = new(big.Int).Mul(big.NewInt(10_000), ether)
	}
	if c.TokenPerAccount == nil {
		c.TokenPerAccount = big.NewInt(1_000_000 * 1_000_000)
	}
	if c.ETHPerAccount.Sign() < 0 || c.TokenPerAccount.Sign() < 0 {
		return c, errors.New("devnet: ETHPerAccount and TokenPerAccount must not be negative")
	}
	if c.MaxTimestampLead == 0 {
		c.MaxTimestampLead = DefaultMaxTimestampLead
	}
	return c, nil
}

// Devnet is a running local chain. It is safe for concurrent use.
type Devnet struct {
	chainID  uint64
	accounts []Account
	sim      *simulated.Backend
	miner    *miner
	handler  *handler
	rpc      *rpc.Client
	client   *ethclient.Client

	mu      sync.Mutex
	closed  bool
	servers []*http.Server
	serving sync.WaitGroup
}

// Start starts a chain, funds the accounts, deploys QuidToken at TokenAddress from account 0 and
// mints TokenPerAccount to every account (normally all in block 1). Close it when done.
func Start(cfg Config) (d *Devnet, err error) {
	cfg, err = cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	all, err := parsedAccounts()
	if err != nil {
		return nil, err
	}
	accounts := append([]Account(nil), all[:cfg.Accounts]...)

	alloc := make(types.GenesisAlloc, len(accounts))
	for _, a := range accounts {
		alloc[a.Address] = types.Account{Balance: new(big.Int).Set(cfg.ETHPerAccount)}
	}
	sim, err := newBackend(alloc, cfg.ChainID)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = sim.Close()
		}
	}()

	nodeRPC, err := inProcRPC(sim)
	if err != nil {
		return nil, err
	}
	nodeClient := ethclient.NewClient(nodeRPC)

	head, err := deployToken(sim, nodeClient, cfg, accounts)
	if err != nil {
		return nil, err
	}

	d = &Devnet{chainID: cfg.ChainID, accounts: accounts, sim: sim}
	d.miner = newMiner(sim, nodeClient, cfg.MaxTimestampLead, head.Hash(), head.Time)
	d.handler = &handler{node: nodeRPC, miner: d.miner}
	// The URL is never dialed: the transport hands each request to the handler in-process.
	d.rpc, err = rpc.DialOptions(context.Background(), "http://devnet.invalid/",
		rpc.WithHTTPClient(&http.Client{Transport: inprocTransport{d.handler}}))
	if err != nil {
		d.miner.stop()
		return nil, fmt.Errorf("devnet: in-process RPC client: %w", err)
	}
	d.client = ethclient.NewClient(d.rpc)
	return d, nil
}

// newBackend starts the simulated backend for chainID. simulated.NewBackend panics instead of
// returning errors; those panics become errors here.
func newBackend(alloc types.GenesisAlloc, chainID uint64) (sim *simulated.Backend, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("devnet: start simulated backend: %v", r)
		}
	}()
	return simulated.NewBackend(alloc, func(nodeConf *node.Config, ethConf *ethconfig.Config) {
		// Nothing listens: no IPC socket, no HTTP, no p2p. Serve is the only way in.
		nodeConf.IPCPath, nodeConf.HTTPHost, nodeConf.WSHost = "", "", ""
		nodeConf.P2P.MaxPeers, nodeConf.P2P.ListenAddr = 0, ""

		chain := *ethConf.Genesis.Config // a copy: the default is a shared global
		chain.ChainID = new(big.Int).SetUint64(chainID)
		// The dev config enables Bogota, a post-Osaka fork that reprices state growth and
		// roughly triples what a transferWithAuthorization costs (~268k instead of ~85k gas).
		// Base and Ethereum mainnet do not run it; gas measured on the devnet should match theirs.
		chain.BogotaTime = nil
		ethConf.Genesis.Config = &chain
		ethConf.NetworkId = chainID
		// The block builder stops adding transactions after Recommit (2 s by default) and
		// seals what it has. A busy machine (a parallel -race test run) could hit that, and a
		// sent transaction would then miss the block sealed for it. Building a dev block
		// never needs a deadline: the miner commits only when there is something to mine.
		ethConf.Miner.Recommit = time.Minute
	}), nil
}

// inProcRPC digs out the simulated node's in-process *rpc.Client, which the HTTP endpoint relays
// to. simulated.Backend keeps its node private, and its Client() is a struct whose single field,
// named Client, is an *ethclient.Client over that RPC client; the field's name shadows
// ethclient's Client() method, so only reflection reaches it. If go-ethereum changes this, Start
// fails here, loudly, rather than serving a chain that never mines.
func inProcRPC(sim *simulated.Backend) (*rpc.Client, error) {
	v := reflect.ValueOf(sim.Client())
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	if v.Kind() == reflect.Struct {
		if f := v.FieldByName("Client"); f.IsValid() && f.CanInterface() {
			if ec, ok := f.Interface().(*ethclient.Client); ok && ec != nil {
				return ec.Client(), nil
			}
		}
	}
	return nil, fmt.Errorf("devnet: cannot reach the simulated node's RPC client through %T", sim.Client())
}

// Gas fees for Start's own transactions: above block 1's base fee (7/8 of the genesis 1 gwei).
var (
	setupTip    = big.NewInt(1_000_000_000)
	setupFeeCap = big.NewInt(3_000_000_000)
)

// deployToken deploys QuidToken from account 0 at nonce 0 and mints to every account, normally
// all in one block so Start costs one commit, and returns the header of the last setup block.
func deployToken(sim *simulated.Backend, node *ethclient.Client, cfg Config, accounts []Account) (*types.Header, error) {
	ctx := context.Background()
	deployer := accounts[0]
	if got := crypto.CreateAddress(deployer.Address, 0); got != TokenAddress {
		return nil, fmt.Errorf("devnet: token would deploy at %s, not %s", got, TokenAddress)
	}
	signer := types.LatestSignerForChainID(new(big.Int).SetUint64(cfg.ChainID))
	bound := token.NewQuidToken()

	if got := crypto.CreateAddress(deployer.Address, 1); got != BatchSettlerAddress {
		return nil, fmt.Errorf("devnet: batch settler would deploy at %s, not %s", got, BatchSettlerAddress)
	}
	txs := []*types.DynamicFeeTx{
		{Gas: 3_000_000, Data: common.FromHex(token.QuidTokenMetaData.Bin)},
		{Gas: 3_000_000, Data: common.FromHex(batch.QuidBatchSettlerMetaData.Bin)},
	}
	if cfg.TokenPerAccount.Sign() > 0 {
		tokenAddr := TokenAddress
		for _, a := range accounts {
			txs = append(txs, &types.DynamicFeeTx{To: &tokenAddr, Gas: 150_000, Data: bound.PackMint(a.Address, cfg.TokenPerAccount)})
		}
	}
	hashes := make([]common.Hash, len(txs))
	for i, inner := range txs {
		inner.ChainID = signer.ChainID()
		inner.Nonce = uint64(i)
		inner.GasTipCap, inner.GasFeeCap = setupTip, setupFeeCap
		tx, err := types.SignNewTx(deployer.Key, signer, inner)
		if err != nil {
			return nil, fmt.Errorf("devnet: sign setup transaction %d: %w", i, err)
		}
		if err := node.SendTransaction(ctx, tx); err != nil {
			return nil, fmt.Errorf("devnet: send setup transaction %d: %w", i, err)
		}
		hashes[i] = tx.Hash()
	}
	// Usually one block takes them all. But go-ethereum's pool can leave the tail of a burst
	// from one sender queued while the block is built (a forced pool reset racing the pending
	// promotions), so keep sealing while blocks make progress.
	var header *types.Header
	unmined := make(map[common.Hash]bool, len(hashes))
	for _, h := range hashes {
		unmined[h] = true
	}
	for len(unmined) > 0 {
		block, err := node.BlockByHash(ctx, sim.Commit())
		if err != nil {
			return nil, fmt.Errorf("devnet: read setup block: %w", err)
		}
		if len(block.Transactions()) == 0 {
			return nil, fmt.Errorf("devnet: %d setup transactions were not mined", len(unmined))
		}
		for _, tx := range block.Transactions() {
			delete(unmined, tx.Hash())
		}
		header = block.Header()
	}
	for i, h := range hashes {
		r, err := node.TransactionReceipt(ctx, h)
		if err != nil {
			return nil, fmt.Errorf("devnet: setup transaction %d: %w", i, err)
		}
		if r.Status != types.ReceiptStatusSuccessful {
			return nil, fmt.Errorf("devnet: setup transaction %d reverted", i)
		}
	}
	return header, nil
}

// BatchSettler returns the address of QuidBatchSettler, always BatchSettlerAddress.
func (d *Devnet) BatchSettler() common.Address { return BatchSettlerAddress }

// ChainID returns the chain id, as eth_chainId reports it and EIP-712 domains use it.
func (d *Devnet) ChainID() uint64 { return d.chainID }

// Token returns QuidToken's address, always TokenAddress.
func (d *Devnet) Token() common.Address { return TokenAddress }

// Accounts returns the funded accounts. Account 0 deployed the token and is its only minter.
// The keys are the public Hardhat/anvil test keys: never use them for anything of value.
func (d *Devnet) Accounts() []Account { return append([]Account(nil), d.accounts...) }

// RPC returns an in-process JSON-RPC client with the same behaviour as the HTTP endpoint:
// a sent transaction is mined before the send returns. Like any HTTP client it does not support
// subscriptions (eth_subscribe); poll or use filters instead. Close closes it.
func (d *Devnet) RPC() *rpc.Client { return d.rpc }

// Client returns an ethclient over RPC.
func (d *Devnet) Client() *ethclient.Client { return d.client }

// Serve serves standard Ethereum JSON-RPC over HTTP on addr until Close, and returns its URL.
// addr must be a loopback address ("127.0.0.1:8545", "[::1]:0", "localhost:0"; port 0 picks a
// free port): the accounts' keys are public, so the chain is for this machine only.
func (d *Devnet) Serve(addr string) (string, error) {
	if err := checkLoopback(addr); err != nil {
		return "", err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return "", ErrClosed
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("devnet: listen on %s: %w", addr, err)
	}
	if tcp, ok := ln.Addr().(*net.TCPAddr); !ok || !tcp.IP.IsLoopback() {
		_ = ln.Close()
		return "", fmt.Errorf("devnet: %s resolved to non-loopback %s", addr, ln.Addr())
	}
	srv := &http.Server{
		Handler:           d.handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		// A send may wait up to a second for the clock (see Config.MaxTimestampLead).
		WriteTimeout:   60 * time.Second,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
	}
	d.servers = append(d.servers, srv)
	d.serving.Add(1)
	go func() {
		defer d.serving.Done()
		_ = srv.Serve(ln) // returns http.ErrServerClosed after Shutdown
	}()
	return "http://" + ln.Addr().String(), nil
}

func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("devnet: serve address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil // checked again once bound
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("devnet: refusing to serve on %q: only loopback addresses are allowed", addr)
	}
	return nil
}

// Close stops the HTTP endpoints (letting requests in flight finish, for up to 5 s), the miner
// and the chain. The chain's state is gone afterwards. Close is idempotent.
func (d *Devnet) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	servers := d.servers
	d.mu.Unlock()

	var errs []error
	for _, srv := range servers {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("devnet: shut down HTTP endpoint: %w", err), srv.Close())
		}
		cancel()
	}
	d.serving.Wait()
	d.miner.stop()
	d.rpc.Close()
	if err := d.sim.Close(); err != nil {
		errs = append(errs, fmt.Errorf("devnet: close simulated backend: %w", err))
	}
	return errors.Join(errs...)
}
