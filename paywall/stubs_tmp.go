package paywall

import "net/http"

func (p *Paywall) serveQuote(w http.ResponseWriter, r *http.Request) {
	writeJSONError(w, http.StatusNotImplemented, "not implemented yet")
}

func (p *Paywall) serveDiscovery(w http.ResponseWriter, r *http.Request) {
	writeJSONError(w, http.StatusNotImplemented, "not implemented yet")
}
