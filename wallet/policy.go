package wallet

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"golang.org/x/net/idna"
	"gopkg.in/yaml.v3"

	"github.com/quidpay/quid/evm"
)

// Policy is what the wallet's owner allows it to pay. Every amount is a decimal string in the
// asset's own units ("0.05" is five cents of a dollar stablecoin), converted with the decimals of
// the trusted asset registry, never the server's; limits apply to each asset separately. An empty
// key sets no limit of its kind. Everything the policy limits is enforced atomically in the
// wallet's Ledger, so it holds across goroutines and across processes sharing a store.
//
// Example (every key is optional):
//
//	max_payment: "0.10"          # the most one payment may cost
//	budgets:                     # rolling windows over every payment of the wallet
//	  hour: "1"
//	  day: "5"
//	  week: "20"
//	per_payee: {limit: "2", window: day}   # the most any one payee may receive per window
//	per_host:  {limit: "2", window: day}   # the most paid to any one host per window
//	allow:                       # when a list is not empty, only what it names may be paid
//	  hosts: [api.example.com, "*.example.org"]
//	  payees: []
//	  assets: []                 # asset addresses or registry symbols (USDC)
//	  networks: [eip155:8453]
//	block:                       # wins over allow
//	  hosts: []
//	  payees: []
//	  assets: []
//	  networks: []
//	approve_above: "1"           # larger payments wait for a human
//	approve_new_payees: true     # so does the first payment to a payee
//	approval_ttl: 24h            # how long an approval may be used
//	max_authorization: 5m        # the longest a signed authorization may stay valid
//	duplicate_window: 10m        # one payment per (method, URL, quote) in this window
//	alert_threshold: 0.8         # alert when a budget passes this fraction
//	prefer: [USDC, eip155:8453]  # options matching earlier entries first, then the cheapest
type Policy struct {
	// MaxPayment is the most one payment may cost.
	MaxPayment string `yaml:"max_payment"`
	// Budgets are rolling limits over all of the wallet's payments.
	Budgets Budgets `yaml:"budgets"`
	// PerPayee limits what each payee may receive within a window.
	PerPayee Cap `yaml:"per_payee"`
	// PerHost limits what is paid to each host within a window.
	PerHost Cap `yaml:"per_host"`
	// Allow, where a list is not empty, restricts payments to what it names.
	Allow Lists `yaml:"allow"`
	// Block refuses what it names; it wins over Allow.
	Block Lists `yaml:"block"`
	// ApproveAbove makes larger payments wait for a human's approval.
	ApproveAbove string `yaml:"approve_above"`
	// ApproveNewPayees makes the first payment to a payee wait for a human's approval.
	ApproveNewPayees bool `yaml:"approve_new_payees"`
	// ApprovalTTL is how long a pending or approved approval may be used. Default 24h.
	ApprovalTTL time.Duration `yaml:"approval_ttl"`
	// MaxAuthorization bounds how long a signed authorization stays valid (overrides
	// Config.MaxAuthorization when set).
	MaxAuthorization time.Duration `yaml:"max_authorization"`
	// DuplicateWindow refuses a second payment for the same method, URL and quote within it,
	// unless the caller asks again (Intent.Again). Default 10m; negative disables. (A wallet
	// configured without any Policy has no duplicate window.)
	DuplicateWindow time.Duration `yaml:"duplicate_window"`
	// AlertThreshold is the fraction of a budget whose crossing raises an alert. Default 0.8.
	AlertThreshold float64 `yaml:"alert_threshold"`
	// Prefer ranks options: an option matching an earlier entry (network, asset address or
	// registry symbol) wins; among equals, the cheapest.
	Prefer []string `yaml:"prefer"`
}

// Budgets are rolling limits of the wallet's total spend per asset.
type Budgets struct {
	Hour string `yaml:"hour"`
	Day  string `yaml:"day"`
	Week string `yaml:"week"`
}

// Cap limits the spend of each payee or host within a window.
type Cap struct {
	Limit string `yaml:"limit"`
	// Window is hour, day or week (default day).
	Window string `yaml:"window"`
}

// Lists name hosts, payees, assets and networks.
type Lists struct {
	// Hosts are exact host names or "*.example.com" (any subdomain, not the domain itself).
	Hosts []string `yaml:"hosts"`
	// Payees are addresses.
	Payees []string `yaml:"payees"`
	// Assets are token addresses or registry symbols.
	Assets []string `yaml:"assets"`
	// Networks are CAIP-2 ids such as eip155:8453.
	Networks []string `yaml:"networks"`
}

// Defaults of a Policy's durations and threshold.
const (
	DefaultApprovalTTL     = 24 * time.Hour
	DefaultDuplicateWindow = 10 * time.Minute
	DefaultAlertThreshold  = 0.8
)

// ErrPolicy reports a policy that cannot be used.
var ErrPolicy = errors.New("wallet: invalid policy")

// LoadPolicy reads a policy from a YAML file.
func LoadPolicy(path string) (*Policy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("wallet: policy: %w", err)
	}
	p, err := ParsePolicy(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// ParsePolicy reads a policy from YAML. Unknown keys are refused with their line, so a typo
// never silently drops a limit.
func ParsePolicy(b []byte) (*Policy, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var p Policy
	if err := dec.Decode(&p); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: %v", ErrPolicy, err)
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &p, nil
}

// Validate checks every amount, window, pattern and address of the policy.
func (p *Policy) Validate() error {
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrPolicy, key, fmt.Sprintf(format, args...))
	}
	for key, v := range map[string]string{"max_payment": p.MaxPayment, "budgets.hour": p.Budgets.Hour,
		"budgets.day": p.Budgets.Day, "budgets.week": p.Budgets.Week, "per_payee.limit": p.PerPayee.Limit,
		"per_host.limit": p.PerHost.Limit, "approve_above": p.ApproveAbove} {
		if v != "" && !validDecimal(v) {
			return bad(key, "%q is not a decimal amount", v)
		}
	}
	for key, c := range map[string]Cap{"per_payee": p.PerPayee, "per_host": p.PerHost} {
		if _, err := windowOf(c.Window); err != nil {
			return bad(key+".window", "%v", err)
		}
	}
	for _, l := range []struct {
		key   string
		lists Lists
	}{{"allow", p.Allow}, {"block", p.Block}} {
		for _, h := range l.lists.Hosts {
			if _, err := normalizePattern(h); err != nil {
				return bad(l.key+".hosts", "%q: %v", h, err)
			}
		}
		for _, a := range l.lists.Payees {
			if _, err := evm.ParseAddress(a); err != nil {
				return bad(l.key+".payees", "%q is not an address", a)
			}
		}
		for _, n := range l.lists.Networks {
			if !strings.Contains(n, ":") {
				return bad(l.key+".networks", "%q is not a CAIP-2 network id (eip155:8453)", n)
			}
		}
	}
	if p.ApprovalTTL < 0 || p.MaxAuthorization < 0 {
		return bad("approval_ttl/max_authorization", "negative duration")
	}
	if p.AlertThreshold < 0 || p.AlertThreshold > 1 {
		return bad("alert_threshold", "%v is not a fraction between 0 and 1", p.AlertThreshold)
	}
	return nil
}

// validDecimal reports a plain decimal ("12", "0.05"); its conversion with an asset's decimals
// happens, exactly, when the asset is known.
func validDecimal(s string) bool {
	return len(s) <= 78 && evm.IsDecimal(s)
}

// windowOf reads a cap's window name.
func windowOf(name string) (time.Duration, error) {
	switch name {
	case "", "day":
		return 24 * time.Hour, nil
	case "hour":
		return time.Hour, nil
	case "week":
		return 7 * 24 * time.Hour, nil
	}
	return 0, fmt.Errorf("%q is not hour, day or week", name)
}

// normalizeHost returns a host as policies compare it: without port, lowercased, in its ASCII
// (punycode) form. A host that is not a valid IDNA name is refused, so a look-alike written in
// another script can only match a pattern written the same way.
func normalizeHost(host string) (string, error) {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "" {
		return "", errors.New("empty host")
	}
	if strings.HasPrefix(host, "[") || net.ParseIP(host) != nil {
		return strings.Trim(host, "[]"), nil
	}
	a, err := hostProfile.ToASCII(host)
	if err != nil {
		return "", fmt.Errorf("not a valid host name: %v", err)
	}
	return a, nil
}

// hostProfile is IDNA lookup with DNS length checks, which also refuse empty labels.
var hostProfile = idna.New(idna.MapForLookup(), idna.BidiRule(), idna.VerifyDNSLength(true))

func normalizePattern(p string) (string, error) {
	if rest, ok := strings.CutPrefix(p, "*."); ok {
		h, err := normalizeHost(rest)
		if err != nil {
			return "", err
		}
		return "*." + h, nil
	}
	return normalizeHost(p)
}

// hostMatches reports whether a normalised host matches any pattern.
func hostMatches(host string, patterns []string) bool {
	for _, p := range patterns {
		n, err := normalizePattern(p)
		if err != nil {
			continue
		}
		if suffix, ok := strings.CutPrefix(n, "*"); ok {
			if strings.HasSuffix(host, suffix) && len(host) > len(suffix) {
				return true
			}
		} else if host == n {
			return true
		}
	}
	return false
}

func addressIn(a common.Address, list []string) bool {
	for _, s := range list {
		if b, err := evm.ParseAddress(s); err == nil && b == a {
			return true
		}
	}
	return false
}

func assetIn(a evm.Asset, list []string) bool {
	for _, s := range list {
		if strings.EqualFold(s, a.Symbol) {
			return true
		}
		if b, err := evm.ParseAddress(s); err == nil && b == a.Address {
			return true
		}
	}
	return false
}

func stringIn(s string, list []string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
