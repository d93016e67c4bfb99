// Package quidtest builds the real parts quid's tests run against: an embedded chain with the
// test stablecoin, a facilitator settling on it, and signed payments. Nothing here is a mock.
package quidtest

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/quidpay/quid/devnet"
	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/facilitator"
	"github.com/quidpay/quid/x402"
)

// Roles of the devnet accounts in tests.
const (
	Seller  = 1
	Buyer   = 2
	Relayer = 3
)

// Env is a running chain and a facilitator on it.
type Env struct {
	Chain       *devnet.Devnet
	Facilitator *facilitator.Facilitator
	Token       evm.Asset
	Seller      devnet.Account
	Buyer       devnet.Account
}

// Options tune NewEnv.
type Options struct {
	// ChainID, when set, overrides Devnet.ChainID.
	ChainID uint64
	// Devnet configures the chain; its zero value is the default devnet.
	Devnet      devnet.Config
	Facilitator func(*facilitator.Config)
}

// NewEnv starts a devnet and a facilitator, closed when the test ends.
func NewEnv(t testing.TB, opts Options) *Env {
	t.Helper()
	if opts.ChainID != 0 {
		opts.Devnet.ChainID = opts.ChainID
	}
	chain, err := devnet.Start(opts.Devnet)
	if err != nil {
		t.Fatalf("devnet: %v", err)
	}
	t.Cleanup(func() { chain.Close() })
	acc := chain.Accounts()
	cfg := facilitator.Config{Chain: chain.Client(), ChainID: chain.ChainID(), Relayer: acc[Relayer].Key, ReceiptTimeout: 10 * time.Second}
	if opts.Facilitator != nil {
		opts.Facilitator(&cfg)
	}
	f, err := facilitator.New(cfg)
	if err != nil {
		t.Fatalf("facilitator: %v", err)
	}
	return &Env{Chain: chain, Facilitator: f, Token: evm.DevToken(chain.ChainID()), Seller: acc[Seller], Buyer: acc[Buyer]}
}

// Balance returns owner's token balance.
func (e *Env) Balance(t testing.TB, owner common.Address) evm.Amount {
	t.Helper()
	ret, err := e.Chain.Client().CallContract(context.Background(), ethereum.CallMsg{To: &e.Token.Address, Data: evm.BalanceOfCalldata(owner)}, nil)
	if err != nil {
		t.Fatalf("balanceOf: %v", err)
	}
	a, err := evm.DecodeUint256(ret)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// Requirements returns exact requirements for amount atomic units of the token to payTo.
func (e *Env) Requirements(amount uint64, payTo common.Address) x402.PaymentRequirements {
	extra := x402.Object{}
	extra.SetString("name", e.Token.Name)
	extra.SetString("version", e.Token.Version)
	return x402.PaymentRequirements{
		Scheme: x402.SchemeExact, Network: x402.EIP155(e.Chain.ChainID()), Amount: evm.NewAmount(amount).String(),
		Asset: e.Token.Address.Hex(), PayTo: payTo.Hex(), MaxTimeoutSeconds: 60, Extra: extra,
	}
}

// Authorization returns a valid authorization from key for req, valid from now for
// req.MaxTimeoutSeconds.
func Authorization(t testing.TB, key *ecdsa.PrivateKey, req x402.PaymentRequirements) evm.Authorization {
	t.Helper()
	nonce, err := evm.NewNonce()
	if err != nil {
		t.Fatal(err)
	}
	value, err := evm.ParseAmount(req.Amount)
	if err != nil {
		t.Fatal(err)
	}
	return evm.Authorization{
		From:        crypto.PubkeyToAddress(key.PublicKey),
		To:          common.HexToAddress(req.PayTo),
		Value:       value,
		ValidAfter:  0,
		ValidBefore: uint64(time.Now().Add(time.Duration(req.MaxTimeoutSeconds) * time.Second).Unix()),
		Nonce:       nonce,
	}
}

// Payload signs auth with key under domain and wraps it as a v2 payload accepting req.
func Payload(t testing.TB, key *ecdsa.PrivateKey, domain evm.Domain, auth evm.Authorization, req x402.PaymentRequirements) *x402.PaymentPayload {
	t.Helper()
	sig, err := evm.SignAuthorization(key, domain, &auth)
	if err != nil {
		t.Fatal(err)
	}
	return RawPayload(t, auth.Wire(), sig.String(), req)
}

// RawPayload wraps wire fields as a v2 payload accepting req, with no checks, for tests that
// tamper with them.
func RawPayload(t testing.TB, auth x402.ExactEVMAuthorization, sig string, req x402.PaymentRequirements) *x402.PaymentPayload {
	t.Helper()
	raw, err := json.Marshal(x402.ExactEVMPayload{Authorization: auth, Signature: sig})
	if err != nil {
		t.Fatal(err)
	}
	accepted := req
	return &x402.PaymentPayload{X402Version: x402.V2, Accepted: &accepted, Payload: raw,
		Resource: &x402.ResourceInfo{URL: "http://example.test/r"}}
}

// Header encodes p as a PAYMENT-SIGNATURE value.
func Header(t testing.TB, p *x402.PaymentPayload) string {
	t.Helper()
	h, err := x402.EncodeHeader(p)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// Fund sends amount atomic units of the token from the devnet's deployer to to.
func (e *Env) Fund(t testing.TB, to common.Address, amount uint64) {
	t.Helper()
	from := e.Chain.Accounts()[0]
	auth := evm.Authorization{From: from.Address, To: to, Value: evm.NewAmount(amount), ValidBefore: uint64(time.Now().Add(time.Hour).Unix())}
	auth.Nonce, _ = evm.NewNonce()
	sig, err := evm.SignAuthorization(from.Key, e.Token.Domain(), &auth)
	if err != nil {
		t.Fatal(err)
	}
	e.Send(t, from.Key, e.Token.Address, evm.TransferWithAuthorizationCalldata(&auth, sig))
}

// Send sends a transaction with data from key to to and waits for its successful receipt.
func (e *Env) Send(t testing.TB, key *ecdsa.PrivateKey, to common.Address, data []byte) {
	t.Helper()
	ctx := context.Background()
	c := e.Chain.Client()
	from := crypto.PubkeyToAddress(key.PublicKey)
	nonce, err := c.PendingNonceAt(ctx, from)
	if err != nil {
		t.Fatal(err)
	}
	tip, _ := c.SuggestGasTipCap(ctx)
	head, err := c.HeaderByNumber(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := types.SignNewTx(key, types.LatestSignerForChainID(new(big.Int).SetUint64(e.Chain.ChainID())), &types.DynamicFeeTx{
		Nonce: nonce, GasTipCap: tip, GasFeeCap: new(big.Int).Add(tip, new(big.Int).Mul(head.BaseFee, big.NewInt(2))),
		Gas: 300_000, To: &to, Data: data,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SendTransaction(ctx, tx); err != nil {
		t.Fatalf("send: %v", err)
	}
	if r := e.Receipt(t, tx.Hash()); r.Status != 1 {
		t.Fatalf("transaction %s reverted", tx.Hash())
	}
}

// Receipt waits up to 10 s for the receipt of hash: the devnet answers a send once the
// transaction is pooled and mines it just after, so a receipt can trail the send that made it.
func (e *Env) Receipt(t testing.TB, hash common.Hash) *types.Receipt {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, err := e.Chain.Client().TransactionReceipt(context.Background(), hash)
		if err == nil {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("transaction %s not mined: %v", hash, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var cancelTypeHash = crypto.Keccak256Hash([]byte("CancelAuthorization(address authorizer,bytes32 nonce)"))

// Cancel cancels an authorization on chain, as a payer racing its own payment would.
func (e *Env) Cancel(t testing.TB, key *ecdsa.PrivateKey, auth evm.Authorization) {
	t.Helper()
	sep := e.Token.Domain().Separator()
	structHash := crypto.Keccak256(cancelTypeHash[:], common.LeftPadBytes(auth.From[:], 32), auth.Nonce[:])
	digest := crypto.Keccak256([]byte{0x19, 0x01}, sep[:], structHash)
	sig, err := evm.Sign(key, [32]byte(digest))
	if err != nil {
		t.Fatal(err)
	}
	r, s := sig.R(), sig.S()
	data := append([]byte{0x5a, 0x04, 0x9a, 0x70}, common.LeftPadBytes(auth.From[:], 32)...)
	data = append(data, auth.Nonce[:]...)
	data = append(data, common.LeftPadBytes([]byte{sig.V()}, 32)...)
	data = append(data, r[:]...)
	data = append(data, s[:]...)
	e.Send(t, key, e.Token.Address, data)
}
