package wallet

import (
	"errors"
	"fmt"

	"github.com/quidpay/quid/evm"
)

// Refusals a paying request can return (wrapped in *url.Error by http.Client, and in
// *PolicyError, *OverBudgetError or *ApprovalPendingError): test them with errors.Is. In every
// case nothing was paid.
var (
	// ErrOverBudget reports a payment that would pass a budget or cap; *OverBudgetError says which.
	ErrOverBudget = errors.New("wallet: over budget")
	// ErrApprovalPending reports a payment waiting for a human; *ApprovalPendingError carries the
	// approval's id, to retry with (Intent.ApprovalID) once it is approved.
	ErrApprovalPending = errors.New("wallet: payment waits for approval")
	// ErrApprovalDenied reports a payment whose approval a human denied.
	ErrApprovalDenied = errors.New("wallet: approval denied")
	// ErrApprovalInvalid reports an approval id that is unknown, expired, already used, not yet
	// approved, or for other payment terms.
	ErrApprovalInvalid = errors.New("wallet: approval cannot be used for this payment")
	// ErrPayeeNotAllowed reports a payee on the blocklist or off the allowlist.
	ErrPayeeNotAllowed = errors.New("wallet: payee not allowed")
	// ErrHostNotAllowed reports a host on the blocklist or off the allowlist.
	ErrHostNotAllowed = errors.New("wallet: host not allowed")
	// ErrAssetNotAllowed reports an asset on the blocklist or off the allowlist.
	ErrAssetNotAllowed = errors.New("wallet: asset not allowed")
	// ErrNetworkNotAllowed reports a network on the blocklist or off the allowlist.
	ErrNetworkNotAllowed = errors.New("wallet: network not allowed")
	// ErrOverExpectedPrice reports a 402 asking more than the caller's Intent.ExpectedPrice.
	ErrOverExpectedPrice = errors.New("wallet: price above the expected price")
	// ErrDuplicatePayment reports a second payment for the same (method, URL, quote) within the
	// duplicate window; set Intent.Again to pay again on purpose.
	ErrDuplicatePayment = errors.New("wallet: already paid for this request")
	// ErrDelegationRevoked reports a delegation (or an ancestor) that was revoked.
	ErrDelegationRevoked = errors.New("wallet: delegation revoked")
	// ErrDelegationExpired reports a delegation (or an ancestor) past its lifetime.
	ErrDelegationExpired = errors.New("wallet: delegation expired")
	// ErrOutOfScope reports a payment outside a delegation's hosts, payees or routes.
	ErrOutOfScope = errors.New("wallet: outside the delegation's scope")
	// ErrNoKey reports a payment asked of a wallet opened without a key (for administration).
	ErrNoKey = errors.New("wallet: opened without a key; cannot pay")
)

// PolicyError is a refusal by a named policy rule.
type PolicyError struct {
	Rule   string // the policy key that refused, e.g. "block.hosts"
	Detail string
	Err    error // one of the sentinels above
}

func (e *PolicyError) Error() string {
	if e.Detail == "" {
		return fmt.Sprintf("%v (%s)", e.Err, e.Rule)
	}
	return fmt.Sprintf("%v (%s): %s", e.Err, e.Rule, e.Detail)
}

func (e *PolicyError) Unwrap() error { return e.Err }

// OverBudgetError says which budget or cap a payment would pass.
type OverBudgetError struct {
	Rule   string // "max_payment", "budgets.hour", "per_payee", "delegation", …
	Scope  string // whose spend is counted: "wallet", "payee:0x…", "host:…", "delegation:…"
	Asset  evm.Asset
	Limit  evm.Amount
	Used   evm.Amount // before this payment
	Amount evm.Amount // this payment
}

func (e *OverBudgetError) Error() string {
	return fmt.Sprintf("wallet: over budget (%s, %s): %s used of %s, payment %s", e.Rule, e.Scope,
		e.Asset.Format(e.Used), e.Asset.Format(e.Limit), e.Asset.Format(e.Amount))
}

// Is makes errors.Is(err, ErrOverBudget) true.
func (e *OverBudgetError) Is(target error) bool { return target == ErrOverBudget }

// ApprovalPendingError carries the id of the approval a payment waits for.
type ApprovalPendingError struct {
	ID   string
	Rule string // "approve_above" or "new_payee"
}

func (e *ApprovalPendingError) Error() string {
	return fmt.Sprintf("wallet: payment waits for approval %s (%s)", e.ID, e.Rule)
}

// Is makes errors.Is(err, ErrApprovalPending) true.
func (e *ApprovalPendingError) Is(target error) bool { return target == ErrApprovalPending }
