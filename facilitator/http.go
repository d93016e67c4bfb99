package facilitator

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/quidpay/quid/x402"
)

// Handler returns the facilitator's HTTP API:
//
//	POST /verify     {x402Version, paymentPayload, paymentRequirements} → VerifyResponse
//	POST /settle     same body → SettleResponse
//	GET  /supported  → SupportedResponse
//	GET  /discovery/resources?type=&payTo=&scheme=&network=&extensions=&limit=&offset=
//	                 → DiscoveryResponse: the routes verified payments declared (bazaar)
//	GET  /healthz    → {"ok":true,"network":…,"block":…}, 503 when the chain does not answer
//
// Invalid payments are answered 200 with isValid or success false and the reason, as the x402
// specification and the TypeScript clients expect; an undecodable body is 400 with the same
// shape; a chain that cannot be asked is 503.
func (f *Facilitator) Handler() http.Handler {
	mux := http.NewServeMux()
	cat := newCatalog(f.now)
	mux.HandleFunc("POST /verify", func(w http.ResponseWriter, r *http.Request) {
		p, req, err := readRequest(w, r)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, invalidVerify(err))
			return
		}
		resp, err := f.Verify(r.Context(), p, req)
		if err != nil {
			writeJSON(w, http.StatusServiceUnavailable, &x402.VerifyResponse{InvalidReason: x402.ReasonUnexpectedVerifyError, InvalidMessage: "chain unavailable"})
			return
		}
		cat.afterVerify(w, p, req, resp)
		writeJSON(w, http.StatusOK, resp)
	})
	mux.HandleFunc("POST /settle", func(w http.ResponseWriter, r *http.Request) {
		p, req, err := readRequest(w, r)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, invalidSettle(err, f.network))
			return
		}
		resp, err := f.Settle(r.Context(), p, req)
		if err != nil {
			writeJSON(w, http.StatusServiceUnavailable, &x402.SettleResponse{ErrorReason: x402.ReasonUnexpectedSettleError, ErrorMessage: "chain unavailable", Network: f.network})
			return
		}
		writeJSON(w, http.StatusOK, resp)
	})
	mux.HandleFunc("GET /supported", func(w http.ResponseWriter, r *http.Request) {
		s, _ := f.Supported(r.Context())
		s.Extensions = append(s.Extensions, ExtensionBazaar) // the catalog lives with this handler
		writeJSON(w, http.StatusOK, s)
	})
	mux.HandleFunc("GET /discovery/resources", cat.serveResources)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		head, err := f.cfg.Chain.HeaderByNumber(ctx, nil)
		if err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"ok": false, "network": f.network, "error": "chain unavailable"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"ok": true, "network": f.network, "block": head.Number.Uint64(), "relayer": f.Relayer().Hex()})
	})
	return mux
}

func readRequest(w http.ResponseWriter, r *http.Request) (*x402.PaymentPayload, x402.PaymentRequirements, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, x402.MaxRequestBytes))
	if err != nil {
		return nil, x402.PaymentRequirements{}, &x402.Error{Reason: x402.ReasonInvalidPayload, Message: "request body too large or unreadable"}
	}
	return x402.DecodeFacilitatorRequest(body)
}

func reasonOf(err error) *x402.Error {
	var xe *x402.Error
	if errors.As(err, &xe) {
		return xe
	}
	return &x402.Error{Reason: x402.ReasonInvalidPayload}
}

func invalidVerify(err error) *x402.VerifyResponse {
	xe := reasonOf(err)
	return &x402.VerifyResponse{InvalidReason: xe.Reason, InvalidMessage: xe.Message}
}

func invalidSettle(err error, n x402.Network) *x402.SettleResponse {
	xe := reasonOf(err)
	return &x402.SettleResponse{ErrorReason: xe.Reason, ErrorMessage: xe.Message, Network: n}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := x402.Marshal(v)
	if err != nil {
		http.Error(w, `{"error":"encoding response"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(b)
}
