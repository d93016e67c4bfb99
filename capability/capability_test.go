package capability_test

import (
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	macaroon "gopkg.in/macaroon.v2"

	"github.com/quidpay/quid/capability"
)

var (
	keys  = capability.Keys{Secret: []byte("0123456789abcdef0123456789abcdef")}
	payer = common.HexToAddress("0x70997970C51812dc3A010C7d01b50e0d17dc79C8")
	now   = time.Unix(1_800_000_000, 0)
)

func mint(t *testing.T, caveats ...capability.Caveat) (capability.ID, string) {
	t.Helper()
	id, err := capability.NewID()
	if err != nil {
		t.Fatal(err)
	}
	base := []capability.Caveat{capability.Payer(payer), capability.Expires(now.Add(time.Hour)), capability.Scope("GET /data/*")}
	token, err := keys.Mint(id, append(base, caveats...)...)
	if err != nil {
		t.Fatal(err)
	}
	return id, token
}

func attenuate(t *testing.T, token string, caveats ...capability.Caveat) string {
	t.Helper()
	out, err := capability.Attenuate(token, caveats...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestVerify(t *testing.T) {
	t.Parallel()
	id, token := mint(t, capability.Uses(10))
	other := capability.Keys{Secret: []byte("another secret, another seller!!")}
	_, forged := func() (capability.ID, string) {
		tok, err := other.Mint(id, capability.Payer(payer), capability.Expires(now.Add(time.Hour)))
		if err != nil {
			t.Fatal(err)
		}
		return id, tok
	}()
	get := capability.Request{Method: "GET", Path: "/data/x", Now: now}
	for _, tc := range []struct {
		name  string
		token string
		req   capability.Request
		err   error
		uses  uint64
		exp   time.Time
	}{
		{"valid", token, get, nil, 10, now.Add(time.Hour)},
		{"expired", token, capability.Request{Method: "GET", Path: "/data/x", Now: now.Add(time.Hour)}, capability.ErrExpired, 0, time.Time{}},
		{"other method", token, capability.Request{Method: "POST", Path: "/data/x", Now: now}, capability.ErrOutOfScope, 0, time.Time{}},
		{"other path", token, capability.Request{Method: "GET", Path: "/admin", Now: now}, capability.ErrOutOfScope, 0, time.Time{}},
		{"forged with another key", forged, get, capability.ErrForged, 0, time.Time{}},
		{"fewer uses", attenuate(t, token, capability.Uses(2)), get, nil, 2, now.Add(time.Hour)},
		{"more uses cannot widen", attenuate(t, token, capability.Uses(50)), get, nil, 10, now.Add(time.Hour)},
		{"earlier expiry", attenuate(t, token, capability.Expires(now.Add(time.Minute))), get, nil, 10, now.Add(time.Minute)},
		{"earlier expiry passed", attenuate(t, token, capability.Expires(now.Add(-time.Second))), get, capability.ErrExpired, 0, time.Time{}},
		{"later expiry cannot widen", attenuate(t, token, capability.Expires(now.Add(48*time.Hour))),
			capability.Request{Method: "GET", Path: "/data/x", Now: now.Add(2 * time.Hour)}, capability.ErrExpired, 0, time.Time{}},
		{"narrower scope, inside", attenuate(t, token, capability.Scope("GET /data/x")), get, nil, 10, now.Add(time.Hour)},
		{"narrower scope, outside", attenuate(t, token, capability.Scope("GET /data/x")),
			capability.Request{Method: "GET", Path: "/data/y", Now: now}, capability.ErrOutOfScope, 0, time.Time{}},
		{"wider scope cannot widen", attenuate(t, token, capability.Scope("/*")),
			capability.Request{Method: "GET", Path: "/admin", Now: now}, capability.ErrOutOfScope, 0, time.Time{}},
		{"another payer", attenuate(t, token, capability.Payer(common.HexToAddress("0x01"))), get, capability.ErrMalformed, 0, time.Time{}},
		{"garbage", "!!!", get, capability.ErrMalformed, 0, time.Time{}},
		{"empty", "", get, capability.ErrMalformed, 0, time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g, err := keys.Verify(tc.token, tc.req)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if err != nil {
				return
			}
			if g.ID != id || g.Payer != payer || g.Uses != tc.uses || !g.Expires.Equal(tc.exp) {
				t.Fatalf("grant %+v, want id %v uses %d expires %v", g, id, tc.uses, tc.exp)
			}
			if g.Latest.Before(now.Add(time.Hour)) {
				t.Fatalf("Latest %v is before the minter's expiry", g.Latest)
			}
		})
	}
}

// A caveat the seller does not know refuses the token rather than being skipped: a holder
// cannot smuggle in a condition the seller would ignore.
func TestUnknownCaveatIsRefused(t *testing.T) {
	t.Parallel()
	_, token := mint(t)
	raw, _ := base64.RawURLEncoding.DecodeString(token)
	var m macaroon.Macaroon
	if err := m.UnmarshalBinary(raw); err != nil {
		t.Fatal(err)
	}
	for _, cond := range []string{"ip 10.0.0.1", "uses 0", "uses -1", "expires soon", "payer nobody", "scope admin", "novalue"} {
		t.Run(cond, func(t *testing.T) {
			t.Parallel()
			c := m.Clone()
			if err := c.AddFirstPartyCaveat([]byte(cond)); err != nil {
				t.Fatal(err)
			}
			b, _ := c.MarshalBinary()
			_, err := keys.Verify(base64.RawURLEncoding.EncodeToString(b), capability.Request{Method: "GET", Path: "/data/x", Now: now})
			if !errors.Is(err, capability.ErrUnknownCaveat) && !errors.Is(err, capability.ErrMalformed) {
				t.Fatalf("err %v, want unknown or malformed caveat", err)
			}
		})
	}
}

// Editing a caveat of a token breaks its signature chain.
func TestTamperedCaveatIsForged(t *testing.T) {
	t.Parallel()
	_, token := mint(t, capability.Uses(1))
	raw, _ := base64.RawURLEncoding.DecodeString(token)
	var m macaroon.Macaroon
	if err := m.UnmarshalBinary(raw); err != nil {
		t.Fatal(err)
	}
	// Rebuild the same id and caveats but with "uses 1000": without the root key the signature
	// cannot follow.
	fake, err := macaroon.New([]byte("guessed root key"), m.Id(), m.Location(), macaroon.V2)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range m.Caveats() {
		cond := string(c.Id)
		if cond == "uses 1" {
			cond = "uses 1000"
		}
		fake.AddFirstPartyCaveat([]byte(cond))
	}
	b, _ := fake.MarshalBinary()
	if _, err := keys.Verify(base64.RawURLEncoding.EncodeToString(b), capability.Request{Method: "GET", Path: "/data/x", Now: now}); !errors.Is(err, capability.ErrForged) {
		t.Fatalf("err %v, want ErrForged", err)
	}
}

func TestAttenuateRefusesBadCaveats(t *testing.T) {
	t.Parallel()
	_, token := mint(t)
	for _, c := range []capability.Caveat{capability.Scope("no-slash"), capability.Scope("GET /a b"), capability.Uses(0), capability.Scope("get /a")} {
		if _, err := capability.Attenuate(token, c); err == nil {
			t.Errorf("Attenuate(%q) accepted", c)
		}
	}
	many := make([]capability.Caveat, capability.MaxCaveats)
	for i := range many {
		many[i] = capability.Uses(5)
	}
	if _, err := capability.Attenuate(token, many...); !errors.Is(err, capability.ErrMalformed) {
		t.Fatalf("attenuating past MaxCaveats: %v", err)
	}
}

func TestInspect(t *testing.T) {
	t.Parallel()
	id, token := mint(t, capability.Uses(3))
	got, caveats, err := capability.Inspect(attenuate(t, token, capability.Uses(1)))
	if err != nil || got != id || len(caveats) != 5 || caveats[4].String() != "uses 1" {
		t.Fatalf("Inspect: %v %v %v", got, caveats, err)
	}
}

func FuzzVerify(f *testing.F) {
	id, _ := capability.NewID()
	token, err := keys.Mint(id, capability.Payer(payer), capability.Expires(now.Add(time.Hour)))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(token)
	f.Add("")
	f.Add("AgEEcXVpZAI")
	f.Add(token[:len(token)/2])
	f.Fuzz(func(t *testing.T, s string) {
		g, err := keys.Verify(s, capability.Request{Method: "GET", Path: "/data/x", Now: now})
		if err == nil && (g == nil || g.Payer == (common.Address{})) {
			t.Fatalf("accepted %q without a payer", s)
		}
		capability.Attenuate(s, capability.Uses(1))
		capability.Inspect(s)
	})
}
