package devnet_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha512"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/quidpay/quid/devnet"
	"github.com/quidpay/quid/evm/contracts/token"
)

var qt = token.NewQuidToken()

func start(t *testing.T, cfg devnet.Config) *devnet.Devnet {
	t.Helper()
	d, err := devnet.Start(cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return d
}

func serve(t *testing.T, d *devnet.Devnet) string {
	t.Helper()
	url, err := d.Serve("127.0.0.1:0")
	if err != nil {
		t.Fatalf("Serve: %v", err)
	}
	return url
}

// transfer signs an ETH transfer of 1 wei from a to itself at nonce.
func transfer(t testing.TB, d *devnet.Devnet, a devnet.Account, nonce uint64) *types.Transaction {
	t.Helper()
	return sign(t, d, a, nonce, &a.Address, big.NewInt(1), nil, 21_000)
}

// signTx signs a contract call.
func signTx(t testing.TB, d *devnet.Devnet, a devnet.Account, nonce uint64, to *common.Address, data []byte, gas uint64) *types.Transaction {
	t.Helper()
	return sign(t, d, a, nonce, to, nil, data, gas)
}

func sign(t testing.TB, d *devnet.Devnet, a devnet.Account, nonce uint64, to *common.Address, value *big.Int, data []byte, gas uint64) *types.Transaction {
	t.Helper()
	signer := types.LatestSignerForChainID(new(big.Int).SetUint64(d.ChainID()))
	tx, err := types.SignNewTx(a.Key, signer, &types.DynamicFeeTx{
		ChainID:   signer.ChainID(),
		Nonce:     nonce,
		GasTipCap: big.NewInt(1_000_000_000),
		GasFeeCap: big.NewInt(10_000_000_000),
		Gas:       gas,
		To:        to,
		Value:     value,
		Data:      data,
	})
	if err != nil {
		t.Fatal(err)
	}
	return tx
}

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data"`
}

type rpcResponse struct {
	ID     json.RawMessage `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *rpcError       `json:"error"`
}

// post sends a raw JSON-RPC body with plain net/http, as a tool in another language would.
func post(t *testing.T, url, body string) []byte {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HTTP %d: %s", resp.StatusCode, out)
	}
	return out
}

func call(t *testing.T, url, method string, params ...any) rpcResponse {
	t.Helper()
	if params == nil {
		params = []any{}
	}
	body, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 7, "method": method, "params": params})
	if err != nil {
		t.Fatal(err)
	}
	var resp rpcResponse
	if err := json.Unmarshal(post(t, url, string(body)), &resp); err != nil {
		t.Fatal(err)
	}
	if string(resp.ID) != "7" {
		t.Fatalf("%s: id = %s", method, resp.ID)
	}
	return resp
}

func mustCall(t *testing.T, url, method string, params ...any) json.RawMessage {
	t.Helper()
	resp := call(t, url, method, params...)
	if resp.Error != nil {
		t.Fatalf("%s: error %d %s", method, resp.Error.Code, resp.Error.Message)
	}
	return resp.Result
}

func rawTx(t testing.TB, tx *types.Transaction) string {
	t.Helper()
	b, err := tx.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return hexutil.Encode(b)
}

func tokenBalance(t *testing.T, d *devnet.Devnet, a common.Address) *big.Int {
	t.Helper()
	b, err := bind.Call(qt.Instance(d.Client(), d.Token()), nil, qt.PackBalanceOf(a), qt.UnpackBalanceOf)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// authorization signs an EIP-3009 TransferWithAuthorization by hand, as an x402 buyer does.
type authorization struct {
	from, to                common.Address
	value                   *big.Int
	validAfter, validBefore *big.Int
	nonce                   [32]byte
	v                       uint8
	r, s                    [32]byte
}

func signAuthorization(t testing.TB, d *devnet.Devnet, from devnet.Account, to common.Address, value int64) authorization {
	t.Helper()
	a := authorization{
		from:        from.Address,
		to:          to,
		value:       big.NewInt(value),
		validAfter:  big.NewInt(time.Now().Add(-10 * time.Minute).Unix()),
		validBefore: big.NewInt(time.Now().Add(time.Minute).Unix()),
	}
	copy(a.nonce[:], crypto.Keccak256([]byte(t.Name()), big.NewInt(time.Now().UnixNano()).Bytes()))
	word := func(n *big.Int) []byte { return common.LeftPadBytes(n.Bytes(), 32) }
	domain := crypto.Keccak256(
		crypto.Keccak256([]byte("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")),
		crypto.Keccak256([]byte("Quid Test USD")),
		crypto.Keccak256([]byte("2")),
		word(new(big.Int).SetUint64(d.ChainID())),
		common.LeftPadBytes(d.Token().Bytes(), 32),
	)
	structHash := crypto.Keccak256(
		common.FromHex("0x7c7c6cdb67a18743f49ec6fa9b35f50d52ed05cbed4cc592e13b44501c1a2267"),
		common.LeftPadBytes(a.from[:], 32), common.LeftPadBytes(a.to[:], 32),
		word(a.value), word(a.validAfter), word(a.validBefore), a.nonce[:],
	)
	sig, err := crypto.Sign(crypto.Keccak256([]byte{0x19, 0x01}, domain, structHash), from.Key)
	if err != nil {
		t.Fatal(err)
	}
	copy(a.r[:], sig[:32])
	copy(a.s[:], sig[32:64])
	a.v = sig[64] + 27
	return a
}

func (a authorization) calldata() []byte {
	return qt.PackTransferWithAuthorization(a.from, a.to, a.value, a.validAfter, a.validBefore, a.nonce, a.v, a.r, a.s)
}

func TestStartDefaults(t *testing.T) {
	t.Parallel()
	began := time.Now()
	d := start(t, devnet.Config{})
	t.Logf("Start took %v", time.Since(began))
	if elapsed := time.Since(began); elapsed > 3*time.Second {
		t.Errorf("Start took %v", elapsed)
	}

	ctx := context.Background()
	if d.ChainID() != 31337 {
		t.Errorf("ChainID = %d", d.ChainID())
	}
	if id, err := d.Client().ChainID(ctx); err != nil || id.Uint64() != 31337 {
		t.Errorf("eth_chainId = %v, %v", id, err)
	}
	if d.Token() != common.HexToAddress("0x5FbDB2315678afecb367f032d93F642f64180aa3") || d.Token() != devnet.TokenAddress {
		t.Errorf("Token = %s", d.Token())
	}
	if code, err := d.Client().CodeAt(ctx, d.Token(), nil); err != nil || len(code) == 0 {
		t.Fatalf("no code at the token: %v", err)
	}
	owner, err := bind.Call(qt.Instance(d.Client(), d.Token()), nil, qt.PackOwner(), qt.UnpackOwner)
	if err != nil || owner != d.Accounts()[0].Address {
		t.Errorf("token owner = %s, %v; want account 0", owner, err)
	}

	accounts := d.Accounts()
	if len(accounts) != 10 {
		t.Fatalf("%d accounts", len(accounts))
	}
	ether := new(big.Int).Exp(big.NewInt(10), big.NewInt(18), nil)
	wantETH := new(big.Int).Mul(big.NewInt(10_000), ether)
	for i, a := range accounts {
		if got := tokenBalance(t, d, a.Address); got.Cmp(big.NewInt(1_000_000_000_000)) != 0 {
			t.Errorf("account %d holds %s qUSD units", i, got)
		}
		eth, err := d.Client().BalanceAt(ctx, a.Address, nil)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			// Account 0 paid for the deployment and the mints, as on Hardhat or anvil.
			if eth.Cmp(wantETH) >= 0 || new(big.Int).Sub(wantETH, eth).Cmp(ether) > 0 {
				t.Errorf("account 0 holds %s wei", eth)
			}
			continue
		}
		if eth.Cmp(wantETH) != 0 {
			t.Errorf("account %d holds %s wei, want %s", i, eth, wantETH)
		}
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  devnet.Config
		ok   bool
	}{
		{"one account", devnet.Config{Accounts: 1}, true},
		{"all accounts", devnet.Config{Accounts: 20, TokenPerAccount: big.NewInt(5)}, true},
		{"no tokens", devnet.Config{TokenPerAccount: new(big.Int)}, true},
		{"too many accounts", devnet.Config{Accounts: 21}, false},
		{"negative accounts", devnet.Config{Accounts: -1}, false},
		{"negative ETH", devnet.Config{ETHPerAccount: big.NewInt(-1)}, false},
		{"negative tokens", devnet.Config{TokenPerAccount: big.NewInt(-1)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d, err := devnet.Start(tc.cfg)
			if !tc.ok {
				if err == nil {
					d.Close()
					t.Fatal("Start succeeded")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			want := tc.cfg.Accounts
			if want == 0 {
				want = 10
			}
			if len(d.Accounts()) != want {
				t.Fatalf("%d accounts, want %d", len(d.Accounts()), want)
			}
			last := d.Accounts()[want-1].Address
			wantTokens := tc.cfg.TokenPerAccount
			if wantTokens == nil {
				wantTokens = big.NewInt(1_000_000_000_000)
			}
			if got := tokenBalance(t, d, last); got.Cmp(wantTokens) != 0 {
				t.Errorf("last account holds %s, want %s", got, wantTokens)
			}
		})
	}
}

// TestAccountsDeriveFromMnemonic checks the hard-coded keys against a BIP-39/BIP-32 derivation
// of the public test mnemonic at m/44'/60'/0'/0/i, the path Hardhat and anvil use.
func TestAccountsDeriveFromMnemonic(t *testing.T) {
	t.Parallel()
	d := start(t, devnet.Config{Accounts: devnet.MaxAccounts, TokenPerAccount: new(big.Int)})
	seed, err := pbkdf2.Key(sha512.New, devnet.TestMnemonic, []byte("mnemonic"), 2048, 64)
	if err != nil {
		t.Fatal(err)
	}
	n := crypto.S256().Params().N
	mac := hmac.New(sha512.New, []byte("Bitcoin seed"))
	mac.Write(seed)
	master := mac.Sum(nil)
	key, chain := new(big.Int).SetBytes(master[:32]), master[32:]

	child := func(key *big.Int, chain []byte, index uint32) (*big.Int, []byte) {
		var data []byte
		if index >= 1<<31 {
			data = append([]byte{0}, common.LeftPadBytes(key.Bytes(), 32)...)
		} else {
			priv, err := crypto.ToECDSA(common.LeftPadBytes(key.Bytes(), 32))
			if err != nil {
				t.Fatal(err)
			}
			data = crypto.CompressPubkey(&priv.PublicKey)
		}
		data = binary.BigEndian.AppendUint32(data, index)
		mac := hmac.New(sha512.New, chain)
		mac.Write(data)
		sum := mac.Sum(nil)
		k := new(big.Int).Add(new(big.Int).SetBytes(sum[:32]), key)
		return k.Mod(k, n), sum[32:]
	}
	const hardened = 1 << 31
	for _, i := range []uint32{44 + hardened, 60 + hardened, hardened, 0} {
		key, chain = child(key, chain, i)
	}
	for i, a := range d.Accounts() {
		k, _ := child(key, chain, uint32(i))
		if !bytes.Equal(common.LeftPadBytes(k.Bytes(), 32), crypto.FromECDSA(a.Key)) {
			t.Errorf("account %d: key is not the mnemonic's", i)
		}
		if a.Address != crypto.PubkeyToAddress(a.Key.PublicKey) {
			t.Errorf("account %d: address does not match key", i)
		}
	}
	if got := d.Accounts()[0].Address; got != common.HexToAddress("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266") {
		t.Errorf("account 0 = %s", got)
	}
}

// TestMinesOnDemand sends a transaction each way a user can and expects the receipt at once,
// with no Commit.
func TestMinesOnDemand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		send func(t *testing.T, d *devnet.Devnet, tx *types.Transaction)
	}{
		{"Client", func(t *testing.T, d *devnet.Devnet, tx *types.Transaction) {
			if err := d.Client().SendTransaction(ctx, tx); err != nil {
				t.Fatal(err)
			}
		}},
		{"RPC", func(t *testing.T, d *devnet.Devnet, tx *types.Transaction) {
			var hash common.Hash
			if err := d.RPC().CallContext(ctx, &hash, "eth_sendRawTransaction", rawTx(t, tx)); err != nil || hash != tx.Hash() {
				t.Fatalf("hash %s, %v", hash, err)
			}
		}},
		{"HTTP", func(t *testing.T, d *devnet.Devnet, tx *types.Transaction) {
			mustCall(t, serve(t, d), "eth_sendRawTransaction", rawTx(t, tx))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := start(t, devnet.Config{Accounts: 2})
			url := serve(t, d)
			tx := transfer(t, d, d.Accounts()[1], 0)
			began := time.Now()
			tc.send(t, d, tx)
			sent := time.Since(began)
			receipt := mustCall(t, url, "eth_getTransactionReceipt", tx.Hash())
			for deadline := time.Now().Add(2 * time.Second); bytes.Equal(receipt, []byte("null")) && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
				receipt = mustCall(t, url, "eth_getTransactionReceipt", tx.Hash())
			}
			t.Logf("send %v, then receipt %v", sent, time.Since(began)-sent)
			if bytes.Equal(receipt, []byte("null")) {
				t.Fatal("no receipt within 2s of the send; the devnet does not mine on demand")
			}
			r, err := d.Client().TransactionReceipt(ctx, tx.Hash())
			if err != nil || r.Status != types.ReceiptStatusSuccessful {
				t.Fatalf("receipt %+v, %v", r, err)
			}
		})
	}
}

// awaitReceipt polls for a receipt for up to 2 s: a send returns once the transaction is pooled,
// and its block follows within milliseconds.
func awaitReceipt(ctx context.Context, d *devnet.Devnet, hash common.Hash) (*types.Receipt, error) {
	deadline := time.Now().Add(2 * time.Second)
	for {
		r, err := d.Client().TransactionReceipt(ctx, hash)
		if err == nil || time.Now().After(deadline) {
			return r, err
		}
		time.Sleep(time.Millisecond)
	}
}

// TestConcurrentSendsShareBlocks sends from many goroutines at once and expects fewer blocks
// than transactions, and every receipt promptly after its send returns.
func TestConcurrentSendsShareBlocks(t *testing.T) {
	t.Parallel()
	d := start(t, devnet.Config{Accounts: 20, TokenPerAccount: new(big.Int)})
	ctx := context.Background()
	const perAccount = 3
	var (
		mu     sync.Mutex
		blocks = map[uint64]int{}
		wg     sync.WaitGroup
	)
	for _, a := range d.Accounts() {
		wg.Add(1)
		first, err := d.Client().PendingNonceAt(ctx, a.Address) // account 0 deployed the token
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			defer wg.Done()
			for nonce := first; nonce < first+perAccount; nonce++ {
				tx := transfer(t, d, a, nonce)
				if err := d.Client().SendTransaction(ctx, tx); err != nil {
					t.Error(err)
					return
				}
				r, err := awaitReceipt(ctx, d, tx.Hash())
				if err != nil {
					t.Errorf("no receipt within 2s of the send: %v", err)
					return
				}
				mu.Lock()
				blocks[r.BlockNumber.Uint64()]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	txs := len(d.Accounts()) * perAccount
	t.Logf("%d transactions in %d blocks: %v", txs, len(blocks), blocks)
	if len(blocks) >= txs {
		t.Errorf("%d transactions took %d blocks; concurrent sends should share blocks", txs, len(blocks))
	}
}

// TestBatchSends checks that sends in one JSON-RPC batch share a block that is mined before a
// later call in the same batch asks for a receipt.
func TestBatchSends(t *testing.T) {
	t.Parallel()
	d := start(t, devnet.Config{})
	url := serve(t, d)
	a := d.Accounts()[1]
	var items []string
	var hashes []common.Hash
	for nonce := range uint64(3) {
		tx := transfer(t, d, a, nonce)
		hashes = append(hashes, tx.Hash())
		items = append(items, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"eth_sendRawTransaction","params":[%q]}`, nonce, rawTx(t, tx)))
	}
	items = append(items,
		fmt.Sprintf(`{"jsonrpc":"2.0","id":"r","method":"eth_getTransactionReceipt","params":[%q]}`, hashes[2]),
		`{"jsonrpc":"2.0","method":"eth_blockNumber","params":[]}`, // a notification: no answer
		`{"jsonrpc":"2.0","id":"c","method":"eth_chainId"}`,
	)
	var resps []rpcResponse
	if err := json.Unmarshal(post(t, url, "["+strings.Join(items, ",")+"]"), &resps); err != nil {
		t.Fatal(err)
	}
	if len(resps) != 5 {
		t.Fatalf("%d responses, want 5", len(resps))
	}
	for _, r := range resps {
		if r.Error != nil {
			t.Fatalf("id %s: %s", r.ID, r.Error.Message)
		}
	}
	var receipt struct {
		BlockNumber hexutil.Uint64 `json:"blockNumber"`
		Status      hexutil.Uint64 `json:"status"`
	}
	if err := json.Unmarshal(resps[3].Result, &receipt); err != nil || receipt.Status != 1 {
		t.Fatalf("receipt in the same batch: %s (%v)", resps[3].Result, err)
	}
	blocks := map[uint64]bool{}
	for _, h := range hashes {
		r, err := d.Client().TransactionReceipt(context.Background(), h)
		if err != nil {
			t.Fatal(err)
		}
		blocks[r.BlockNumber.Uint64()] = true
	}
	// Normally one block; two when go-ethereum's pool is slow to promote a burst (see miner.seal).
	if len(blocks) >= len(hashes) {
		t.Errorf("%d sends in one batch took %d blocks", len(hashes), len(blocks))
	}
	if string(resps[4].Result) != `"0x7a69"` {
		t.Errorf("eth_chainId in batch = %s", resps[4].Result)
	}
}

func TestBlockTimestampsTrackWallClock(t *testing.T) {
	t.Parallel()
	d := start(t, devnet.Config{})
	ctx := context.Background()
	a := d.Accounts()[1]
	// More sequential blocks than the lead allows in one second: the miner must hold some back.
	for nonce := range uint64(5) {
		tx := transfer(t, d, a, nonce)
		if err := d.Client().SendTransaction(ctx, tx); err != nil {
			t.Fatal(err)
		}
		r, err := awaitReceipt(ctx, d, tx.Hash())
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		h, err := d.Client().HeaderByHash(ctx, r.BlockHash)
		if err != nil {
			t.Fatal(err)
		}
		lead := time.Unix(int64(h.Time), 0).Sub(now)
		t.Logf("block %d: timestamp - now = %v", h.Number, lead.Round(time.Millisecond))
		if lead > devnet.DefaultMaxTimestampLead || lead < -2*time.Second {
			t.Errorf("block %d timestamp is %v from the wall clock", h.Number, lead)
		}
	}
}

func TestUnboundedTimestampLeadIsFast(t *testing.T) {
	t.Parallel()
	d := start(t, devnet.Config{MaxTimestampLead: -1})
	ctx := context.Background()
	a := d.Accounts()[1]
	began := time.Now()
	for nonce := range uint64(6) {
		if err := d.Client().SendTransaction(ctx, transfer(t, d, a, nonce)); err != nil {
			t.Fatal(err)
		}
	}
	if elapsed := time.Since(began); elapsed > 2*time.Second {
		t.Errorf("6 sequential sends took %v with no timestamp bound", elapsed)
	}
}

// TestTransferWithAuthorizationGas settles an x402-style authorization from a relayer that is
// not the payer, and checks the gas is what Base charges, not the dev config's Bogota pricing.
func TestTransferWithAuthorizationGas(t *testing.T) {
	t.Parallel()
	d := start(t, devnet.Config{})
	// A payee that never held qUSD costs the most gas: its balance slot goes from zero.
	payer, relayer := d.Accounts()[1], d.Accounts()[3]
	payee := common.HexToAddress("0x000000000000000000000000000000000000bEEF")
	auth := signAuthorization(t, d, payer, payee, 10_000)

	opts := bind.NewKeyedTransactor(relayer.Key, new(big.Int).SetUint64(d.ChainID()))
	tx, err := bind.Transact(qt.Instance(d.Client(), d.Token()), opts, auth.calldata())
	if err != nil {
		t.Fatal(err)
	}
	r, err := bind.WaitMined(context.Background(), d.Client(), tx.Hash())
	if err != nil || r.Status != types.ReceiptStatusSuccessful {
		t.Fatalf("receipt %v, %v", r, err)
	}
	t.Logf("transferWithAuthorization gas: %d", r.GasUsed)
	if r.GasUsed >= 100_000 {
		t.Errorf("transferWithAuthorization used %d gas, want < 100,000", r.GasUsed)
	}
	if got := tokenBalance(t, d, payee); got.Cmp(big.NewInt(10_000)) != 0 {
		t.Errorf("payee balance = %s", got)
	}
	used, err := bind.Call(qt.Instance(d.Client(), d.Token()), nil, qt.PackAuthorizationState(payer.Address, auth.nonce), qt.UnpackAuthorizationState)
	if err != nil || !used {
		t.Errorf("authorizationState = %v, %v", used, err)
	}
}

// TestChainIDs checks the chain id over HTTP and in the token's EIP-712 domain.
func TestChainIDs(t *testing.T) {
	t.Parallel()
	for _, id := range []uint64{31337, 84532} {
		t.Run(fmt.Sprint(id), func(t *testing.T) {
			t.Parallel()
			d := start(t, devnet.Config{ChainID: id})
			url := serve(t, d)
			if got := string(mustCall(t, url, "eth_chainId")); got != fmt.Sprintf("%q", hexutil.EncodeUint64(id)) {
				t.Errorf("eth_chainId = %s", got)
			}
			if got := string(mustCall(t, url, "net_version")); got != fmt.Sprintf(`"%d"`, id) {
				t.Errorf("net_version = %s", got)
			}
			if d.Token() != devnet.TokenAddress {
				t.Errorf("token at %s", d.Token())
			}
			sep, err := bind.Call(qt.Instance(d.Client(), d.Token()), nil, qt.PackDOMAINSEPARATOR(), qt.UnpackDOMAINSEPARATOR)
			if err != nil {
				t.Fatal(err)
			}
			want := crypto.Keccak256Hash(
				crypto.Keccak256([]byte("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")),
				crypto.Keccak256([]byte("Quid Test USD")), crypto.Keccak256([]byte("2")),
				common.LeftPadBytes(new(big.Int).SetUint64(id).Bytes(), 32), common.LeftPadBytes(d.Token().Bytes(), 32))
			if sep != want {
				t.Errorf("DOMAIN_SEPARATOR = %x, want %x", sep, want)
			}
			// A signature made for this chain id settles.
			auth := signAuthorization(t, d, d.Accounts()[1], d.Accounts()[2].Address, 1)
			tokenAddr := d.Token()
			tx := signTx(t, d, d.Accounts()[3], 0, &tokenAddr, auth.calldata(), 200_000)
			mustCall(t, url, "eth_sendRawTransaction", rawTx(t, tx))
			if r, err := awaitReceipt(context.Background(), d, tx.Hash()); err != nil || r.Status != types.ReceiptStatusSuccessful {
				t.Errorf("settlement receipt %+v, %v", r, err)
			}
		})
	}
}

// TestJSONRPCOverHTTP exercises, with plain HTTP POSTs, the methods viem and ethers use.
func TestJSONRPCOverHTTP(t *testing.T) {
	t.Parallel()
	d := start(t, devnet.Config{})
	url := serve(t, d)
	payer, payee, relayer := d.Accounts()[1], d.Accounts()[2], d.Accounts()[3]
	tokenAddr := d.Token()
	balanceCall := map[string]any{"to": tokenAddr, "data": hexutil.Encode(qt.PackBalanceOf(payer.Address))}

	auth := signAuthorization(t, d, payer, payee.Address, 2_500)
	settle := signTx(t, d, relayer, 0, &tokenAddr, auth.calldata(), 200_000)
	sentHash := mustCall(t, url, "eth_sendRawTransaction", rawTx(t, settle))
	if string(sentHash) != fmt.Sprintf("%q", settle.Hash()) {
		t.Fatalf("eth_sendRawTransaction = %s", sentHash)
	}
	settled, err := awaitReceipt(context.Background(), d, settle.Hash())
	if err != nil {
		t.Fatal(err)
	}
	head := settled.BlockNumber.Uint64() // the settlement is the latest block
	headHex := hexutil.EncodeUint64(head)

	isQuantity := func(raw json.RawMessage) error {
		var q hexutil.Big
		return json.Unmarshal(raw, &q)
	}
	for _, tc := range []struct {
		method string
		params []any
		check  func(json.RawMessage) error
	}{
		{"eth_chainId", nil, func(r json.RawMessage) error { return expect(r, `"0x7a69"`) }},
		{"net_version", nil, func(r json.RawMessage) error { return expect(r, `"31337"`) }},
		{"eth_blockNumber", nil, func(r json.RawMessage) error { return expect(r, fmt.Sprintf("%q", headHex)) }},
		{"eth_getBalance", []any{payee.Address, "latest"}, func(r json.RawMessage) error { return expect(r, `"0x21e19e0c9bab2400000"`) }},
		{"eth_getCode", []any{tokenAddr, "latest"}, func(r json.RawMessage) error {
			var code hexutil.Bytes
			if err := json.Unmarshal(r, &code); err != nil || len(code) < 1000 {
				return fmt.Errorf("token code %d bytes, %v", len(code), err)
			}
			return nil
		}},
		{"eth_call", []any{balanceCall, "latest"}, func(r json.RawMessage) error {
			var out hexutil.Bytes
			if err := json.Unmarshal(r, &out); err != nil {
				return err
			}
			if got := new(big.Int).SetBytes(out); got.Int64() != 1_000_000_000_000-2_500 {
				return fmt.Errorf("payer balance %s", got)
			}
			return nil
		}},
		{"eth_estimateGas", []any{map[string]any{"from": payer.Address, "to": tokenAddr,
			"data": hexutil.Encode(qt.PackTransfer(payee.Address, big.NewInt(1)))}}, isQuantity},
		{"eth_gasPrice", nil, isQuantity},
		{"eth_maxPriorityFeePerGas", nil, isQuantity},
		{"eth_feeHistory", []any{"0x2", "latest", []float64{50}}, func(r json.RawMessage) error {
			var fh struct {
				BaseFeePerGas []hexutil.Big `json:"baseFeePerGas"`
			}
			if err := json.Unmarshal(r, &fh); err != nil || len(fh.BaseFeePerGas) != 3 {
				return fmt.Errorf("feeHistory %s", r)
			}
			return nil
		}},
		{"eth_getTransactionCount", []any{relayer.Address, "latest"}, func(r json.RawMessage) error { return expect(r, `"0x1"`) }},
		{"eth_getTransactionReceipt", []any{settle.Hash()}, func(r json.RawMessage) error {
			var rc struct {
				Status string     `json:"status"`
				Logs   []struct{} `json:"logs"`
			}
			if err := json.Unmarshal(r, &rc); err != nil || rc.Status != "0x1" || len(rc.Logs) != 2 {
				return fmt.Errorf("receipt %s", r)
			}
			return nil
		}},
		{"eth_getTransactionByHash", []any{settle.Hash()}, func(r json.RawMessage) error {
			var tx struct {
				Hash        common.Hash    `json:"hash"`
				BlockNumber hexutil.Uint64 `json:"blockNumber"`
			}
			if err := json.Unmarshal(r, &tx); err != nil || tx.Hash != settle.Hash() || uint64(tx.BlockNumber) != head {
				return fmt.Errorf("transaction %s", r)
			}
			return nil
		}},
		{"eth_getBlockByNumber", []any{"latest", false}, func(r json.RawMessage) error {
			var b struct {
				Number       hexutil.Uint64 `json:"number"`
				Timestamp    hexutil.Uint64 `json:"timestamp"`
				Transactions []common.Hash  `json:"transactions"`
			}
			if err := json.Unmarshal(r, &b); err != nil || uint64(b.Number) != head || len(b.Transactions) != 1 {
				return fmt.Errorf("block %s", r)
			}
			return nil
		}},
		{"eth_getLogs", []any{map[string]any{"address": tokenAddr, "fromBlock": headHex, "toBlock": "latest",
			"topics": []any{crypto.Keccak256Hash([]byte("AuthorizationUsed(address,bytes32)"))}}}, func(r json.RawMessage) error {
			var logs []struct {
				Topics []common.Hash `json:"topics"`
			}
			if err := json.Unmarshal(r, &logs); err != nil || len(logs) != 1 || logs[0].Topics[2] != auth.nonce {
				return fmt.Errorf("logs %s", r)
			}
			return nil
		}},
	} {
		t.Run(tc.method, func(t *testing.T) {
			if err := tc.check(mustCall(t, url, tc.method, tc.params...)); err != nil {
				t.Error(err)
			}
		})
	}

	t.Run("revert keeps code and data", func(t *testing.T) {
		resp := call(t, url, "eth_call", map[string]any{"from": relayer.Address, "to": tokenAddr, "data": hexutil.Encode(auth.calldata())}, "latest")
		if resp.Error == nil || resp.Error.Code != 3 || !strings.Contains(resp.Error.Message, "FiatTokenV2: authorization is used or canceled") {
			t.Fatalf("error %+v", resp.Error)
		}
		if data, _ := resp.Error.Data.(string); !strings.HasPrefix(data, "0x08c379a0") {
			t.Errorf("revert data %v, want an Error(string) payload", resp.Error.Data)
		}
	})
	t.Run("sendRawTransactionSync", func(t *testing.T) {
		var r struct{ Status string }
		if err := json.Unmarshal(mustCall(t, url, "eth_sendRawTransactionSync", rawTx(t, transfer(t, d, payee, 0))), &r); err != nil || r.Status != "0x1" {
			t.Errorf("receipt status %q, %v", r.Status, err)
		}
	})
	for _, tc := range []struct {
		name, body string
		code       int
	}{
		{"admin namespace", `{"jsonrpc":"2.0","id":1,"method":"admin_nodeInfo","params":[]}`, -32601},
		{"debug namespace", `{"jsonrpc":"2.0","id":1,"method":"debug_setHead","params":["0x0"]}`, -32601},
		{"subscription", `{"jsonrpc":"2.0","id":1,"method":"eth_subscribe","params":["newHeads"]}`, -32601},
		{"parse error", `{"jsonrpc":"2.0",`, -32700},
		{"no method", `{"jsonrpc":"2.0","id":1}`, -32600},
		{"named params", `{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":{"a":1}}`, -32602},
		{"empty batch", `[]`, -32600},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var resp rpcResponse
			if err := json.Unmarshal(post(t, url, tc.body), &resp); err != nil {
				t.Fatal(err)
			}
			if resp.Error == nil || resp.Error.Code != tc.code {
				t.Errorf("error %+v, want code %d", resp.Error, tc.code)
			}
		})
	}
	t.Run("GET is refused", func(t *testing.T) {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("GET: HTTP %d", resp.StatusCode)
		}
	})
}

func expect(got json.RawMessage, want string) error {
	if string(got) != want {
		return fmt.Errorf("got %s, want %s", got, want)
	}
	return nil
}

func TestServeOnlyOnLoopback(t *testing.T) {
	t.Parallel()
	d := start(t, devnet.Config{Accounts: 1})
	for _, addr := range []string{":0", "0.0.0.0:0", "[::]:0", "10.1.2.3:8545", "192.168.0.1:0", "example.com:8545", "127.0.0.1"} {
		if url, err := d.Serve(addr); err == nil {
			t.Errorf("Serve(%q) = %s, want an error", addr, url)
		}
	}
	for _, addr := range []string{"127.0.0.1:0", "localhost:0", "[::1]:0"} {
		url, err := d.Serve(addr)
		if err != nil {
			if addr == "[::1]:0" {
				t.Logf("no IPv6 loopback here: %v", err)
				continue
			}
			t.Fatalf("Serve(%q): %v", addr, err)
		}
		mustCall(t, url, "eth_chainId")
	}
}

func TestCloseStopsEverything(t *testing.T) {
	t.Parallel()
	d, err := devnet.Start(devnet.Config{Accounts: 2})
	if err != nil {
		t.Fatal(err)
	}
	url := serve(t, d)
	mustCall(t, url, "eth_blockNumber")
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := http.Post(url, "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}`)); err == nil {
		t.Error("the HTTP endpoint still answers after Close")
	}
	if _, err := d.Serve("127.0.0.1:0"); !errors.Is(err, devnet.ErrClosed) {
		t.Errorf("Serve after Close: %v", err)
	}
	if _, err := d.Client().BlockNumber(context.Background()); err == nil {
		t.Error("Client still works after Close")
	}
}

// TestCloseLeaksNoGoroutines starts and closes devnets, with HTTP traffic, and expects the
// goroutine count to return to where it was. It is not parallel, so other tests do not disturb
// the count.
func TestCloseLeaksNoGoroutines(t *testing.T) {
	cycle := func() {
		d, err := devnet.Start(devnet.Config{Accounts: 2})
		if err != nil {
			t.Fatal(err)
		}
		url := serve(t, d)
		a := d.Accounts()[1]
		mustCall(t, url, "eth_sendRawTransaction", rawTx(t, transfer(t, d, a, 0)))
		if err := d.Client().SendTransaction(context.Background(), transfer(t, d, a, 1)); err != nil {
			t.Fatal(err)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	}
	cycle() // the first run may start process-wide goroutines that live on; count after it
	http.DefaultClient.CloseIdleConnections()
	before := settledGoroutines(-1)
	for range 3 {
		cycle()
	}
	http.DefaultClient.CloseIdleConnections()
	if after := settledGoroutines(before); after > before {
		buf := make([]byte, 1<<20)
		t.Errorf("goroutines: %d before, %d after three devnets\n%s", before, after, buf[:runtime.Stack(buf, true)])
	}
}

// settledGoroutines waits up to 5 s for the goroutine count to drop to target (or, with a
// negative target, to stop changing) and returns it.
func settledGoroutines(target int) int {
	deadline := time.Now().Add(5 * time.Second)
	last := -1
	for {
		n := runtime.NumGoroutine()
		if (target >= 0 && n <= target) || (target < 0 && n == last) || time.Now().After(deadline) {
			return n
		}
		last = n
		time.Sleep(50 * time.Millisecond)
	}
}

func BenchmarkStart(b *testing.B) {
	for b.Loop() {
		d, err := devnet.Start(devnet.Config{})
		if err != nil {
			b.Fatal(err)
		}
		d.Close()
	}
}

// BenchmarkSettle measures one transferWithAuthorization, signed, sent and mined through Client,
// with no bound on block timestamps (sequential sends would otherwise wait for the clock).
func BenchmarkSettle(b *testing.B) {
	d, err := devnet.Start(devnet.Config{MaxTimestampLead: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	payer, relayer := d.Accounts()[1], d.Accounts()[2]
	tokenAddr := d.Token()
	ctx := context.Background()
	nonce := uint64(0)
	for b.Loop() {
		auth := signAuthorization(b, d, payer, relayer.Address, 1)
		if err := d.Client().SendTransaction(ctx, signTx(b, d, relayer, nonce, &tokenAddr, auth.calldata(), 200_000)); err != nil {
			b.Fatal(err)
		}
		nonce++
	}
}
