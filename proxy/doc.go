// Package proxy is the seller's paywall as a reverse proxy: a YAML file puts prices on the
// routes of any HTTP upstream, and the proxy charges for them with package paywall before
// forwarding. It owns the file's format and validation (every error with its line), route
// matching, forwarding (streaming responses pass through), reloading without dropping requests,
// and the admin API.
//
// It never forwards a buyer's payment headers upstream, never logs header values or secrets,
// and never settles a payment for a response the upstream failed.
package proxy
