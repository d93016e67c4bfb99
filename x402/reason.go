package x402

import "fmt"

// Reason is a machine-readable failure code of the x402 protocol. Its values must stay
// character-for-character identical to those of the reference implementations, because clients
// and servers of other stacks switch on them.
type Reason string

// Reasons of the specification (v2 §9) and of the EVM exact scheme as the TypeScript and Go SDKs
// emit them.
const (
	ReasonInsufficientFunds          Reason = "insufficient_funds"
	ReasonInvalidNetwork             Reason = "invalid_network"
	ReasonInvalidPayload             Reason = "invalid_payload"
	ReasonInvalidPaymentRequirements Reason = "invalid_payment_requirements"
	ReasonInvalidScheme              Reason = "invalid_scheme"
	ReasonUnsupportedScheme          Reason = "unsupported_scheme"
	ReasonInvalidVersion             Reason = "invalid_x402_version"
	ReasonInvalidTransactionState    Reason = "invalid_transaction_state"
	ReasonUnexpectedVerifyError      Reason = "unexpected_verify_error"
	ReasonUnexpectedSettleError      Reason = "unexpected_settle_error"

	ReasonExactScheme               Reason = "invalid_exact_evm_scheme"
	ReasonExactNetworkMismatch      Reason = "invalid_exact_evm_network_mismatch"
	ReasonExactMissingDomain        Reason = "invalid_exact_evm_missing_eip712_domain"
	ReasonExactRecipientMismatch    Reason = "invalid_exact_evm_recipient_mismatch"
	ReasonExactSignature            Reason = "invalid_exact_evm_signature"
	ReasonExactValidBefore          Reason = "invalid_exact_evm_payload_authorization_valid_before"
	ReasonExactValidAfter           Reason = "invalid_exact_evm_payload_authorization_valid_after"
	ReasonExactValueMismatch        Reason = "invalid_exact_evm_payload_authorization_value_mismatch"
	ReasonExactUndeployedWallet     Reason = "invalid_exact_evm_payload_undeployed_smart_wallet"
	ReasonExactTokenNameMismatch    Reason = "invalid_exact_evm_token_name_mismatch"
	ReasonExactTokenVersionMismatch Reason = "invalid_exact_evm_token_version_mismatch"
	ReasonExactEIP3009Unsupported   Reason = "invalid_exact_evm_eip3009_not_supported"
	ReasonExactNonceUsed            Reason = "invalid_exact_evm_nonce_already_used"
	ReasonExactInsufficientBalance  Reason = "invalid_exact_evm_insufficient_balance"
	ReasonExactSimulationFailed     Reason = "invalid_exact_evm_transaction_simulation_failed"
	ReasonExactTransactionFailed    Reason = "invalid_exact_evm_transaction_failed"
	ReasonExactTransferEvent        Reason = "invalid_exact_evm_transfer_event_mismatch"
	ReasonExactPayload              Reason = "invalid_exact_evm_payload"
	ReasonAssetNotContract          Reason = "asset_not_deployed_contract"
	ReasonSettlementPending         Reason = "settlement_pending"

	// ReasonDeferralLimit is quid's own: a deferral refused because it would take the payer's
	// unsettled deferred payments past the seller's credit cap. The payment itself is fine and
	// may be settled before serving instead.
	ReasonDeferralLimit Reason = "quid_deferral_limit_exceeded"

	// Server-side reasons put in PaymentRequired.error by resource servers.
	ReasonPaymentRequired Reason = "Payment required"
	ReasonNoMatch         Reason = "No matching payment requirements"
)

// Error is a protocol failure: a reason string for machines and an optional message for people.
// The message never holds secrets; it may hold the token's revert text.
type Error struct {
	Reason  Reason
	Message string
	// Err is the cause, if any: ErrMalformed for input that did not decode.
	Err error
}

func (e *Error) Unwrap() error { return e.Err }

func (e *Error) Error() string {
	if e.Message == "" {
		return string(e.Reason)
	}
	return string(e.Reason) + ": " + e.Message
}

// Errorf returns an *Error with reason and a formatted message.
func Errorf(reason Reason, format string, args ...any) *Error {
	return &Error{Reason: reason, Message: fmt.Sprintf(format, args...)}
}
