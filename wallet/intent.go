package wallet

import "context"

// Intent is the business context of a request, carried by its context.Context: why the agent
// pays, and what it expects. It is journaled with every decision about the request.
type Intent struct {
	// Purpose says why the agent pays, in its own words.
	Purpose string
	// TaskID and UpstreamRequestID tie the payment to the agent's task and to the request that
	// caused it.
	TaskID            string
	UpstreamRequestID string
	// ExpectedPrice, when set, is the most the caller expects to pay, in the asset's units
	// ("0.01", or "$0.01" for a dollar stablecoin): a 402 asking more is refused with
	// ErrOverExpectedPrice.
	ExpectedPrice string
	// ApprovalID retries a payment that waited for approval (ApprovalPendingError.ID).
	ApprovalID string
	// Again pays even though the same request was paid within the duplicate window.
	Again bool
}

type intentKey struct{}

// WithIntent returns a context carrying in; requests made with it are paid and journaled with it.
func WithIntent(ctx context.Context, in Intent) context.Context {
	return context.WithValue(ctx, intentKey{}, in)
}

// IntentFrom returns the intent ctx carries (the zero Intent if none).
func IntentFrom(ctx context.Context) Intent {
	in, _ := ctx.Value(intentKey{}).(Intent)
	return in
}
