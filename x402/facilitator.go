package x402

import "encoding/json"

// MaxRequestBytes bounds the body of a facilitator request.
const MaxRequestBytes = 64 << 10

// DecodeFacilitatorRequest decodes the body of POST /verify or /settle, of either version, into
// the v2 form. The version is the payload's own, as the reference facilitators read it.
func DecodeFacilitatorRequest(body []byte) (*PaymentPayload, PaymentRequirements, error) {
	if len(body) > MaxRequestBytes {
		return nil, PaymentRequirements{}, malformed(ReasonInvalidPayload, "request too large")
	}
	var req FacilitatorRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, PaymentRequirements{}, malformed(ReasonInvalidPayload, "request is not JSON")
	}
	var probe struct {
		X402Version int `json:"x402Version"`
	}
	if len(req.PaymentPayload) == 0 || isNull(req.PaymentPayload) || json.Unmarshal(req.PaymentPayload, &probe) != nil {
		return nil, PaymentRequirements{}, malformed(ReasonInvalidPayload, "missing paymentPayload")
	}
	switch probe.X402Version {
	case V2:
		var p PaymentPayload
		var r PaymentRequirements
		if json.Unmarshal(req.PaymentPayload, &p) != nil {
			return nil, r, malformed(ReasonInvalidPayload, "paymentPayload is not a v2 payload")
		}
		if err := p.check(V2); err != nil {
			return nil, r, err
		}
		if len(req.PaymentRequirements) == 0 || isNull(req.PaymentRequirements) || json.Unmarshal(req.PaymentRequirements, &r) != nil {
			return nil, r, malformed(ReasonInvalidPaymentRequirements, "paymentRequirements is not v2 requirements")
		}
		return &p, r, nil
	case V1:
		var p V1PaymentPayload
		var r1 V1Requirements
		if json.Unmarshal(req.PaymentPayload, &p) != nil {
			return nil, PaymentRequirements{}, malformed(ReasonInvalidPayload, "paymentPayload is not a v1 payload")
		}
		if len(req.PaymentRequirements) == 0 || isNull(req.PaymentRequirements) || json.Unmarshal(req.PaymentRequirements, &r1) != nil {
			return nil, PaymentRequirements{}, malformed(ReasonInvalidPaymentRequirements, "paymentRequirements is not v1 requirements")
		}
		r, err := r1.ToV2()
		if err != nil {
			return nil, r, err
		}
		v2, err := p.toV2()
		if err != nil {
			return nil, r, err
		}
		// v1 describes the resource in the requirements; keep it where EncodeFacilitatorRequest
		// looks for it, so that a request forwarded in v1 form still names its resource.
		if r1.Resource != "" || r1.Description != "" || r1.MimeType != "" {
			v2.Resource = &ResourceInfo{URL: r1.Resource, Description: r1.Description, MimeType: r1.MimeType}
		}
		return v2, r, nil
	default:
		return nil, PaymentRequirements{}, malformed(ReasonInvalidVersion, "unsupported x402Version")
	}
}

// EncodeFacilitatorRequest writes the body of POST /verify or /settle for a payload in the v2
// form. A version 1 payload is written back in v1 form, its requirements describing p.Resource.
func EncodeFacilitatorRequest(p *PaymentPayload, r PaymentRequirements) ([]byte, error) {
	if p.X402Version == V1 {
		if p.Accepted == nil {
			return nil, malformed(ReasonInvalidPayload, "missing accepted requirements")
		}
		name, ok := p.Accepted.Network.V1Name()
		if !ok {
			return nil, malformed(ReasonInvalidNetwork, "network has no v1 name")
		}
		var resource ResourceInfo
		if p.Resource != nil {
			resource = *p.Resource
		}
		r1, ok := r.ToV1(resource)
		if !ok {
			return nil, malformed(ReasonInvalidNetwork, "network has no v1 name")
		}
		return marshal(struct {
			X402Version         int              `json:"x402Version"`
			PaymentPayload      V1PaymentPayload `json:"paymentPayload"`
			PaymentRequirements V1Requirements   `json:"paymentRequirements"`
		}{V1, V1PaymentPayload{X402Version: V1, Scheme: p.Accepted.Scheme, Network: name, Payload: p.Payload}, r1})
	}
	return marshal(struct {
		X402Version         int                 `json:"x402Version"`
		PaymentPayload      *PaymentPayload     `json:"paymentPayload"`
		PaymentRequirements PaymentRequirements `json:"paymentRequirements"`
	}{p.X402Version, p, r})
}
