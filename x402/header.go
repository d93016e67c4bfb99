package x402

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
)

// MaxHeaderBytes bounds the encoded size of any x402 header quid decodes. Real payloads are well
// under 2 KiB; the bound keeps a hostile header from costing more than a few allocations.
const MaxHeaderBytes = 16 << 10

// marshal encodes v as JSON the way JavaScript's JSON.stringify does for these types: no HTML
// escaping and no trailing newline, so headers match the reference implementations byte for byte.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

// Marshal is the JSON encoding quid uses for every x402 body and header.
func Marshal(v any) ([]byte, error) { return marshal(v) }

// EncodeHeader returns v as the value of an x402 header: standard base64, with padding, of its
// JSON.
func EncodeHeader(v any) (string, error) {
	b, err := marshal(v)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// decodeHeader undoes EncodeHeader into v. Only the standard alphabet with padding is accepted,
// as the reference clients produce; surrounding spaces are ignored. The JSON must be an object:
// a bare null would otherwise decode into v's zero value.
func decodeHeader(value string, v any) error {
	value = strings.TrimSpace(value)
	if value == "" {
		return malformed(ReasonInvalidPayload, "empty header")
	}
	if len(value) > MaxHeaderBytes {
		return malformed(ReasonInvalidPayload, "header too large")
	}
	// The decoder skips CR and LF even in strict mode; they are not in the alphabet.
	if strings.ContainsAny(value, "\r\n") {
		return malformed(ReasonInvalidPayload, "header is not standard base64")
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(value)
	if err != nil {
		return malformed(ReasonInvalidPayload, "header is not standard base64")
	}
	if isNull(raw) {
		return malformed(ReasonInvalidPayload, "header is JSON null")
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return malformed(ReasonInvalidPayload, "header is not the expected JSON")
	}
	return nil
}

// DecodePaymentRequired decodes a PAYMENT-REQUIRED header.
func DecodePaymentRequired(value string) (*PaymentRequired, error) {
	var pr PaymentRequired
	if err := decodeHeader(value, &pr); err != nil {
		return nil, err
	}
	if pr.X402Version != V2 {
		return nil, malformed(ReasonInvalidVersion, "PAYMENT-REQUIRED must be x402 version 2")
	}
	return &pr, nil
}

// DecodePaymentSignature decodes a v2 PAYMENT-SIGNATURE header. The result has a non-nil
// Accepted and a non-empty Payload.
func DecodePaymentSignature(value string) (*PaymentPayload, error) {
	var p PaymentPayload
	if err := decodeHeader(value, &p); err != nil {
		return nil, err
	}
	if err := p.check(V2); err != nil {
		return nil, err
	}
	return &p, nil
}

func (p *PaymentPayload) check(version int) error {
	if p.X402Version != version {
		return malformed(ReasonInvalidVersion, "unexpected x402Version")
	}
	if p.Accepted == nil {
		return malformed(ReasonInvalidPayload, "missing accepted requirements")
	}
	if len(p.Payload) == 0 || isNull(p.Payload) {
		return malformed(ReasonInvalidPayload, "missing payload")
	}
	return nil
}

// DecodeSettleResponse decodes a PAYMENT-RESPONSE or X-PAYMENT-RESPONSE header.
func DecodeSettleResponse(value string) (*SettleResponse, error) {
	var s SettleResponse
	if err := decodeHeader(value, &s); err != nil {
		return nil, err
	}
	return &s, nil
}
