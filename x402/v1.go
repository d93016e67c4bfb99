package x402

import "encoding/json"

// V1Requirements is a payment option of x402 version 1, which puts the resource description in
// every option and names networks from a fixed table.
type V1Requirements struct {
	Scheme            string          `json:"scheme"`
	Network           string          `json:"network"`
	MaxAmountRequired string          `json:"maxAmountRequired"`
	Resource          string          `json:"resource"`
	Description       string          `json:"description"`
	MimeType          string          `json:"mimeType"`
	OutputSchema      json.RawMessage `json:"outputSchema"`
	PayTo             string          `json:"payTo"`
	MaxTimeoutSeconds int64           `json:"maxTimeoutSeconds"`
	Asset             string          `json:"asset"`
	Extra             Object          `json:"extra"`
}

// V1PaymentRequired is the JSON body of a v1 402.
type V1PaymentRequired struct {
	X402Version int              `json:"x402Version"`
	Error       string           `json:"error"`
	Accepts     []V1Requirements `json:"accepts"`
}

// V1PaymentPayload is the X-PAYMENT header of v1.
type V1PaymentPayload struct {
	X402Version int             `json:"x402Version"`
	Scheme      string          `json:"scheme"`
	Network     string          `json:"network"`
	Payload     json.RawMessage `json:"payload"`
}

// V1ErrorPaymentRequired is the error v1 servers put in an unpaid 402.
const V1ErrorPaymentRequired = "X-PAYMENT header is required"

// ToV1 writes v2 requirements in v1 form for resource. It fails when v1 has no name for the
// network.
func (r PaymentRequirements) ToV1(resource ResourceInfo) (V1Requirements, bool) {
	name, ok := r.Network.V1Name()
	if !ok {
		return V1Requirements{}, false
	}
	extra := r.Extra
	if extra == nil {
		extra = Object{}
	}
	return V1Requirements{
		Scheme:            r.Scheme,
		Network:           name,
		MaxAmountRequired: r.Amount,
		Resource:          resource.URL,
		Description:       resource.Description,
		MimeType:          resource.MimeType,
		OutputSchema:      json.RawMessage("{}"), // x402-fetch 1.x parses it as an optional object: null is refused
		PayTo:             r.PayTo,
		MaxTimeoutSeconds: r.MaxTimeoutSeconds,
		Asset:             r.Asset,
		Extra:             extra,
	}, true
}

// ToV2 returns v1 requirements in the v2 form quid works with internally.
func (r V1Requirements) ToV2() (PaymentRequirements, error) {
	n, ok := NetworkFromV1(r.Network)
	if !ok {
		return PaymentRequirements{}, malformed(ReasonInvalidNetwork, "unknown v1 network")
	}
	return PaymentRequirements{
		Scheme:            r.Scheme,
		Network:           n,
		Amount:            r.MaxAmountRequired,
		Asset:             r.Asset,
		PayTo:             r.PayTo,
		MaxTimeoutSeconds: r.MaxTimeoutSeconds,
		Extra:             r.Extra,
	}, nil
}

// DecodeXPayment decodes a v1 X-PAYMENT header into the v2 form. Accepted then holds only what
// v1 carries, the scheme and network; v1 matches requirements on those two fields alone.
func DecodeXPayment(value string) (*PaymentPayload, error) {
	var p V1PaymentPayload
	if err := decodeHeader(value, &p); err != nil {
		return nil, err
	}
	return p.toV2()
}

func (p V1PaymentPayload) toV2() (*PaymentPayload, error) {
	if p.X402Version != V1 {
		return nil, malformed(ReasonInvalidVersion, "X-PAYMENT must be x402 version 1")
	}
	n, ok := NetworkFromV1(p.Network)
	if !ok {
		return nil, malformed(ReasonInvalidNetwork, "unknown v1 network")
	}
	v2 := &PaymentPayload{
		X402Version: V1,
		Accepted:    &PaymentRequirements{Scheme: p.Scheme, Network: n},
		Payload:     p.Payload,
	}
	if err := v2.check(V1); err != nil {
		return nil, err
	}
	return v2, nil
}
