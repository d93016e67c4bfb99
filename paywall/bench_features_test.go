package paywall_test

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/quidpay/quid/capability"
	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/paywall"
	"github.com/quidpay/quid/store"
)

// BenchmarkCapabilityRequest compares a request served on a capability token with an unpaid
// request answered 402, with use counts in memory and in a SQLite file.
func BenchmarkCapabilityRequest(b *testing.B) {
	db, err := store.Open(b.Context(), filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	payer := common.HexToAddress("0xA11CE")
	for _, bc := range []struct {
		name string
		uses paywall.CapabilityUses
	}{{"memory", &countingUses{}}, {"sqlite", db}} {
		pw, err := paywall.New(paywall.Config{Facilitator: refusingFacilitator{}, ChainID: 84532, PayTo: common.HexToAddress("0x01"),
			Secret: secret, Uses: bc.uses, Assets: evm.NewRegistry(evm.USDCBaseSepolia)})
		if err != nil {
			b.Fatal(err)
		}
		mw, err := pw.Charge(paywall.Route{Method: "GET", Path: "/r", Price: "$0.01", Capability: &paywall.CapabilityPolicy{}})
		if err != nil {
			b.Fatal(err)
		}
		h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
		id, _ := capability.NewID()
		token, err := capability.Keys{Secret: secret}.Mint(id, capability.Payer(payer), capability.Expires(time.Now().Add(time.Hour)), capability.Scope("GET /r"))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bc.name+"/token", func(b *testing.B) {
			for b.Loop() {
				req := httptest.NewRequest("GET", "/r", nil)
				req.Header.Set(paywall.HeaderCapability, token)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatal(rec.Code, rec.Body)
				}
			}
		})
		b.Run(bc.name+"/unpaid402", func(b *testing.B) {
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest("GET", "/r", nil))
				if rec.Code != http.StatusPaymentRequired {
					b.Fatal(rec.Code)
				}
			}
		})
	}
}
