package paywall

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/store"
	"github.com/quidpay/quid/x402"
)

// A Rail is one way a buyer can pay: x402 exact on an EVM chain first, and later L402, MPP or
// credit. The paywall asks every rail to describe itself in the 402, and lets the first rail that
// finds its credential in a request verify and settle it.
type Rail interface {
	// Offer adds the rail's terms for charge to the 402 being built. cause is why the previous
	// attempt was refused (nil for a first, unpaid request); the rail words it in its own
	// protocol's reason strings.
	Offer(r *http.Request, charge *Charge, cause error, ch *Challenge) error

	// Payment finds the rail's credential in r and decodes it against charge, without verifying
	// it or asking anyone. It returns ErrNoCredential when r carries none for this rail, and an
	// error carrying a protocol reason (such as *x402.Error) when the credential is malformed or
	// is not for this charge.
	Payment(r *http.Request, charge *Charge) (Payment, error)
}

// A Payment is a decoded credential.
type Payment interface {
	// Key identifies the payment for the claim that makes it single-use.
	Key() store.Key
	// Expires is when the credential stops being valid on its rail; the claim lives that long.
	Expires() time.Time
	// Payer names who paid, for logs and receipts.
	Payer() string
	// Verify checks the payment without moving value. A refusal is an error carrying the
	// protocol's reason; an error wrapping ErrUnavailable means the verifier could not be asked.
	Verify(ctx context.Context) error
	// Settle moves the value. The receipt says whether it did; an error means the outcome is
	// unknown, and the payment must stay claimed.
	Settle(ctx context.Context) (*Receipt, error)
}

// Receipt is the outcome of a settlement.
type Receipt struct {
	// Settled reports that value moved to the seller.
	Settled bool
	// Transaction is the settlement's on-chain reference, when there is one.
	Transaction string
	// Settled already: the payment was settled earlier (in Transaction), by a settlement whose
	// success was not heard. Only the request holding the payment's claim may act on it.
	AlreadySettled bool
	// Pending reports that the settlement was sent but its outcome is not known yet; presenting
	// the same payment again finds it out without paying twice.
	Pending bool
	// Reason says why settlement failed, in the rail's terms.
	Reason string
	// Header holds the headers the rail adds to the response (e.g. PAYMENT-RESPONSE).
	Header http.Header
}

// Challenge is a 402 under construction.
type Challenge struct {
	Header http.Header
	// Body is the JSON body; the first rail to set it wins.
	Body []byte
}

// Charge is what a request costs.
type Charge struct {
	Asset    evm.Asset
	Amount   evm.Amount
	Resource x402.ResourceInfo
	// MaxTimeout bounds how long a payment authorization may stay valid.
	MaxTimeout time.Duration
	// Extensions are the route's x402 extension declarations.
	Extensions x402.Object
	// Extra holds members added to each requirement's extra: the route's disclosure.
	Extra x402.Object
	// Nonce, when set, is the EIP-3009 nonce the payment must carry: a quote's.
	Nonce *[32]byte
	// Route names the route in records ("GET /path").
	Route string
}

// Errors the paywall and its rails report.
var (
	// ErrNoCredential is returned by Rail.Authorize when a request carries no credential for it.
	ErrNoCredential = errors.New("paywall: no payment credential")
	// ErrReplayed reports a payment that was already used (or is being used) for another request.
	ErrReplayed = errors.New("paywall: payment already used")
	// ErrUnavailable reports that a verifier or settler could not be asked.
	ErrUnavailable = errors.New("paywall: payment service unavailable")
)
