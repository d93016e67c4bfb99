package interop

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/quidpay/quid/devnet"
	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/facilitator"
	"github.com/quidpay/quid/internal/quidtest"
	"github.com/quidpay/quid/paywall"
	"github.com/quidpay/quid/wallet"
	"github.com/quidpay/quid/x402"
)

// tsRelayer is the devnet account the TypeScript facilitator settles from; quid's facilitator
// uses quidtest.Relayer.
const tsRelayer = 4

// weatherBody is what every paid route in these tests serves, in quid's handlers and in the
// node servers alike.
const weatherBody = `{"city":"Lisbon","tempC":21,"sky":"clear"}`

// stack is quid's side of an interop test: the devnet (with JSON-RPC on loopback for node) and
// quid's facilitator behind its HTTP API.
type stack struct {
	*quidtest.Env
	RPCURL         string
	FacilitatorURL string
}

func newStack(t *testing.T, chainID uint64) *stack {
	t.Helper()
	env := quidtest.NewEnv(t, quidtest.Options{Devnet: devnet.Config{ChainID: chainID}})
	rpcURL, err := env.Chain.Serve("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fac := httptest.NewServer(env.Facilitator.Handler())
	t.Cleanup(fac.Close)
	return &stack{Env: env, RPCURL: rpcURL, FacilitatorURL: fac.URL}
}

func (s *stack) chainID() uint64 { return s.Chain.ChainID() }

func (s *stack) network() x402.Network { return x402.EIP155(s.chainID()) }

func (s *stack) key(i int) string {
	return fmt.Sprintf("0x%x", s.Chain.Accounts()[i].Key.D.FillBytes(make([]byte, 32)))
}

// paywallConfig is quid's paywall configuration for the seller, settling through quid's
// facilitator over HTTP as a seller on another machine would.
func (s *stack) paywallConfig() paywall.Config {
	return paywall.Config{
		Facilitator: facilitator.NewClient(s.FacilitatorURL),
		ChainID:     s.chainID(),
		PayTo:       s.Seller.Address,
		Assets:      evm.NewRegistry(s.Token),
	}
}

// serve serves h on loopback and returns its URL.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// paidWeather serves GET /weather behind quid's paywall at price.
func (s *stack) paidWeather(t *testing.T, cfg paywall.Config, route paywall.Route) string {
	t.Helper()
	pw, err := paywall.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	charge, err := pw.Charge(route)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /weather", charge(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, weatherBody)
	})))
	return serve(t, mux)
}

// wallet returns quid's wallet for the buyer, trusting only the devnet token.
func (s *stack) wallet(t *testing.T, record *[]wallet.Payment) *wallet.Wallet {
	t.Helper()
	w, err := wallet.New(wallet.Config{
		Key: s.Buyer.Key, Assets: evm.NewRegistry(s.Token), Max: "0.05",
		OnPayment: func(p wallet.Payment) { *record = append(*record, p) },
	})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// balances are the buyer's and seller's token balances at one moment.
type balances struct{ buyer, seller evm.Amount }

func (s *stack) balances(t *testing.T) balances {
	t.Helper()
	return balances{s.Balance(t, s.Buyer.Address), s.Balance(t, s.Seller.Address)}
}

// assertPaid checks what a settled payment must have done on chain: tx has a successful receipt
// holding the token's Transfer(buyer, seller, price), and the balances moved by exactly price
// since before.
func (s *stack) assertPaid(t *testing.T, tx string, price uint64, before balances) {
	t.Helper()
	if !isTxHash(tx) {
		t.Fatalf("settlement transaction %q is not a transaction hash", tx)
	}
	receipt, err := s.Chain.Client().TransactionReceipt(context.Background(), common.HexToHash(tx))
	if err != nil {
		t.Fatalf("receipt of %s: %v", tx, err)
	}
	if receipt.Status != types.ReceiptStatusSuccessful {
		t.Fatalf("settlement %s has status %d", tx, receipt.Status)
	}
	want := evm.NewAmount(price).Bytes32()
	transfers := 0
	for _, l := range receipt.Logs {
		if l.Address == s.Token.Address && len(l.Topics) == 3 && l.Topics[0] == evm.TransferTopic &&
			common.BytesToAddress(l.Topics[1][:]) == s.Buyer.Address &&
			common.BytesToAddress(l.Topics[2][:]) == s.Seller.Address && string(l.Data) == string(want[:]) {
			transfers++
		}
	}
	if transfers != 1 {
		t.Fatalf("settlement %s holds %d Transfer(buyer, seller, %d) logs, want 1", tx, transfers, price)
	}
	after := s.balances(t)
	p := evm.NewAmount(price)
	if wantBuyer, _ := before.buyer.Sub(p); after.buyer.Cmp(wantBuyer) != 0 {
		t.Fatalf("buyer balance %s → %s, want %s (price %d)", before.buyer, after.buyer, wantBuyer, price)
	}
	if wantSeller, _ := before.seller.Add(p); after.seller.Cmp(wantSeller) != 0 {
		t.Fatalf("seller balance %s → %s, want %s (price %d)", before.seller, after.seller, wantSeller, price)
	}
}

// assertUnchanged checks that no value moved since before.
func (s *stack) assertUnchanged(t *testing.T, before balances) {
	t.Helper()
	if after := s.balances(t); after.buyer.Cmp(before.buyer) != 0 || after.seller.Cmp(before.seller) != 0 {
		t.Fatalf("balances moved: buyer %s → %s, seller %s → %s", before.buyer, after.buyer, before.seller, after.seller)
	}
}

func isTxHash(s string) bool {
	if len(s) != 66 || s[:2] != "0x" {
		return false
	}
	for _, c := range s[2:] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// get fetches url through client and returns the response and its body.
func get(t *testing.T, client *http.Client, url string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return do(t, client, req)
}

// do sends req through client and returns the response and its body.
func do(t *testing.T, client *http.Client, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// assertSentBy checks that tx was sent from sender.
func assertSentBy(t *testing.T, s *stack, tx string, sender common.Address) {
	t.Helper()
	txn, _, err := s.Chain.Client().TransactionByHash(context.Background(), common.HexToHash(tx))
	if err != nil {
		t.Fatalf("transaction %s: %v", tx, err)
	}
	from, err := types.Sender(types.LatestSignerForChainID(txn.ChainId()), txn)
	if err != nil || from != sender {
		t.Fatalf("transaction %s sent by %s (%v), want %s", tx, from, err, sender)
	}
}
