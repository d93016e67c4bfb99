package facilitator

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"github.com/quidpay/quid/evm"
	"io"
	"log/slog"
	"math/big"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/quidpay/quid/store"
	"github.com/quidpay/quid/x402"
)

// Config configures a Facilitator. Zero values take the documented defaults.
type Config struct {
	// Chain is the JSON-RPC endpoint of the network payments settle on. Required.
	Chain Chain
	// ChainID is Chain's chain id; payments for other networks are refused. Required.
	ChainID uint64
	// Relayer signs the settlement transactions and pays their gas. Required.
	Relayer *ecdsa.PrivateKey
	// ExtraRelayers are further keys used in parallel with Relayer, for throughput: each key has
	// its own serialized nonce sequence, and settlements are spread over the keys.
	ExtraRelayers []*ecdsa.PrivateKey
	// MaxFee caps the network fee (gas limit × max fee per gas, in wei) the relayer will pay to
	// settle one payment; a settlement that would cost more is refused before anything is sent.
	// Default: no cap.
	MaxFee *big.Int
	// Store persists settlements and balance reservations, so that no authorization is
	// broadcast twice and none is lost across restarts or between instances sharing it.
	// Default: an in-memory SQLite database, lost when the process exits.
	Store Store
	// Now is the clock for validity windows. Default: time.Now.
	Now func() time.Time
	// ReceiptTimeout bounds the wait for a settlement's receipt; past it the settlement is
	// reported as settlement_pending with its transaction hash. Default: 30s.
	ReceiptTimeout time.Duration
	// ClockSkew is how far validBefore may exceed now + maxTimeoutSeconds. Default: 30s.
	ClockSkew time.Duration
	// MaxGas caps the gas of one settlement transaction, so a hostile asset cannot make the
	// relayer pay for unbounded work. Default: 250,000.
	MaxGas uint64
	// BatchSettler is the QuidBatchSettler contract deferred payments are settled through, many
	// per transaction. Zero disables deferral.
	BatchSettler common.Address
	// BatchSize is the most payments one batch transaction carries. Default: 50.
	BatchSize int
	// PerItemGas is the gas each payment in a batch may use. Default: 100,000.
	PerItemGas uint64
	// MaxDeferred caps, per payer and asset, the value of deferred payments not yet settled:
	// the credit the seller extends. A deferral beyond it is refused with
	// x402.ReasonDeferralLimit, and the caller settles that payment before serving instead.
	// Default: zero, no deferral.
	MaxDeferred evm.Amount
	// Logger receives operational events. It is never given keys or signatures. Default: none.
	Logger *slog.Logger
}

// Facilitator verifies and settles x402 exact payments on one EVM chain. It is safe for
// concurrent use.
type Facilitator struct {
	cfg      Config
	network  x402.Network
	relayers []*relayer
	next     atomic.Uint64

	// contracts holds assets seen to have code; knownContracts counts them against a bound.
	contracts      sync.Map
	knownContracts atomic.Int64
	log            *slog.Logger
}

// Store is what the facilitator persists. *store.DB has it.
type Store interface {
	store.Settlements
	store.Reservations
}

// Defaults of Config.
const (
	DefaultReceiptTimeout = 30 * time.Second
	DefaultClockSkew      = 30 * time.Second
	DefaultMaxGas         = 250_000
	// validBeforeMargin is the least time an authorization must have left: a transaction sent
	// now needs a block or two to land, and the token checks validBefore at inclusion.
	validBeforeMargin = 6 * time.Second
)

// New returns a Facilitator for cfg.
func New(cfg Config) (*Facilitator, error) {
	if cfg.Chain == nil || cfg.ChainID == 0 || cfg.Relayer == nil {
		return nil, errors.New("facilitator: Chain, ChainID and Relayer are required")
	}
	if cfg.Store == nil {
		db, err := store.Open(context.Background(), ":memory:")
		if err != nil {
			return nil, err
		}
		cfg.Store = db
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ReceiptTimeout <= 0 {
		cfg.ReceiptTimeout = DefaultReceiptTimeout
	}
	if cfg.ClockSkew <= 0 {
		cfg.ClockSkew = DefaultClockSkew
	}
	if cfg.MaxGas == 0 {
		cfg.MaxGas = DefaultMaxGas
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.PerItemGas == 0 {
		cfg.PerItemGas = DefaultPerItemGas
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	relayers := []*relayer{newRelayer(cfg.Chain, cfg.ChainID, cfg.Relayer, cfg.MaxFee)}
	for _, k := range cfg.ExtraRelayers {
		relayers = append(relayers, newRelayer(cfg.Chain, cfg.ChainID, k, cfg.MaxFee))
	}
	return &Facilitator{
		cfg:      cfg,
		network:  x402.EIP155(cfg.ChainID),
		relayers: relayers,
		log:      log,
	}, nil
}

// Network returns the network the facilitator settles on.
func (f *Facilitator) Network() x402.Network { return f.network }

// Relayer returns the address that sends settlement transactions.
func (f *Facilitator) Relayer() common.Address { return f.relayers[0].addr }

// pick returns the relayer for the next settlement, in turn.
func (f *Facilitator) pick() *relayer {
	return f.relayers[int(f.next.Add(1)%uint64(len(f.relayers)))]
}

// Supported lists what the facilitator verifies and settles.
func (f *Facilitator) Supported(context.Context) (*x402.SupportedResponse, error) {
	var signers []string
	for _, r := range f.relayers {
		signers = append(signers, r.addr.Hex())
	}
	kinds := []x402.SupportedKind{{X402Version: x402.V2, Scheme: x402.SchemeExact, Network: f.network}}
	if name, ok := f.network.V1Name(); ok {
		kinds = append(kinds, x402.SupportedKind{X402Version: x402.V1, Scheme: x402.SchemeExact, Network: x402.Network(name)})
	}
	return &x402.SupportedResponse{
		Kinds:      kinds,
		Extensions: []string{},
		Signers:    map[string][]string{"eip155:*": signers},
	}, nil
}

// Verify checks a payment against the seller's requirements without moving value, and reserves
// its amount against the payer's balance until it settles or expires. An invalid
// payment is a response with IsValid false and the protocol's reason; an error (wrapping
// ErrUnavailable) means the chain could not be asked and nothing was decided.
func (f *Facilitator) Verify(ctx context.Context, p *x402.PaymentPayload, req x402.PaymentRequirements) (*x402.VerifyResponse, error) {
	pay, perr, err := f.verify(ctx, p, req, true)
	if err != nil {
		return nil, err
	}
	if perr == nil {
		// Hold the value against the payer's balance until this payment settles or expires, so
		// that concurrent payments are admitted only while they fit in the balance together.
		if perr, err = f.reserve(ctx, pay); err != nil {
			return nil, err
		}
	}
	if perr != nil {
		return &x402.VerifyResponse{IsValid: false, InvalidReason: perr.Reason, InvalidMessage: perr.Message, Payer: pay.payer()}, nil
	}
	return &x402.VerifyResponse{IsValid: true, Payer: pay.payer()}, nil
}

func (f *Facilitator) now() time.Time { return f.cfg.Now() }
