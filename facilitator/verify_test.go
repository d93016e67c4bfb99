package facilitator_test

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"math"
	"math/big"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/facilitator"
	"github.com/quidpay/quid/internal/quidtest"
	"github.com/quidpay/quid/x402"
)

// verifyCase is one payment presented to Verify. build makes the payload and the seller's
// requirements for a facilitator whose clock reads now.
type verifyCase struct {
	name  string
	build func(t *testing.T, now time.Time) (*x402.PaymentPayload, x402.PaymentRequirements)
	// reason is the expected invalidReason, "" for a valid payment.
	reason x402.Reason
	// payer is the payer the response must name ("" before the authorization is parsed).
	payer common.Address
	// clock, when set, picks the facilitator's time instead of the wall clock.
	clock func(t *testing.T) time.Time
	tune  func(*facilitator.Config)
	// message, when set, must appear in invalidMessage.
	message string
	// settle, when set, is the reason Settle gives instead of reason: Settle reserves the value
	// against the payer's balance before its own simulation (the gas estimate), so a payer with
	// nothing is refused for that first.
	settle x402.Reason
}

// TestVerifyReasons presents Verify, on a real chain, with payments that each fail one check of
// the exact scheme, in the order the reference facilitators run them. Most cases also fail a
// later check, so that a reordering of the checks shows up as a different reason.
func TestVerifyReasons(t *testing.T) {
	t.Parallel()
	env := quidtest.NewEnv(t, quidtest.Options{})
	req := env.Requirements(price, env.Seller.Address)
	buyer, payer := env.Buyer.Key, env.Buyer.Address
	dom := env.Token.Domain()
	broke := stranger(t)
	brokeAddr := crypto.PubkeyToAddress(broke.PublicKey)
	eoa := env.Chain.Accounts()[5].Address
	nobody := common.Address{}

	type mut = func(now time.Time, a *evm.Authorization)
	type reqMut = func(r *x402.PaymentRequirements)
	// sign signs an authorization from key for r under d, valid from 0 until now+60 and then
	// changed by m, and presents it with requirements r.
	sign := func(t *testing.T, now time.Time, key *ecdsa.PrivateKey, d evm.Domain, r x402.PaymentRequirements, m mut) (*x402.PaymentPayload, evm.Authorization) {
		a := quidtest.Authorization(t, key, r)
		a.ValidBefore = uint64(now.Unix()) + 60
		if m != nil {
			m(now, &a)
		}
		return quidtest.Payload(t, key, d, a, r), a
	}
	// with builds a case paying req changed by rm, from key, signed under the token's domain
	// changed by dm, its authorization changed by m.
	with := func(k *ecdsa.PrivateKey, rm reqMut, dm func(*evm.Domain), m mut) func(*testing.T, time.Time) (*x402.PaymentPayload, x402.PaymentRequirements) {
		return func(t *testing.T, now time.Time) (*x402.PaymentPayload, x402.PaymentRequirements) {
			r := req
			r.Extra = x402.Object{"name": req.Extra["name"], "version": req.Extra["version"]}
			if rm != nil {
				rm(&r)
			}
			d := dom
			if dm != nil {
				dm(&d)
			}
			p, _ := sign(t, now, k, d, r, m)
			return p, r
		}
	}
	// raw presents a payload whose wire fields are changed by wm after signing.
	raw := func(wm func(w *x402.ExactEVMAuthorization, sig *string), rm reqMut) func(*testing.T, time.Time) (*x402.PaymentPayload, x402.PaymentRequirements) {
		return func(t *testing.T, now time.Time) (*x402.PaymentPayload, x402.PaymentRequirements) {
			r := req
			if rm != nil {
				rm(&r)
			}
			a := quidtest.Authorization(t, buyer, req)
			a.ValidBefore = uint64(now.Unix()) + 60
			sig, err := evm.SignAuthorization(buyer, dom, &a)
			if err != nil {
				t.Fatal(err)
			}
			w, s := a.Wire(), sig.String()
			wm(&w, &s)
			return quidtest.RawPayload(t, w, s, r), r
		}
	}
	// body presents a payload whose scheme payload is the given JSON.
	body := func(payload string) func(*testing.T, time.Time) (*x402.PaymentPayload, x402.PaymentRequirements) {
		return func(t *testing.T, now time.Time) (*x402.PaymentPayload, x402.PaymentRequirements) {
			p := quidtest.RawPayload(t, x402.ExactEVMAuthorization{}, "0x", req)
			p.Payload = json.RawMessage(payload)
			return p, req
		}
	}
	// Defects used to prove the order of the checks.
	expired := func(now time.Time, a *evm.Authorization) { a.ValidBefore = uint64(now.Unix()) - 60 }
	otherNetwork := func(r *x402.PaymentRequirements) { r.Network = "eip155:8453" }
	highS := func(w *x402.ExactEVMAuthorization, sig *string) {
		s, _ := evm.ParseSignature(*sig)
		n := crypto.S256().Params().N
		new(big.Int).Sub(n, new(big.Int).SetBytes(s[32:64])).FillBytes(s[32:64])
		s[64] ^= 1 // 27 <-> 28: the same signer, malleated
		*sig = s.String()
	}

	// Authorizations spent on chain before the table runs.
	spent := func(t *testing.T) (*x402.PaymentPayload, evm.Authorization) {
		return sign(t, wallNow(), buyer, dom, req, nil)
	}
	settledP, _ := spent(t)
	if resp, err := env.Facilitator.Settle(context.Background(), settledP, req); err != nil || !resp.Success {
		t.Fatalf("settling the payment to replay: %+v %v", resp, err)
	}
	cancelledP, cancelledA := spent(t)
	env.Cancel(t, buyer, cancelledA)
	wrongName := req
	wrongName.Extra = x402.Object{"name": json.RawMessage(`"USD Coin"`), "version": req.Extra["version"]}
	wrongNameDom := dom
	wrongNameDom.Name = "USD Coin"
	cancelledWrongNameP, cancelledWrongNameA := sign(t, wallNow(), buyer, wrongNameDom, wrongName, nil)
	env.Cancel(t, buyer, cancelledWrongNameA)
	fixed := func(p *x402.PaymentPayload, r x402.PaymentRequirements) func(*testing.T, time.Time) (*x402.PaymentPayload, x402.PaymentRequirements) {
		return func(*testing.T, time.Time) (*x402.PaymentPayload, x402.PaymentRequirements) { return p, r }
	}
	// behindChain is a clock a second behind the chain's latest block, so that a validAfter of
	// "now" is already in the past for the token, whose check (block.timestamp > validAfter) is
	// strict, and the simulation does not mask the facilitator's own boundary.
	behindChain := func(t *testing.T) time.Time {
		h, err := env.Chain.Client().HeaderByNumber(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		return time.Unix(int64(h.Time)-1, 0)
	}

	// atChainHead is a clock that reads the chain's latest block time.
	atChainHead := func(t *testing.T) time.Time { return behindChain(t).Add(time.Second) }

	cases := []verifyCase{
		{name: "valid", build: with(buyer, nil, nil, nil), payer: payer},
		{name: "payTo in other letter case", build: func(t *testing.T, now time.Time) (*x402.PaymentPayload, x402.PaymentRequirements) {
			r := req
			r.PayTo = strings.ToLower(req.PayTo)
			p, _ := sign(t, now, buyer, dom, r, nil)
			return p, r
		}, payer: payer},

		// Envelope.
		{name: "no payload", build: func(*testing.T, time.Time) (*x402.PaymentPayload, x402.PaymentRequirements) { return nil, req },
			reason: x402.ReasonInvalidPayload},
		{name: "accepted missing", build: func(t *testing.T, now time.Time) (*x402.PaymentPayload, x402.PaymentRequirements) {
			p, r := with(buyer, nil, nil, nil)(t, now)
			p.Accepted = nil
			return p, r
		}, reason: x402.ReasonInvalidPayload},
		{name: "x402Version 3", build: func(t *testing.T, now time.Time) (*x402.PaymentPayload, x402.PaymentRequirements) {
			p, r := with(buyer, func(r *x402.PaymentRequirements) { r.Scheme = "upto" }, nil, nil)(t, now)
			p.X402Version = 3
			return p, r
		}, reason: x402.ReasonInvalidVersion},

		// 1. Scheme.
		{name: "scheme upto on both sides", build: with(buyer, func(r *x402.PaymentRequirements) {
			r.Scheme, r.Extra, r.Network = "upto", nil, "eip155:1"
		}, nil, nil), reason: x402.ReasonExactScheme},
		{name: "accepted scheme differs", build: func(t *testing.T, now time.Time) (*x402.PaymentPayload, x402.PaymentRequirements) {
			p, r := with(buyer, nil, nil, nil)(t, now)
			p.Accepted.Scheme = "upto"
			return p, r
		}, reason: x402.ReasonExactScheme},
		{name: "requirements scheme empty", build: func(t *testing.T, now time.Time) (*x402.PaymentPayload, x402.PaymentRequirements) {
			p, r := with(buyer, nil, nil, nil)(t, now)
			r.Scheme = ""
			return p, r
		}, reason: x402.ReasonExactScheme},

		// 2. EIP-712 domain in extra.
		{name: "extra without name", build: with(buyer, func(r *x402.PaymentRequirements) {
			delete(r.Extra, "name")
			r.Network = "eip155:1"
		}, nil, nil), reason: x402.ReasonExactMissingDomain},
		{name: "extra without version", build: with(buyer, func(r *x402.PaymentRequirements) { delete(r.Extra, "version") }, nil, nil),
			reason: x402.ReasonExactMissingDomain},
		{name: "extra name not a string", build: with(buyer, func(r *x402.PaymentRequirements) { r.Extra["name"] = json.RawMessage(`42`) }, nil, nil),
			reason: x402.ReasonExactMissingDomain},
		{name: "extra version null", build: with(buyer, func(r *x402.PaymentRequirements) { r.Extra["version"] = json.RawMessage(`null`) }, nil, nil),
			reason: x402.ReasonExactMissingDomain},
		{name: "no extra", build: with(buyer, func(r *x402.PaymentRequirements) { r.Extra = nil }, nil, nil),
			reason: x402.ReasonExactMissingDomain},

		// 3. Network of the payload against the requirements'.
		{name: "accepted network differs", build: func(t *testing.T, now time.Time) (*x402.PaymentPayload, x402.PaymentRequirements) {
			p, r := with(buyer, func(r *x402.PaymentRequirements) { r.Network = "eip155:1" }, nil, nil)(t, now)
			p.Accepted.Network = "eip155:8453"
			return p, r
		}, reason: x402.ReasonExactNetworkMismatch},

		// 4. A network this facilitator does not settle on.
		{name: "another EVM chain", build: with(buyer, func(r *x402.PaymentRequirements) {
			otherNetwork(r)
			r.Asset = "USDC"
		}, nil, nil), reason: x402.ReasonInvalidNetwork},
		{name: "not an EVM chain", build: with(buyer, func(r *x402.PaymentRequirements) {
			r.Network = "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"
		}, nil, nil), reason: x402.ReasonInvalidNetwork},
		{name: "chain id with leading zero", build: with(buyer, func(r *x402.PaymentRequirements) {
			r.Network = x402.Network("eip155:0" + strings.TrimPrefix(string(r.Network), "eip155:"))
		}, nil, nil), reason: x402.ReasonInvalidNetwork},

		// 5. The seller's own requirements.
		{name: "asset not an address", build: raw(func(w *x402.ExactEVMAuthorization, _ *string) { w.From = "0x12" },
			func(r *x402.PaymentRequirements) { r.Asset = "USDC" }), reason: x402.ReasonInvalidPaymentRequirements},
		{name: "asset 39 hex digits", build: with(buyer, func(r *x402.PaymentRequirements) { r.Asset = r.Asset[:41] }, nil, nil),
			reason: x402.ReasonInvalidPaymentRequirements},
		{name: "asset without 0x", build: with(buyer, func(r *x402.PaymentRequirements) { r.Asset = r.Asset[2:] }, nil, nil),
			reason: x402.ReasonInvalidPaymentRequirements},
		{name: "payTo empty", build: with(buyer, func(r *x402.PaymentRequirements) { r.PayTo = "" }, nil, nil),
			reason: x402.ReasonInvalidPaymentRequirements},
		{name: "payTo not hex", build: with(buyer, func(r *x402.PaymentRequirements) { r.PayTo = "0x" + strings.Repeat("g", 40) }, nil, nil),
			reason: x402.ReasonInvalidPaymentRequirements},
		{name: "amount empty", build: raw(func(*x402.ExactEVMAuthorization, *string) {}, func(r *x402.PaymentRequirements) { r.Amount = "" }),
			reason: x402.ReasonInvalidPaymentRequirements},
		{name: "amount negative", build: raw(func(*x402.ExactEVMAuthorization, *string) {}, func(r *x402.PaymentRequirements) { r.Amount = "-10000" }),
			reason: x402.ReasonInvalidPaymentRequirements},
		{name: "amount decimal", build: raw(func(*x402.ExactEVMAuthorization, *string) {}, func(r *x402.PaymentRequirements) { r.Amount = "0.01" }),
			reason: x402.ReasonInvalidPaymentRequirements},
		{name: "amount with leading zero", build: raw(func(*x402.ExactEVMAuthorization, *string) {}, func(r *x402.PaymentRequirements) { r.Amount = "010000" }),
			reason: x402.ReasonInvalidPaymentRequirements},
		{name: "amount above uint256", build: raw(func(*x402.ExactEVMAuthorization, *string) {}, func(r *x402.PaymentRequirements) { r.Amount = strings.Repeat("9", 78) }),
			reason: x402.ReasonInvalidPaymentRequirements},
		{name: "amount zero", build: with(buyer, func(r *x402.PaymentRequirements) { r.Amount = "0" }, nil, nil),
			reason: x402.ReasonInvalidPaymentRequirements},
		{name: "maxTimeoutSeconds zero", build: with(buyer, func(r *x402.PaymentRequirements) { r.MaxTimeoutSeconds = 0 }, nil, nil),
			reason: x402.ReasonInvalidPaymentRequirements},
		{name: "maxTimeoutSeconds negative", build: with(buyer, func(r *x402.PaymentRequirements) { r.MaxTimeoutSeconds = -60 }, nil, nil),
			reason: x402.ReasonInvalidPaymentRequirements},

		// 6. The scheme payload.
		{name: "payload null", build: body(`null`), reason: x402.ReasonExactPayload},
		{name: "payload an array", build: body(`[]`), reason: x402.ReasonExactPayload},
		{name: "payload a string", build: body(`"0x00"`), reason: x402.ReasonExactPayload},
		{name: "payload without signature", build: body(`{"authorization":{}}`), reason: x402.ReasonExactPayload},
		{name: "signature empty", build: raw(func(_ *x402.ExactEVMAuthorization, s *string) { *s = "" }, nil), reason: x402.ReasonExactPayload},
		{name: "from short, signature garbage", build: raw(func(w *x402.ExactEVMAuthorization, s *string) { w.From, *s = "0x12", "0xzz" }, nil),
			reason: x402.ReasonExactPayload},
		{name: "to empty", build: raw(func(w *x402.ExactEVMAuthorization, _ *string) { w.To = "" }, nil), reason: x402.ReasonExactPayload},
		{name: "value negative", build: raw(func(w *x402.ExactEVMAuthorization, _ *string) { w.Value = "-1" }, nil), reason: x402.ReasonExactPayload},
		{name: "value in exponent form", build: raw(func(w *x402.ExactEVMAuthorization, _ *string) { w.Value = "1e4" }, nil), reason: x402.ReasonExactPayload},
		{name: "validAfter empty", build: raw(func(w *x402.ExactEVMAuthorization, _ *string) { w.ValidAfter = "" }, nil), reason: x402.ReasonExactPayload},
		{name: "validAfter with leading zero", build: raw(func(w *x402.ExactEVMAuthorization, _ *string) { w.ValidAfter = "00" }, nil), reason: x402.ReasonExactPayload},
		{name: "validBefore not a number", build: raw(func(w *x402.ExactEVMAuthorization, _ *string) { w.ValidBefore = "soon" }, nil), reason: x402.ReasonExactPayload},
		{name: "validBefore beyond uint64", build: raw(func(w *x402.ExactEVMAuthorization, _ *string) { w.ValidBefore = "18446744073709551616" }, nil), reason: x402.ReasonExactPayload},
		{name: "nonce short", build: raw(func(w *x402.ExactEVMAuthorization, _ *string) { w.Nonce = "0x1234" }, nil), reason: x402.ReasonExactPayload},
		{name: "nonce without 0x", build: raw(func(w *x402.ExactEVMAuthorization, _ *string) { w.Nonce = w.Nonce[2:] + "00" }, nil), reason: x402.ReasonExactPayload},

		// 7. The signature.
		{name: "signature not hex, recipient wrong", build: raw(func(w *x402.ExactEVMAuthorization, s *string) {
			w.To = eoa.Hex()
			*s = "0x" + strings.Repeat("zz", 65)
		}, nil), reason: x402.ReasonExactSignature, payer: payer},
		{name: "signature 64 bytes", build: raw(func(_ *x402.ExactEVMAuthorization, s *string) { *s = (*s)[:130] }, nil),
			reason: x402.ReasonExactSignature, payer: payer},
		{name: "signature without 0x", build: raw(func(_ *x402.ExactEVMAuthorization, s *string) { *s = (*s)[2:] }, nil),
			reason: x402.ReasonExactSignature, payer: payer},
		{name: "signature v 29", build: raw(func(_ *x402.ExactEVMAuthorization, s *string) { *s = (*s)[:130] + "1d" }, nil),
			reason: x402.ReasonExactSignature, payer: payer},
		{name: "signature high s", build: raw(highS, nil), reason: x402.ReasonExactSignature, payer: payer},
		{name: "signature r zero", build: raw(func(_ *x402.ExactEVMAuthorization, s *string) { *s = "0x" + strings.Repeat("00", 32) + (*s)[66:] }, nil),
			reason: x402.ReasonExactSignature, payer: payer},
		{name: "signed by someone else", build: raw(func(w *x402.ExactEVMAuthorization, s *string) {
			a, _ := evm.ParseAuthorization(*w)
			sig, _ := evm.SignAuthorization(broke, dom, &a)
			*s = sig.String()
		}, nil), reason: x402.ReasonExactSignature, payer: payer},
		{name: "signed for another chain id", build: with(buyer, nil, func(d *evm.Domain) { d.ChainID = 8453 }, nil),
			reason: x402.ReasonExactSignature, payer: payer},
		{name: "signed for another token", build: with(buyer, nil, func(d *evm.Domain) { d.VerifyingContract = evm.USDCBase.Address }, nil),
			reason: x402.ReasonExactSignature, payer: payer},
		{name: "signed field changed after signing", build: raw(func(w *x402.ExactEVMAuthorization, _ *string) { w.Value = "1" }, nil),
			reason: x402.ReasonExactSignature, payer: payer},

		// 8. Recipient.
		{name: "recipient wrong, expired", build: with(buyer, nil, nil, func(now time.Time, a *evm.Authorization) {
			a.To = eoa
			expired(now, a)
		}), reason: x402.ReasonExactRecipientMismatch, payer: payer},

		// 9. validBefore: at least now+6, at most now+maxTimeoutSeconds+ClockSkew.
		{name: "expired, not yet valid, value wrong", build: with(buyer, nil, nil, func(now time.Time, a *evm.Authorization) {
			expired(now, a)
			a.ValidAfter = uint64(now.Unix()) + 10
			a.Value = evm.NewAmount(1)
		}), reason: x402.ReasonExactValidBefore, payer: payer},
		{name: "validBefore zero", build: with(buyer, nil, nil, func(_ time.Time, a *evm.Authorization) { a.ValidBefore = 0 }),
			reason: x402.ReasonExactValidBefore, payer: payer},
		{name: "validBefore now+5", build: with(buyer, nil, nil, func(now time.Time, a *evm.Authorization) { a.ValidBefore = uint64(now.Unix()) + 5 }),
			reason: x402.ReasonExactValidBefore, payer: payer},
		{name: "validBefore now+6 (inclusive)", build: with(buyer, nil, nil, func(now time.Time, a *evm.Authorization) { a.ValidBefore = uint64(now.Unix()) + 6 }),
			payer: payer},
		{name: "validBefore now+maxTimeout+default skew (inclusive)", build: with(buyer, nil, nil, func(now time.Time, a *evm.Authorization) {
			a.ValidBefore = uint64(now.Add(60*time.Second + facilitator.DefaultClockSkew).Unix())
		}), payer: payer},
		{name: "validBefore now+maxTimeout+default skew+1", build: with(buyer, nil, nil, func(now time.Time, a *evm.Authorization) {
			a.ValidBefore = uint64(now.Add(60*time.Second+facilitator.DefaultClockSkew).Unix()) + 1
		}), reason: x402.ReasonExactValidBefore, payer: payer},
		{name: "validBefore now+maxTimeout+configured skew (inclusive)", build: with(buyer, nil, nil, func(now time.Time, a *evm.Authorization) {
			a.ValidBefore = uint64(now.Unix()) + 60 + 10
		}), payer: payer, tune: func(c *facilitator.Config) { c.ClockSkew = 10 * time.Second }},
		{name: "validBefore now+maxTimeout+configured skew+1", build: with(buyer, nil, nil, func(now time.Time, a *evm.Authorization) {
			a.ValidBefore = uint64(now.Unix()) + 60 + 10 + 1
		}), reason: x402.ReasonExactValidBefore, payer: payer, tune: func(c *facilitator.Config) { c.ClockSkew = 10 * time.Second }},
		{name: "validBefore a day away", build: with(buyer, nil, nil, func(now time.Time, a *evm.Authorization) { a.ValidBefore = uint64(now.Unix()) + 86400 }),
			reason: x402.ReasonExactValidBefore, payer: payer},
		{name: "validBefore at the uint64 limit", build: with(buyer, nil, nil, func(_ time.Time, a *evm.Authorization) { a.ValidBefore = 1<<64 - 1 }),
			reason: x402.ReasonExactValidBefore, payer: payer},

		// 10. validAfter: at most now.
		{name: "validAfter now+1, value wrong", build: with(buyer, nil, nil, func(now time.Time, a *evm.Authorization) {
			a.ValidAfter = uint64(now.Unix()) + 1
			a.Value = evm.NewAmount(1)
		}), reason: x402.ReasonExactValidAfter, payer: payer},
		{name: "validAfter now (inclusive)", build: with(buyer, nil, nil, func(now time.Time, a *evm.Authorization) { a.ValidAfter = uint64(now.Unix()) }),
			payer: payer, clock: behindChain},
		{name: "validAfter now, chain head at now", build: with(buyer, nil, nil, func(now time.Time, a *evm.Authorization) { a.ValidAfter = uint64(now.Unix()) }),
			payer: payer, clock: atChainHead},

		// 11. Value, exactly.
		{name: "value below price, payer broke", build: with(broke, nil, nil, func(_ time.Time, a *evm.Authorization) { a.Value = evm.NewAmount(price - 1) }),
			reason: x402.ReasonExactValueMismatch, payer: brokeAddr},
		{name: "value above price", build: with(buyer, nil, nil, func(_ time.Time, a *evm.Authorization) { a.Value = evm.NewAmount(price + 1) }),
			reason: x402.ReasonExactValueMismatch, payer: payer},

		// 12. The asset must be a contract.
		{name: "asset an EOA, payer broke", build: with(broke, func(r *x402.PaymentRequirements) { r.Asset = eoa.Hex() },
			func(d *evm.Domain) { d.VerifyingContract = eoa }, nil), reason: x402.ReasonAssetNotContract, payer: brokeAddr},
		{name: "asset the zero address", build: with(buyer, func(r *x402.PaymentRequirements) { r.Asset = nobody.Hex() },
			func(d *evm.Domain) { d.VerifyingContract = nobody }, nil), reason: x402.ReasonAssetNotContract, payer: payer},

		// 13. Simulation, diagnosed: nonce state, then name, version, balance.
		{name: "nonce used by a settlement", build: fixed(settledP, req), reason: x402.ReasonExactNonceUsed, payer: payer},
		{name: "nonce cancelled", build: fixed(cancelledP, req), reason: x402.ReasonExactNonceUsed, payer: payer},
		{name: "nonce cancelled, token name wrong", build: fixed(cancelledWrongNameP, wrongName), reason: x402.ReasonExactNonceUsed, payer: payer},
		{name: "token name wrong, payer broke", build: with(broke, func(r *x402.PaymentRequirements) { r.Extra["name"] = wrongName.Extra["name"] },
			func(d *evm.Domain) { d.Name = "USD Coin" }, nil), reason: x402.ReasonExactTokenNameMismatch, payer: brokeAddr, message: "Quid Test USD",
			settle: x402.ReasonExactInsufficientBalance},
		{name: "token version wrong, payer broke", build: with(broke, func(r *x402.PaymentRequirements) { r.Extra["version"] = json.RawMessage(`"1"`) },
			func(d *evm.Domain) { d.Version = "1" }, nil), reason: x402.ReasonExactTokenVersionMismatch, payer: brokeAddr, message: `"2"`,
			settle: x402.ReasonExactInsufficientBalance},
		{name: "payer broke", build: with(broke, nil, nil, nil), reason: x402.ReasonExactInsufficientBalance, payer: brokeAddr},
		{name: "transfer to the zero address", build: with(buyer, func(r *x402.PaymentRequirements) { r.PayTo = nobody.Hex() }, nil, nil),
			reason: x402.ReasonExactSimulationFailed, payer: payer, message: "zero address"},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			now := wallNow()
			if tc.clock != nil {
				now = tc.clock(t)
			}
			f := newFacilitator(t, env, func(c *facilitator.Config) {
				c.Now = fixedClock(now)
				if tc.tune != nil {
					tc.tune(c)
				}
			})
			p, r := tc.build(t, now)
			resp, err := f.Verify(context.Background(), p, r)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if tc.reason == "" {
				if !resp.IsValid || resp.InvalidReason != "" {
					t.Fatalf("got %+v, want valid", resp)
				}
			} else if resp.IsValid || resp.InvalidReason != tc.reason {
				t.Fatalf("got %+v, want invalid %s", resp, tc.reason)
			}
			wantPayer := ""
			if tc.payer != (common.Address{}) {
				wantPayer = tc.payer.Hex()
			}
			if resp.Payer != wantPayer {
				t.Errorf("payer %q, want %q", resp.Payer, wantPayer)
			}
			if !strings.Contains(resp.InvalidMessage, tc.message) {
				t.Errorf("invalidMessage %q does not mention %q", resp.InvalidMessage, tc.message)
			}
			// Settle re-verifies with the same checks (without the simulation, which settlement
			// replaces with its gas estimate): an invalid payment never reaches the chain.
			if tc.reason != "" {
				want := tc.reason
				if tc.settle != "" {
					want = tc.settle
				}
				s, err := f.Settle(context.Background(), p, r)
				requireFailure(t, s, err, want, "")
			}
		})
	}
}

// TestVerifyV1 verifies payments of x402 version 1, decoded from facilitator request bodies, on
// the chain v1 names base-sepolia.
func TestVerifyV1(t *testing.T) {
	t.Parallel()
	env := quidtest.NewEnv(t, quidtest.Options{ChainID: 84532})
	req := env.Requirements(price, env.Seller.Address)
	cases := []struct {
		name    string
		network string
		mutate  func(*evm.Authorization)
		reason  x402.Reason
	}{
		{"valid", "base-sepolia", nil, ""},
		{"value below maxAmountRequired", "base-sepolia", func(a *evm.Authorization) { a.Value = evm.NewAmount(price - 1) }, x402.ReasonExactValueMismatch},
		{"expired", "base-sepolia", func(a *evm.Authorization) { a.ValidBefore = uint64(time.Now().Unix()) - 1 }, x402.ReasonExactValidBefore},
		{"network it does not settle", "base", nil, x402.ReasonInvalidNetwork},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, r, err := x402.DecodeFacilitatorRequest(v1Body(t, env, req, tc.network, tc.mutate))
			if err != nil {
				t.Fatal(err)
			}
			if p.X402Version != x402.V1 || p.Accepted == nil || p.Accepted.Scheme != x402.SchemeExact {
				t.Fatalf("decoded %+v", p)
			}
			resp, err := env.Facilitator.Verify(context.Background(), p, r)
			if err != nil {
				t.Fatal(err)
			}
			payer := env.Buyer.Address.Hex()
			if tc.reason == x402.ReasonInvalidNetwork {
				payer = "" // refused before the authorization is read
			}
			if resp.IsValid != (tc.reason == "") || resp.InvalidReason != tc.reason || resp.Payer != payer {
				t.Fatalf("got %+v, want reason %q from %q", resp, tc.reason, payer)
			}
		})
	}
}

// TestVerifyHugeMaxTimeout: a seller's maxTimeoutSeconds too large for time.Duration must not
// turn into a bound in the past that blames the buyer's authorization.
func TestVerifyHugeMaxTimeout(t *testing.T) {
	t.Parallel()
	env := quidtest.NewEnv(t, quidtest.Options{})
	for _, timeout := range []int64{9_300_000_000, 1 << 40, math.MaxInt64} {
		t.Run(strconv.FormatInt(timeout, 10), func(t *testing.T) {
			req := env.Requirements(price, env.Seller.Address)
			req.MaxTimeoutSeconds = timeout
			p, _ := signed(t, env.Buyer.Key, env.Token.Domain(), req, func(a *evm.Authorization) {
				a.ValidBefore = uint64(time.Now().Unix()) + 60
			})
			v, err := env.Facilitator.Verify(context.Background(), p, req)
			if err != nil {
				t.Fatal(err)
			}
			if !v.IsValid && v.InvalidReason != x402.ReasonInvalidPaymentRequirements {
				t.Fatalf("got %+v; want valid or invalid_payment_requirements", v)
			}
		})
	}
}
