package capability

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	macaroon "gopkg.in/macaroon.v2"
)

// ID identifies a token and all of its attenuations; uses are counted per ID.
type ID [16]byte

// NewID returns a random token id.
func NewID() (ID, error) {
	var id ID
	_, err := rand.Read(id[:])
	return id, err
}

// String returns the id in hex.
func (id ID) String() string { return fmt.Sprintf("%x", id[:]) }

// Caveat is one first-party condition of a token. Build caveats with Expires, Scope, Uses and
// Payer.
type Caveat struct{ cond string }

// String returns the caveat's condition as it is written into the token.
func (c Caveat) String() string { return c.cond }

// Caveat keywords, the first word of each condition.
const (
	kwExpires = "expires"
	kwScope   = "scope"
	kwUses    = "uses"
	kwPayer   = "payer"
)

// Expires limits the token to requests made before t (to the second).
func Expires(t time.Time) Caveat { return Caveat{kwExpires + " " + strconv.FormatInt(t.Unix(), 10)} }

// Uses limits the token to n requests in all, counted across every attenuation of it that
// carries a uses caveat. Requests on an attenuation without one (possible only when the minted
// token had none) are limited by time alone and are not counted.
func Uses(n uint64) Caveat { return Caveat{kwUses + " " + strconv.FormatUint(n, 10)} }

// Payer names who paid for the token. The seller applies its access policy to this payer.
func Payer(a common.Address) Caveat { return Caveat{kwPayer + " " + a.Hex()} }

// Scope limits the token to requests matching one of patterns. A pattern is "METHOD /path" or
// "/path" (any method); a path ending in "*" matches every path it prefixes. Patterns hold no
// spaces in the path and no commas.
func Scope(patterns ...string) Caveat { return Caveat{kwScope + " " + strings.Join(patterns, ",")} }

// Errors of Verify and Attenuate.
var (
	// ErrMalformed: the token does not decode, or a caveat is not well formed.
	ErrMalformed = errors.New("capability: malformed token")
	// ErrForged: the signature does not check out under the seller's key.
	ErrForged = errors.New("capability: token signature invalid")
	// ErrUnknownCaveat: the token carries a condition this seller does not know.
	ErrUnknownCaveat = errors.New("capability: unknown caveat")
	// ErrExpired: an expires caveat has passed.
	ErrExpired = errors.New("capability: token expired")
	// ErrOutOfScope: the request matches no pattern of some scope caveat.
	ErrOutOfScope = errors.New("capability: request out of the token's scope")
)

// Limits on what Verify reads from the network.
const (
	// MaxTokenLen bounds an encoded token.
	MaxTokenLen = 4096
	// MaxCaveats bounds the caveats of one token, attenuations included.
	MaxCaveats = 32
)

// idVersion prefixes macaroon ids, so a later format can be told apart.
const idVersion = 1

// Keys mints and verifies tokens. Each token's root key is derived from Secret and the token's
// id, so no per-token key is stored and a leaked token reveals nothing about the others.
type Keys struct {
	// Secret is the seller's secret; at least 32 random bytes.
	Secret []byte
}

func (k Keys) rootKey(id ID) []byte {
	m := hmac.New(sha256.New, k.Secret)
	m.Write([]byte("quid capability root key\x00"))
	m.Write(id[:])
	return m.Sum(nil)
}

// Mint returns a new token with the given caveats, encoded for an HTTP header.
func (k Keys) Mint(id ID, caveats ...Caveat) (string, error) {
	if len(k.Secret) < 16 {
		return "", errors.New("capability: secret too short")
	}
	m, err := macaroon.New(k.rootKey(id), append([]byte{idVersion}, id[:]...), "quid", macaroon.V2)
	if err != nil {
		return "", err
	}
	return addCaveats(m, caveats)
}

// Attenuate adds caveats to a token without the seller's secret. Caveats only ever narrow: the
// seller requires every caveat of the token to hold, the original ones included.
func Attenuate(token string, caveats ...Caveat) (string, error) {
	m, err := decode(token)
	if err != nil {
		return "", err
	}
	return addCaveats(m, caveats)
}

func addCaveats(m *macaroon.Macaroon, caveats []Caveat) (string, error) {
	if len(m.Caveats())+len(caveats) > MaxCaveats {
		return "", fmt.Errorf("%w: more than %d caveats", ErrMalformed, MaxCaveats)
	}
	for _, c := range caveats {
		if _, err := parseCaveat(c.cond); err != nil {
			return "", err
		}
		if err := m.AddFirstPartyCaveat([]byte(c.cond)); err != nil {
			return "", err
		}
	}
	b, err := m.MarshalBinary()
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func decode(token string) (*macaroon.Macaroon, error) {
	if len(token) > MaxTokenLen {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, MaxTokenLen)
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(token, "="))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	var m macaroon.Macaroon
	if err := m.UnmarshalBinary(b); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(m.Caveats()) > MaxCaveats {
		return nil, fmt.Errorf("%w: more than %d caveats", ErrMalformed, MaxCaveats)
	}
	return &m, nil
}

// Inspect returns a token's id and caveats without checking its signature, for a holder that
// wants to know what it holds.
func Inspect(token string) (ID, []Caveat, error) {
	m, err := decode(token)
	if err != nil {
		return ID{}, nil, err
	}
	id, err := tokenID(m)
	if err != nil {
		return ID{}, nil, err
	}
	var out []Caveat
	for _, c := range m.Caveats() {
		out = append(out, Caveat{string(c.Id)})
	}
	return id, out, nil
}

func tokenID(m *macaroon.Macaroon) (ID, error) {
	raw := m.Id()
	var id ID
	if len(raw) != 1+len(id) || raw[0] != idVersion {
		return id, fmt.Errorf("%w: unknown id format", ErrMalformed)
	}
	copy(id[:], raw[1:])
	return id, nil
}

// Request is what a token is checked against.
type Request struct {
	Method string
	Path   string
	Now    time.Time
}

// Grant is what a valid token allows, all caveats combined.
type Grant struct {
	ID    ID
	Payer common.Address
	// Expires is the earliest expires caveat.
	Expires time.Time
	// Uses is the smallest uses caveat; 0 means the token has none and is limited by time only.
	Uses uint64
	// Latest is the latest expires caveat, the minter's or later: how long the token's use count
	// must be remembered, whichever attenuation of it is presented.
	Latest time.Time
}

// Verify checks token's signature under the seller's key and every caveat against req. Tokens
// this package mints always carry a payer and an expiry; a token lacking either is refused.
func (k Keys) Verify(token string, req Request) (*Grant, error) {
	m, err := decode(token)
	if err != nil {
		return nil, err
	}
	id, err := tokenID(m)
	if err != nil {
		return nil, err
	}
	conds, err := m.VerifySignature(k.rootKey(id), nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrForged, err)
	}
	g := &Grant{ID: id}
	var payerSet, expiresSet bool
	var outOfScope bool
	for _, cond := range conds {
		c, err := parseCaveat(cond)
		if err != nil {
			return nil, err
		}
		switch c.kind {
		case kwExpires:
			if !expiresSet || c.expires.Before(g.Expires) {
				g.Expires = c.expires
			}
			if !expiresSet || c.expires.After(g.Latest) {
				g.Latest = c.expires
			}
			expiresSet = true
		case kwUses:
			if g.Uses == 0 || c.uses < g.Uses {
				g.Uses = c.uses
			}
		case kwPayer:
			if payerSet && c.payer != g.Payer {
				return nil, fmt.Errorf("%w: conflicting payer caveats", ErrMalformed)
			}
			g.Payer, payerSet = c.payer, true
		case kwScope:
			if !c.matches(req.Method, req.Path) {
				outOfScope = true
			}
		}
	}
	switch {
	case !payerSet || !expiresSet:
		return nil, fmt.Errorf("%w: a token needs a payer and an expiry", ErrMalformed)
	case !req.Now.Before(g.Expires):
		return nil, ErrExpired
	case outOfScope:
		return nil, ErrOutOfScope
	}
	return g, nil
}

type caveat struct {
	kind     string
	expires  time.Time
	uses     uint64
	payer    common.Address
	patterns []pattern
}

type pattern struct {
	method string // "" matches any method
	path   string
	prefix bool
}

func parseCaveat(cond string) (caveat, error) {
	kind, arg, ok := strings.Cut(cond, " ")
	if !ok || arg == "" {
		return caveat{}, fmt.Errorf("%w: %q", ErrUnknownCaveat, cond)
	}
	c := caveat{kind: kind}
	switch kind {
	case kwExpires:
		n, err := strconv.ParseInt(arg, 10, 64)
		if err != nil || n <= 0 {
			return c, fmt.Errorf("%w: expires %q", ErrMalformed, arg)
		}
		c.expires = time.Unix(n, 0)
	case kwUses:
		n, err := strconv.ParseUint(arg, 10, 64)
		if err != nil || n == 0 {
			return c, fmt.Errorf("%w: uses %q", ErrMalformed, arg)
		}
		c.uses = n
	case kwPayer:
		if !common.IsHexAddress(arg) || !strings.HasPrefix(arg, "0x") {
			return c, fmt.Errorf("%w: payer %q", ErrMalformed, arg)
		}
		c.payer = common.HexToAddress(arg)
	case kwScope:
		for _, p := range strings.Split(arg, ",") {
			pat, err := parsePattern(p)
			if err != nil {
				return c, err
			}
			c.patterns = append(c.patterns, pat)
		}
	default:
		return c, fmt.Errorf("%w: %q", ErrUnknownCaveat, kind)
	}
	return c, nil
}

func parsePattern(s string) (pattern, error) {
	var p pattern
	if m, path, ok := strings.Cut(s, " "); ok {
		p.method, s = m, path
		if m == "" || strings.ToUpper(m) != m {
			return p, fmt.Errorf("%w: scope method %q", ErrMalformed, m)
		}
	}
	if !strings.HasPrefix(s, "/") || strings.ContainsAny(s, " ,") {
		return p, fmt.Errorf("%w: scope path %q", ErrMalformed, s)
	}
	p.path, p.prefix = strings.CutSuffix(s, "*")
	return p, nil
}

// ParsePattern checks a scope pattern, for callers that take patterns from configuration.
func ParsePattern(s string) error {
	_, err := parsePattern(s)
	return err
}

func (c caveat) matches(method, path string) bool {
	for _, p := range c.patterns {
		if p.method != "" && p.method != method {
			continue
		}
		if path == p.path || (p.prefix && strings.HasPrefix(path, p.path)) {
			return true
		}
	}
	return false
}
