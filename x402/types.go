package x402

import (
	"bytes"
	"encoding/json"
	"errors"
)

// Protocol versions.
const (
	V1 = 1
	V2 = 2
)

// SchemeExact is the scheme that moves exactly the required amount.
const SchemeExact = "exact"

// HTTP header names. Header lookups are case-insensitive; these spellings are the ones the
// reference implementations emit.
const (
	HeaderPaymentRequired   = "PAYMENT-REQUIRED"
	HeaderPaymentSignature  = "PAYMENT-SIGNATURE"
	HeaderPaymentResponse   = "PAYMENT-RESPONSE"
	HeaderPaymentV1         = "X-PAYMENT"
	HeaderPaymentV1Response = "X-PAYMENT-RESPONSE"
)

// Object is a JSON object whose members are kept as raw JSON, so that fields quid does not
// interpret (future extensions, scheme extras) survive a round trip unchanged.
type Object map[string]json.RawMessage

// String returns the member key as a string, and false when it is absent or not a string.
func (o Object) String(key string) (string, bool) {
	raw, ok := o[key]
	if !ok || isNull(raw) {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// SetString sets the member key to the JSON string s.
func (o Object) SetString(key, s string) {
	raw, _ := json.Marshal(s) // a Go string always marshals
	o[key] = raw
}

// ResourceInfo describes the resource a payment is for.
type ResourceInfo struct {
	URL         string   `json:"url"`
	Description string   `json:"description,omitempty"`
	MimeType    string   `json:"mimeType,omitempty"`
	ServiceName string   `json:"serviceName,omitempty"`
	Tags        []string `json:"tags,omitempty"`
	IconURL     string   `json:"iconUrl,omitempty"`
}

// PaymentRequirements is one way to pay for a resource (v2). Amount, asset and payTo stay
// strings on the wire because peers compare them as strings; package evm parses them.
type PaymentRequirements struct {
	Scheme            string  `json:"scheme"`
	Network           Network `json:"network"`
	Amount            string  `json:"amount"`
	Asset             string  `json:"asset"`
	PayTo             string  `json:"payTo"`
	MaxTimeoutSeconds int64   `json:"maxTimeoutSeconds"`
	// Extra always goes on the wire (the TypeScript type requires it), as {} when empty.
	Extra Object `json:"extra"`
}

// MarshalJSON emits extra as {} rather than null when it is empty.
func (r PaymentRequirements) MarshalJSON() ([]byte, error) {
	type plain PaymentRequirements
	if r.Extra == nil {
		r.Extra = Object{}
	}
	return marshal(plain(r))
}

// PaymentRequired is the body of a 402: the ways the resource can be paid for.
type PaymentRequired struct {
	X402Version int                   `json:"x402Version"`
	Error       string                `json:"error,omitempty"`
	Resource    *ResourceInfo         `json:"resource,omitempty"`
	Accepts     []PaymentRequirements `json:"accepts"`
	Extensions  Object                `json:"extensions,omitempty"`
}

// PaymentPayload is what a buyer sends back: the requirements it accepted and a scheme-specific
// proof of payment. Its members are in the order @x402/fetch writes them.
type PaymentPayload struct {
	X402Version int             `json:"x402Version"`
	Payload     json.RawMessage `json:"payload"`
	Extensions  Object          `json:"extensions,omitempty"`
	Resource    *ResourceInfo   `json:"resource,omitempty"`
	// Accepted is a pointer so that a missing or null value is told apart from an empty one.
	Accepted *PaymentRequirements `json:"accepted"`
}

// SettleResponse reports the outcome of a settlement (the PAYMENT-RESPONSE header, and the body of
// a facilitator's /settle).
type SettleResponse struct {
	Success      bool    `json:"success"`
	ErrorReason  Reason  `json:"errorReason,omitempty"`
	ErrorMessage string  `json:"errorMessage,omitempty"`
	Payer        string  `json:"payer,omitempty"`
	Transaction  string  `json:"transaction"`
	Network      Network `json:"network"`
	Amount       string  `json:"amount,omitempty"`
	Extensions   Object  `json:"extensions,omitempty"`
}

// VerifyResponse is the body of a facilitator's /verify.
type VerifyResponse struct {
	IsValid        bool   `json:"isValid"`
	InvalidReason  Reason `json:"invalidReason,omitempty"`
	InvalidMessage string `json:"invalidMessage,omitempty"`
	Payer          string `json:"payer,omitempty"`
	Extensions     Object `json:"extensions,omitempty"`
}

// FacilitatorRequest is the body of POST /verify and POST /settle. The payload and requirements
// stay raw here because their shape depends on the version; see DecodeFacilitatorRequest.
type FacilitatorRequest struct {
	X402Version         int             `json:"x402Version"`
	PaymentPayload      json.RawMessage `json:"paymentPayload"`
	PaymentRequirements json.RawMessage `json:"paymentRequirements"`
}

// SupportedKind is one (version, scheme, network) a facilitator can verify and settle.
type SupportedKind struct {
	X402Version int     `json:"x402Version"`
	Scheme      string  `json:"scheme"`
	Network     Network `json:"network"`
	Extra       Object  `json:"extra,omitempty"`
}

// SupportedResponse is the body of GET /supported.
type SupportedResponse struct {
	Kinds      []SupportedKind     `json:"kinds"`
	Extensions []string            `json:"extensions"`
	Signers    map[string][]string `json:"signers,omitempty"`
}

// ExactEVMPayload is the scheme payload of the EVM exact scheme over EIP-3009.
type ExactEVMPayload struct {
	Authorization ExactEVMAuthorization `json:"authorization"`
	Signature     string                `json:"signature"`
}

// ExactEVMAuthorization carries the fields of an EIP-3009 TransferWithAuthorization as the wire
// writes them: addresses in hex, numbers as base-10 strings, the nonce as 0x-prefixed hex.
type ExactEVMAuthorization struct {
	From        string `json:"from"`
	To          string `json:"to"`
	Value       string `json:"value"`
	ValidAfter  string `json:"validAfter"`
	ValidBefore string `json:"validBefore"`
	Nonce       string `json:"nonce"`
}

// ExactEVM decodes the payload as the EVM exact scheme's.
func (p *PaymentPayload) ExactEVM() (ExactEVMPayload, error) {
	var ex ExactEVMPayload
	if len(p.Payload) == 0 || isNull(p.Payload) {
		return ex, malformed(ReasonInvalidPayload, "missing payload")
	}
	if err := json.Unmarshal(p.Payload, &ex); err != nil {
		return ex, malformed(ReasonInvalidPayload, "payload is not an exact EVM payload")
	}
	if ex.Signature == "" {
		return ex, malformed(ReasonInvalidPayload, "missing signature")
	}
	return ex, nil
}

// ErrMalformed is wrapped by every decoding failure, so callers can tell garbage from a payment
// that decoded but failed a check.
var ErrMalformed = errors.New("x402: malformed")

// isNull reports whether raw JSON is the literal null, which json.Unmarshal accepts into any
// destination without complaint.
func isNull(raw []byte) bool { return string(bytes.TrimSpace(raw)) == "null" }

func malformed(reason Reason, msg string) *Error {
	return &Error{Reason: reason, Message: msg, Err: ErrMalformed}
}
