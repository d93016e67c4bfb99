package x402

import (
	"encoding/json"
	"reflect"
)

// Match reports whether a buyer's accepted requirements are the seller's required ones, by the
// rule of the current TypeScript server: scheme, network, asset, amount, payTo and
// maxTimeoutSeconds equal as strings, and every member of the required extra present in the
// accepted extra with an equal value (the buyer may add members).
//
// For version 1 payloads, which carry only scheme and network, only those two are compared.
func Match(version int, required, accepted PaymentRequirements) bool {
	if required.Scheme != accepted.Scheme || required.Network != accepted.Network {
		return false
	}
	if version == V1 {
		return true
	}
	if required.Amount != accepted.Amount || required.Asset != accepted.Asset ||
		required.PayTo != accepted.PayTo || required.MaxTimeoutSeconds != accepted.MaxTimeoutSeconds {
		return false
	}
	return extraSubset(required.Extra, accepted.Extra)
}

// FindMatch returns the first of required that the payload accepted.
func FindMatch(p *PaymentPayload, required []PaymentRequirements) (PaymentRequirements, bool) {
	if p == nil || p.Accepted == nil {
		return PaymentRequirements{}, false
	}
	for _, r := range required {
		if Match(p.X402Version, r, *p.Accepted) {
			return r, true
		}
	}
	return PaymentRequirements{}, false
}

func extraSubset(sub, super Object) bool {
	for k, want := range sub {
		got, ok := super[k]
		if !ok || !jsonEqual(want, got) {
			return false
		}
	}
	return true
}

// jsonEqual compares two JSON values semantically: member order and white space do not matter.
func jsonEqual(a, b json.RawMessage) bool {
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}
