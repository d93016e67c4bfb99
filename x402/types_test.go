package x402_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/quidpay/quid/x402"
)

func TestObjectString(t *testing.T) {
	t.Parallel()
	o := x402.Object{
		"name":   json.RawMessage(`"USD Coin"`),
		"num":    json.RawMessage(`2`),
		"null":   json.RawMessage(`null`),
		"broken": json.RawMessage(`"unterminated`),
	}
	o.SetString("quote", `a "quoted" <tag> & \ slash`)
	tests := []struct {
		key  string
		want string
		ok   bool
	}{
		{"name", "USD Coin", true},
		{"quote", `a "quoted" <tag> & \ slash`, true},
		{"num", "", false},
		{"null", "", false},
		{"broken", "", false},
		{"absent", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.key, func(t *testing.T) {
			t.Parallel()
			got, ok := o.String(tc.key)
			if got != tc.want || ok != tc.ok {
				t.Fatalf("String(%q) = %q, %v; want %q, %v", tc.key, got, ok, tc.want, tc.ok)
			}
		})
	}
	var nilObj x402.Object
	if _, ok := nilObj.String("name"); ok {
		t.Fatal("nil Object has a member")
	}
}

func TestExactEVM(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		payload string
		ok      bool
	}{
		{"valid", string(mustMarshal(t, devExactPayload())), true},
		{"missing", "", false},
		{"null", "null", false},
		{"array", "[]", false},
		{"string", `"0x00"`, false},
		{"no signature", `{"authorization":{"from":"` + devPayer + `"}}`, false},
		{"empty signature", `{"authorization":{},"signature":""}`, false},
		{"authorization not an object", `{"authorization":"x","signature":"0x00"}`, false},
		{"value as number", `{"authorization":{"value":1000},"signature":"0x00"}`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := &x402.PaymentPayload{X402Version: 2, Payload: json.RawMessage(tc.payload)}
			ex, err := p.ExactEVM()
			if !tc.ok {
				wantMalformed(t, err, x402.ReasonInvalidPayload)
				return
			}
			if err != nil || ex != devExactPayload() {
				t.Fatalf("ExactEVM = %+v, %v", ex, err)
			}
		})
	}
}

func TestError(t *testing.T) {
	t.Parallel()
	e := x402.Errorf(x402.ReasonExactValueMismatch, "value %s != amount %s", "999", "1000")
	if e.Error() != "invalid_exact_evm_payload_authorization_value_mismatch: value 999 != amount 1000" {
		t.Fatalf("Error() = %q", e.Error())
	}
	if errors.Is(e, x402.ErrMalformed) {
		t.Fatal("a check failure claims to be malformed input")
	}
	bare := &x402.Error{Reason: x402.ReasonExactSignature}
	if bare.Error() != "invalid_exact_evm_signature" {
		t.Fatalf("Error() = %q", bare.Error())
	}
	var target *x402.Error
	wrapped := errors.Join(errors.New("context"), e)
	if !errors.As(wrapped, &target) || target.Reason != x402.ReasonExactValueMismatch {
		t.Fatal("errors.As does not find the *Error")
	}
}

// TestReasonStrings pins the reason strings other stacks switch on (reference §1.5). A typo
// here silently breaks interoperability, so each is spelled out independently of reason.go.
func TestReasonStrings(t *testing.T) {
	t.Parallel()
	want := map[x402.Reason]string{
		x402.ReasonInsufficientFunds:          "insufficient_funds",
		x402.ReasonInvalidNetwork:             "invalid_network",
		x402.ReasonInvalidPayload:             "invalid_payload",
		x402.ReasonInvalidPaymentRequirements: "invalid_payment_requirements",
		x402.ReasonInvalidScheme:              "invalid_scheme",
		x402.ReasonUnsupportedScheme:          "unsupported_scheme",
		x402.ReasonInvalidVersion:             "invalid_x402_version",
		x402.ReasonInvalidTransactionState:    "invalid_transaction_state",
		x402.ReasonUnexpectedVerifyError:      "unexpected_verify_error",
		x402.ReasonUnexpectedSettleError:      "unexpected_settle_error",
		x402.ReasonExactScheme:                "invalid_exact_evm_scheme",
		x402.ReasonExactNetworkMismatch:       "invalid_exact_evm_network_mismatch",
		x402.ReasonExactMissingDomain:         "invalid_exact_evm_missing_eip712_domain",
		x402.ReasonExactRecipientMismatch:     "invalid_exact_evm_recipient_mismatch",
		x402.ReasonExactSignature:             "invalid_exact_evm_signature",
		x402.ReasonExactValidBefore:           "invalid_exact_evm_payload_authorization_valid_before",
		x402.ReasonExactValidAfter:            "invalid_exact_evm_payload_authorization_valid_after",
		x402.ReasonExactValueMismatch:         "invalid_exact_evm_payload_authorization_value_mismatch",
		x402.ReasonExactUndeployedWallet:      "invalid_exact_evm_payload_undeployed_smart_wallet",
		x402.ReasonExactTokenNameMismatch:     "invalid_exact_evm_token_name_mismatch",
		x402.ReasonExactTokenVersionMismatch:  "invalid_exact_evm_token_version_mismatch",
		x402.ReasonExactEIP3009Unsupported:    "invalid_exact_evm_eip3009_not_supported",
		x402.ReasonExactNonceUsed:             "invalid_exact_evm_nonce_already_used",
		x402.ReasonExactInsufficientBalance:   "invalid_exact_evm_insufficient_balance",
		x402.ReasonExactSimulationFailed:      "invalid_exact_evm_transaction_simulation_failed",
		x402.ReasonExactTransactionFailed:     "invalid_exact_evm_transaction_failed",
		x402.ReasonExactTransferEvent:         "invalid_exact_evm_transfer_event_mismatch",
		x402.ReasonExactPayload:               "invalid_exact_evm_payload",
		x402.ReasonAssetNotContract:           "asset_not_deployed_contract",
		x402.ReasonSettlementPending:          "settlement_pending",
		x402.ReasonPaymentRequired:            "Payment required",
		x402.ReasonNoMatch:                    "No matching payment requirements",
	}
	for r, s := range want {
		if string(r) != s {
			t.Errorf("reason %q, want %q", r, s)
		}
	}
	if x402.V1ErrorPaymentRequired != "X-PAYMENT header is required" {
		t.Errorf("V1ErrorPaymentRequired = %q", x402.V1ErrorPaymentRequired)
	}
	headers := map[string]string{
		x402.HeaderPaymentRequired: "PAYMENT-REQUIRED", x402.HeaderPaymentSignature: "PAYMENT-SIGNATURE",
		x402.HeaderPaymentResponse: "PAYMENT-RESPONSE", x402.HeaderPaymentV1: "X-PAYMENT",
		x402.HeaderPaymentV1Response: "X-PAYMENT-RESPONSE",
	}
	for got, want := range headers {
		if got != want {
			t.Errorf("header %q, want %q", got, want)
		}
	}
}
