package evm

import (
	"encoding/binary"
	"sync"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// Domain is an EIP-712 domain with all four fields, as EIP-3009 tokens define theirs. It is
// comparable, so it can key a map.
type Domain struct {
	Name              string
	Version           string
	ChainID           uint64
	VerifyingContract common.Address
}

// Authorization is an EIP-3009 TransferWithAuthorization: from allows the holder of the
// signature to move value to to, once, between validAfter and validBefore (unix seconds,
// exclusive bounds as the token checks them).
type Authorization struct {
	From        common.Address
	To          common.Address
	Value       Amount
	ValidAfter  uint64
	ValidBefore uint64
	Nonce       [32]byte
}

var (
	domainTypeHash = crypto.Keccak256Hash([]byte(
		"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"))
	// TransferWithAuthorizationTypeHash is keccak256 of the EIP-3009 type string.
	TransferWithAuthorizationTypeHash = crypto.Keccak256Hash([]byte(
		"TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"))
)

// computeSeparator hashes the domain from scratch (about 2 µs); Separator caches it.
func (d Domain) computeSeparator() [32]byte {
	var buf [5 * 32]byte
	copy(buf[0:], domainTypeHash[:])
	copy(buf[32:], crypto.Keccak256([]byte(d.Name)))
	copy(buf[64:], crypto.Keccak256([]byte(d.Version)))
	binary.BigEndian.PutUint64(buf[96+24:], d.ChainID)
	copy(buf[128+12:], d.VerifyingContract[:])
	return crypto.Keccak256Hash(buf[:])
}

// maxCachedDomains bounds the separator cache. Domains come from requirements that anyone can
// post to a facilitator, so an unbounded cache would be a memory leak an attacker controls.
// maxCachedDomainText bounds each entry's strings, so that the cache's bytes are bounded too
// (real token names and versions are a few dozen bytes).
const (
	maxCachedDomains    = 4096
	maxCachedDomainText = 256
)

var separators struct {
	sync.RWMutex
	m map[Domain][32]byte
}

// Separator returns the domain separator, cached for the domains a process actually uses.
func (d Domain) Separator() [32]byte {
	separators.RLock()
	sep, ok := separators.m[d]
	separators.RUnlock()
	if ok {
		return sep
	}
	sep = d.computeSeparator()
	if len(d.Name)+len(d.Version) > maxCachedDomainText {
		return sep
	}
	separators.Lock()
	if separators.m == nil {
		separators.m = make(map[Domain][32]byte)
	}
	if len(separators.m) < maxCachedDomains {
		separators.m[d] = sep
	}
	separators.Unlock()
	return sep
}

var keccakPool = sync.Pool{New: func() any { return crypto.NewKeccakState() }}

func keccak(out *[32]byte, data []byte) {
	h := keccakPool.Get().(crypto.KeccakState)
	h.Reset()
	h.Write(data)
	h.Read(out[:])
	keccakPool.Put(h)
}

// Digest returns the EIP-712 digest an EIP-3009 token checks the signature of a when its domain
// is d: keccak256(0x1901 ‖ separator ‖ hashStruct(a)).
func (a *Authorization) Digest(d Domain) [32]byte { return a.digestWithSeparator(d.Separator()) }

func (a *Authorization) digestWithSeparator(sep [32]byte) [32]byte {
	var s [7 * 32]byte
	copy(s[0:], TransferWithAuthorizationTypeHash[:])
	copy(s[32+12:], a.From[:])
	copy(s[64+12:], a.To[:])
	v := a.Value.Bytes32()
	copy(s[96:], v[:])
	binary.BigEndian.PutUint64(s[128+24:], a.ValidAfter)
	binary.BigEndian.PutUint64(s[160+24:], a.ValidBefore)
	copy(s[192:], a.Nonce[:])

	var msg [2 + 32 + 32]byte
	msg[0], msg[1] = 0x19, 0x01
	copy(msg[2:], sep[:])
	var structHash [32]byte
	keccak(&structHash, s[:])
	copy(msg[34:], structHash[:])
	var out [32]byte
	keccak(&out, msg[:])
	return out
}
