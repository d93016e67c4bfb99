package token_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/eth/ethconfig"
	"github.com/ethereum/go-ethereum/ethclient/simulated"
	"github.com/ethereum/go-ethereum/node"

	"github.com/quidpay/quid/evm/contracts/token"
)

// The type hashes are spelled out as USDC publishes them, not recomputed from the same strings
// the contract uses, so a typo in either place fails the test.
var (
	transferTypeHash = common.HexToHash("0x7c7c6cdb67a18743f49ec6fa9b35f50d52ed05cbed4cc592e13b44501c1a2267")
	receiveTypeHash  = common.HexToHash("0xd099cc98ef71107a616c4f0f941f04c322d8e254fe26b3c6668db87aae413de8")
	cancelTypeHash   = common.HexToHash("0x158b0a9edf7a828aad02f63cd515c68ef2f50ba807396f6d12842833a1597429")
	permitTypeHash   = common.HexToHash("0x6e71edae12b1b97f4d1f60370fef10105fa2faae0126114a169c64845d6126c9")
	domainTypeHash   = crypto.Keccak256Hash([]byte("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"))
	secp256k1N       = crypto.S256().Params().N
)

var qt = token.NewQuidToken()

// chain is a simulated chain with a deployed QuidToken and a few funded accounts. The payer has
// no ETH: like an x402 buyer, it only signs, and the relayer pays for gas.
type chain struct {
	t        *testing.T
	sim      *simulated.Backend
	client   simulated.Client
	chainID  *big.Int
	token    *bind.BoundContract
	deployer *ecdsa.PrivateKey
	relayer  *ecdsa.PrivateKey
	payer    *ecdsa.PrivateKey
	payee    *ecdsa.PrivateKey
}

func newChain(t *testing.T, chainID int64) *chain {
	t.Helper()
	c := &chain{t: t, chainID: big.NewInt(chainID)}
	for _, k := range []**ecdsa.PrivateKey{&c.deployer, &c.relayer, &c.payer, &c.payee} {
		key, err := crypto.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		*k = key
	}
	eth := new(big.Int).Exp(big.NewInt(10), big.NewInt(18), nil)
	alloc := types.GenesisAlloc{}
	for _, k := range []*ecdsa.PrivateKey{c.deployer, c.relayer, c.payee} {
		alloc[addr(k)] = types.Account{Balance: new(big.Int).Mul(big.NewInt(100), eth)}
	}
	c.sim = simulated.NewBackend(alloc, func(_ *node.Config, ec *ethconfig.Config) {
		cfg := *ec.Genesis.Config
		cfg.ChainID = c.chainID
		cfg.BogotaTime = nil // post-Osaka gas repricing; not what Base or USDC users pay
		ec.Genesis.Config = &cfg
	})
	t.Cleanup(func() { _ = c.sim.Close() })
	c.client = c.sim.Client()

	tokenAddr, tx, err := bind.DeployContract(c.opts(c.deployer), common.FromHex(token.QuidTokenMetaData.Bin), c.client, nil)
	if err != nil {
		t.Fatalf("deploy: %v", err)
	}
	c.sim.Commit()
	c.mustSucceed(tx)
	c.token = qt.Instance(c.client, tokenAddr)
	return c
}

func addr(k *ecdsa.PrivateKey) common.Address { return crypto.PubkeyToAddress(k.PublicKey) }

func (c *chain) opts(k *ecdsa.PrivateKey) *bind.TransactOpts {
	o := bind.NewKeyedTransactor(k, c.chainID)
	o.Context = context.Background()
	return o
}

// send submits calldata to the token from k, mines it and requires success.
func (c *chain) send(k *ecdsa.PrivateKey, data []byte) *types.Receipt {
	c.t.Helper()
	tx, err := bind.Transact(c.token, c.opts(k), data)
	if err != nil {
		c.t.Fatalf("transact: %v", err)
	}
	c.sim.Commit()
	return c.mustSucceed(tx)
}

func (c *chain) mustSucceed(tx *types.Transaction) *types.Receipt {
	c.t.Helper()
	r, err := c.client.TransactionReceipt(context.Background(), tx.Hash())
	if err != nil {
		c.t.Fatalf("receipt: %v", err)
	}
	if r.Status != types.ReceiptStatusSuccessful {
		c.t.Fatalf("tx %s reverted", tx.Hash())
	}
	return r
}

// revert simulates calldata from k at the head of the chain and returns the revert error text.
func (c *chain) revert(k *ecdsa.PrivateKey, data []byte) string {
	c.t.Helper()
	to := c.token.Address()
	_, err := c.client.CallContract(context.Background(), ethereum.CallMsg{From: addr(k), To: &to, Data: data}, nil)
	if err == nil {
		c.t.Fatal("call succeeded, want a revert")
	}
	return err.Error()
}

func (c *chain) mustRevert(k *ecdsa.PrivateKey, data []byte, reason string) {
	c.t.Helper()
	if got := c.revert(k, data); !strings.Contains(got, reason) {
		c.t.Fatalf("revert = %q, want it to contain %q", got, reason)
	}
}

func (c *chain) balance(a common.Address) *big.Int {
	c.t.Helper()
	b, err := bind.Call(c.token, nil, qt.PackBalanceOf(a), qt.UnpackBalanceOf)
	if err != nil {
		c.t.Fatal(err)
	}
	return b
}

func (c *chain) authorizationState(a common.Address, nonce [32]byte) bool {
	c.t.Helper()
	used, err := bind.Call(c.token, nil, qt.PackAuthorizationState(a, nonce), qt.UnpackAuthorizationState)
	if err != nil {
		c.t.Fatal(err)
	}
	return used
}

func (c *chain) mint(to common.Address, amount int64) {
	c.t.Helper()
	c.send(c.deployer, qt.PackMint(to, big.NewInt(amount)))
}

// domainSeparator is the EIP-712 domain separator computed by hand, as a verifier would.
func (c *chain) domainSeparator() common.Hash {
	return crypto.Keccak256Hash(
		domainTypeHash[:],
		crypto.Keccak256([]byte("Quid Test USD")),
		crypto.Keccak256([]byte("2")),
		common.LeftPadBytes(c.chainID.Bytes(), 32),
		common.LeftPadBytes(c.token.Address().Bytes(), 32),
	)
}

// signature is an Ethereum signature split the way the (v, r, s) overloads take it.
type signature struct {
	v    uint8
	r, s [32]byte
}

func (sig signature) packed() []byte {
	return append(append(sig.r[:], sig.s[:]...), sig.v)
}

// highS returns the malleable twin of sig: the same signer recovers from (r, n-s, v^1).
func (sig signature) highS() signature {
	s := new(big.Int).Sub(secp256k1N, new(big.Int).SetBytes(sig.s[:]))
	out := sig
	s.FillBytes(out.s[:])
	out.v ^= 1 // 27 <-> 28
	return out
}

// sign signs the EIP-712 digest of structHash under the token's domain.
func (c *chain) sign(k *ecdsa.PrivateKey, structHash common.Hash) signature {
	c.t.Helper()
	sep := c.domainSeparator()
	digest := crypto.Keccak256([]byte{0x19, 0x01}, sep[:], structHash[:])
	raw, err := crypto.Sign(digest, k)
	if err != nil {
		c.t.Fatal(err)
	}
	var sig signature
	copy(sig.r[:], raw[:32])
	copy(sig.s[:], raw[32:64])
	sig.v = raw[64] + 27
	return sig
}

func word(n *big.Int) []byte { return common.LeftPadBytes(n.Bytes(), 32) }

// authorization is an EIP-3009 transfer or receive authorization.
type authorization struct {
	from, to                common.Address
	value                   *big.Int
	validAfter, validBefore *big.Int
	nonce                   [32]byte
}

func (a authorization) structHash(typeHash common.Hash) common.Hash {
	return crypto.Keccak256Hash(typeHash[:], word(new(big.Int).SetBytes(a.from[:])), word(new(big.Int).SetBytes(a.to[:])),
		word(a.value), word(a.validAfter), word(a.validBefore), a.nonce[:])
}

func (c *chain) newAuthorization(from, to common.Address, value int64) authorization {
	var nonce [32]byte
	copy(nonce[:], crypto.Keccak256([]byte(c.t.Name()), from[:], big.NewInt(time.Now().UnixNano()).Bytes()))
	return authorization{
		from:        from,
		to:          to,
		value:       big.NewInt(value),
		validAfter:  big.NewInt(0),
		validBefore: big.NewInt(time.Now().Add(time.Hour).Unix()),
		nonce:       nonce,
	}
}

func (c *chain) packTransfer(a authorization, sig signature) []byte {
	return qt.PackTransferWithAuthorization(a.from, a.to, a.value, a.validAfter, a.validBefore, a.nonce, sig.v, sig.r, sig.s)
}

func TestMetadataAndDomain(t *testing.T) {
	t.Parallel()
	for _, chainID := range []int64{1337, 84532} {
		c := newChain(t, chainID)
		str := func(pack []byte, unpack func([]byte) (string, error)) string {
			v, err := bind.Call(c.token, nil, pack, unpack)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		hash := func(pack []byte, unpack func([]byte) ([32]byte, error)) common.Hash {
			v, err := bind.Call(c.token, nil, pack, unpack)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		if got := str(qt.PackName(), qt.UnpackName); got != "Quid Test USD" {
			t.Errorf("name = %q", got)
		}
		if got := str(qt.PackSymbol(), qt.UnpackSymbol); got != "qUSD" {
			t.Errorf("symbol = %q", got)
		}
		if got := str(qt.PackVersion(), qt.UnpackVersion); got != "2" {
			t.Errorf("version = %q", got)
		}
		if d, err := bind.Call(c.token, nil, qt.PackDecimals(), qt.UnpackDecimals); err != nil || d != 6 {
			t.Errorf("decimals = %d, %v", d, err)
		}
		if o, err := bind.Call(c.token, nil, qt.PackOwner(), qt.UnpackOwner); err != nil || o != addr(c.deployer) {
			t.Errorf("owner = %s, %v", o, err)
		}
		for name, tc := range map[string]struct {
			got, want common.Hash
		}{
			"TRANSFER_WITH_AUTHORIZATION_TYPEHASH": {hash(qt.PackTRANSFERWITHAUTHORIZATIONTYPEHASH(), qt.UnpackTRANSFERWITHAUTHORIZATIONTYPEHASH), transferTypeHash},
			"RECEIVE_WITH_AUTHORIZATION_TYPEHASH":  {hash(qt.PackRECEIVEWITHAUTHORIZATIONTYPEHASH(), qt.UnpackRECEIVEWITHAUTHORIZATIONTYPEHASH), receiveTypeHash},
			"CANCEL_AUTHORIZATION_TYPEHASH":        {hash(qt.PackCANCELAUTHORIZATIONTYPEHASH(), qt.UnpackCANCELAUTHORIZATIONTYPEHASH), cancelTypeHash},
			"PERMIT_TYPEHASH":                      {hash(qt.PackPERMITTYPEHASH(), qt.UnpackPERMITTYPEHASH), permitTypeHash},
			"DOMAIN_SEPARATOR":                     {hash(qt.PackDOMAINSEPARATOR(), qt.UnpackDOMAINSEPARATOR), c.domainSeparator()},
		} {
			if tc.got != tc.want {
				t.Errorf("chain %d: %s = %s, want %s", chainID, name, tc.got, tc.want)
			}
		}
	}
}

// TestSelectors pins the function selectors x402 facilitators and USDC tooling call.
func TestSelectors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		pack []byte
		want string
	}{
		{qt.PackTransferWithAuthorization(common.Address{}, common.Address{}, new(big.Int), new(big.Int), new(big.Int), [32]byte{}, 0, [32]byte{}, [32]byte{}), "e3ee160e"},
		{qt.PackTransferWithAuthorization0(common.Address{}, common.Address{}, new(big.Int), new(big.Int), new(big.Int), [32]byte{}, nil), "cf092995"},
		{qt.PackReceiveWithAuthorization(common.Address{}, common.Address{}, new(big.Int), new(big.Int), new(big.Int), [32]byte{}, 0, [32]byte{}, [32]byte{}), "ef55bec6"},
		{qt.PackCancelAuthorization(common.Address{}, [32]byte{}, 0, [32]byte{}, [32]byte{}), "5a049a70"},
		{qt.PackAuthorizationState(common.Address{}, [32]byte{}), "e94a0102"},
		{qt.PackPermit(common.Address{}, common.Address{}, new(big.Int), new(big.Int), 0, [32]byte{}, [32]byte{}), "d505accf"},
		{qt.PackNonces(common.Address{}), "7ecebe00"},
		{qt.PackDOMAINSEPARATOR(), "3644e515"},
	} {
		if got := hex.EncodeToString(tc.pack[:4]); got != tc.want {
			t.Errorf("selector %s, want %s", got, tc.want)
		}
	}
}

func TestTransferWithAuthorization(t *testing.T) {
	t.Parallel()
	c := newChain(t, 1337)
	payer, payee := addr(c.payer), addr(c.payee)
	c.mint(payer, 10_000_000)

	a := c.newAuthorization(payer, payee, 1_500_000)
	sig := c.sign(c.payer, a.structHash(transferTypeHash))
	if c.authorizationState(payer, a.nonce) {
		t.Fatal("fresh nonce reported as used")
	}
	r := c.send(c.relayer, c.packTransfer(a, sig))
	t.Logf("transferWithAuthorization gas: %d", r.GasUsed)

	if got := c.balance(payer); got.Int64() != 8_500_000 {
		t.Errorf("payer balance = %s", got)
	}
	if got := c.balance(payee); got.Int64() != 1_500_000 {
		t.Errorf("payee balance = %s", got)
	}
	if !c.authorizationState(payer, a.nonce) {
		t.Error("authorizationState = false after use")
	}
	var used, transferred bool
	for _, l := range r.Logs {
		if ev, err := qt.UnpackAuthorizationUsedEvent(l); err == nil {
			used = ev.Authorizer == payer && ev.Nonce == a.nonce
		}
		if ev, err := qt.UnpackTransferEvent(l); err == nil {
			transferred = ev.From == payer && ev.To == payee && ev.Value.Cmp(a.value) == 0
		}
	}
	if !used || !transferred {
		t.Errorf("logs: AuthorizationUsed %v, Transfer %v", used, transferred)
	}

	// The same authorization cannot be settled twice, in either signature form.
	c.mustRevert(c.relayer, c.packTransfer(a, sig), "FiatTokenV2: authorization is used or canceled")
	c.mustRevert(c.relayer, qt.PackTransferWithAuthorization0(a.from, a.to, a.value, a.validAfter, a.validBefore, a.nonce, sig.packed()),
		"FiatTokenV2: authorization is used or canceled")
}

func TestTransferWithAuthorizationPackedSignature(t *testing.T) {
	t.Parallel()
	c := newChain(t, 1337)
	payer, payee := addr(c.payer), addr(c.payee)
	c.mint(payer, 1_000_000)
	a := c.newAuthorization(payer, payee, 250_000)
	sig := c.sign(c.payer, a.structHash(transferTypeHash))
	c.send(c.relayer, qt.PackTransferWithAuthorization0(a.from, a.to, a.value, a.validAfter, a.validBefore, a.nonce, sig.packed()))
	if got := c.balance(payee); got.Int64() != 250_000 {
		t.Errorf("payee balance = %s", got)
	}
	if !c.authorizationState(payer, a.nonce) {
		t.Error("authorizationState = false after use")
	}
}

func TestTransferWithAuthorizationRejects(t *testing.T) {
	t.Parallel()
	c := newChain(t, 1337)
	payer, payee := addr(c.payer), addr(c.payee)
	c.mint(payer, 1_000_000)
	now := time.Now().Unix()

	for _, tc := range []struct {
		name   string
		edit   func(a *authorization)               // changes the authorization before signing
		tamper func(a *authorization, s *signature) // changes what is submitted after signing
		packed bool
		reason string
	}{
		{name: "high s", tamper: func(_ *authorization, s *signature) { *s = s.highS() }, reason: "ECRecover: invalid signature 's' value"},
		{name: "high s packed", tamper: func(_ *authorization, s *signature) { *s = s.highS() }, packed: true, reason: "ECRecover: invalid signature 's' value"},
		{name: "v not 27 or 28", tamper: func(_ *authorization, s *signature) { s.v -= 27 }, reason: "ECRecover: invalid signature 'v' value"},
		{name: "wrong signer", tamper: func(a *authorization, _ *signature) { a.from = payee }, reason: "FiatTokenV2: invalid signature"},
		{name: "tampered value", tamper: func(a *authorization, _ *signature) { a.value = big.NewInt(999_999) }, reason: "FiatTokenV2: invalid signature"},
		{name: "not yet valid", edit: func(a *authorization) { a.validAfter = big.NewInt(now + 3600); a.validBefore = big.NewInt(now + 7200) }, reason: "FiatTokenV2: authorization is not yet valid"},
		{name: "expired", edit: func(a *authorization) { a.validBefore = big.NewInt(now - 3600) }, reason: "FiatTokenV2: authorization is expired"},
		{name: "exceeds balance", edit: func(a *authorization) { a.value = big.NewInt(1_000_001) }, reason: "ERC20: transfer amount exceeds balance"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := c.newAuthorization(payer, payee, 100)
			if tc.edit != nil {
				tc.edit(&a)
			}
			sig := c.sign(c.payer, a.structHash(transferTypeHash))
			if tc.tamper != nil {
				tc.tamper(&a, &sig)
			}
			data := c.packTransfer(a, sig)
			if tc.packed {
				data = qt.PackTransferWithAuthorization0(a.from, a.to, a.value, a.validAfter, a.validBefore, a.nonce, sig.packed())
			}
			c.mustRevert(c.relayer, data, tc.reason)
		})
	}
	c.mustRevert(c.relayer, qt.PackTransferWithAuthorization0(payer, payee, big.NewInt(1), new(big.Int), big.NewInt(now+60), [32]byte{}, make([]byte, 64)),
		"ECRecover: invalid signature length")
	if got := c.balance(payer); got.Int64() != 1_000_000 {
		t.Errorf("payer balance = %s after rejected authorizations", got)
	}
}

func TestCancelAuthorization(t *testing.T) {
	t.Parallel()
	c := newChain(t, 1337)
	payer, payee := addr(c.payer), addr(c.payee)
	c.mint(payer, 1_000_000)
	a := c.newAuthorization(payer, payee, 100)
	transferSig := c.sign(c.payer, a.structHash(transferTypeHash))

	cancelHash := crypto.Keccak256Hash(cancelTypeHash[:], common.LeftPadBytes(payer[:], 32), a.nonce[:])
	cancelSig := c.sign(c.payer, cancelHash)
	// Only the authorizer's signature cancels.
	c.mustRevert(c.relayer, qt.PackCancelAuthorization(payee, a.nonce, cancelSig.v, cancelSig.r, cancelSig.s), "FiatTokenV2: invalid signature")

	r := c.send(c.relayer, qt.PackCancelAuthorization(payer, a.nonce, cancelSig.v, cancelSig.r, cancelSig.s))
	if !c.authorizationState(payer, a.nonce) {
		t.Error("authorizationState = false after cancel")
	}
	var canceled bool
	for _, l := range r.Logs {
		if ev, err := qt.UnpackAuthorizationCanceledEvent(l); err == nil {
			canceled = ev.Authorizer == payer && ev.Nonce == a.nonce
		}
	}
	if !canceled {
		t.Error("no AuthorizationCanceled log")
	}
	c.mustRevert(c.relayer, c.packTransfer(a, transferSig), "FiatTokenV2: authorization is used or canceled")
	c.mustRevert(c.relayer, qt.PackCancelAuthorization0(payer, a.nonce, cancelSig.packed()), "FiatTokenV2: authorization is used or canceled")
	if got := c.balance(payee); got.Sign() != 0 {
		t.Errorf("payee balance = %s after cancel", got)
	}
}

func TestReceiveWithAuthorization(t *testing.T) {
	t.Parallel()
	c := newChain(t, 1337)
	payer, payee := addr(c.payer), addr(c.payee)
	c.mint(payer, 1_000_000)
	a := c.newAuthorization(payer, payee, 400_000)
	sig := c.sign(c.payer, a.structHash(receiveTypeHash))
	data := qt.PackReceiveWithAuthorization(a.from, a.to, a.value, a.validAfter, a.validBefore, a.nonce, sig.v, sig.r, sig.s)

	c.mustRevert(c.relayer, data, "FiatTokenV2: caller must be the payee")
	c.mustRevert(c.relayer, qt.PackReceiveWithAuthorization0(a.from, a.to, a.value, a.validAfter, a.validBefore, a.nonce, sig.packed()),
		"FiatTokenV2: caller must be the payee")
	// A receive authorization is not a transfer authorization: the type hash differs.
	c.mustRevert(c.relayer, c.packTransfer(a, sig), "FiatTokenV2: invalid signature")

	c.send(c.payee, data)
	if got := c.balance(payee); got.Int64() != 400_000 {
		t.Errorf("payee balance = %s", got)
	}
	if !c.authorizationState(payer, a.nonce) {
		t.Error("authorizationState = false after receive")
	}
}

func TestPermit(t *testing.T) {
	t.Parallel()
	c := newChain(t, 1337)
	holder, spender := addr(c.payer), addr(c.relayer)
	c.mint(holder, 1_000_000)
	value, deadline := big.NewInt(300_000), big.NewInt(time.Now().Add(time.Hour).Unix())

	nonce, err := bind.Call(c.token, nil, qt.PackNonces(holder), qt.UnpackNonces)
	if err != nil || nonce.Sign() != 0 {
		t.Fatalf("nonces = %v, %v", nonce, err)
	}
	structHash := crypto.Keccak256Hash(permitTypeHash[:], common.LeftPadBytes(holder[:], 32), common.LeftPadBytes(spender[:], 32),
		word(value), word(nonce), word(deadline))
	sig := c.sign(c.payer, structHash)
	data := qt.PackPermit(holder, spender, value, deadline, sig.v, sig.r, sig.s)
	c.send(c.relayer, data)

	allowance, err := bind.Call(c.token, nil, qt.PackAllowance(holder, spender), qt.UnpackAllowance)
	if err != nil || allowance.Cmp(value) != 0 {
		t.Fatalf("allowance = %v, %v", allowance, err)
	}
	if n, err := bind.Call(c.token, nil, qt.PackNonces(holder), qt.UnpackNonces); err != nil || n.Int64() != 1 {
		t.Fatalf("nonces after permit = %v, %v", n, err)
	}
	// The nonce moved on, so the same signature no longer matches.
	c.mustRevert(c.relayer, data, "EIP2612: invalid signature")

	c.send(c.relayer, qt.PackTransferFrom(holder, spender, big.NewInt(200_000)))
	if got := c.balance(spender); got.Int64() != 200_000 {
		t.Errorf("spender balance = %s", got)
	}
	c.mustRevert(c.relayer, qt.PackTransferFrom(holder, spender, big.NewInt(100_001)), "ERC20: transfer amount exceeds allowance")

	expired := big.NewInt(time.Now().Add(-time.Hour).Unix())
	c.mustRevert(c.relayer, qt.PackPermit(holder, spender, value, expired, sig.v, sig.r, sig.s), "FiatTokenV2: permit is expired")
}

func TestMintIsOwnerOnly(t *testing.T) {
	t.Parallel()
	c := newChain(t, 1337)
	c.mustRevert(c.relayer, qt.PackMint(addr(c.relayer), big.NewInt(1)), "QuidToken: caller is not the owner")
	c.mint(addr(c.payee), 42)
	if got, err := bind.Call(c.token, nil, qt.PackTotalSupply(), qt.UnpackTotalSupply); err != nil || got.Int64() != 42 {
		t.Errorf("totalSupply = %v, %v", got, err)
	}
}

// TestArtifactsMatchBindings fails when the committed artifacts, the generated bindings and the
// Solidity source disagree, which happens when one is edited without running build.sh. A real
// recompile needs npm, so the source is checked against the hash build.sh recorded for it.
func TestArtifactsMatchBindings(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("..", "artifacts")
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	bin := strings.TrimSpace(string(read("QuidToken.bin")))
	if want := strings.TrimPrefix(token.QuidTokenMetaData.Bin, "0x"); bin != want {
		t.Error("artifacts/QuidToken.bin differs from the bytecode in token.go: run evm/contracts/build.sh")
	}

	var fileABI, boundABI any
	if err := json.Unmarshal(read("QuidToken.abi.json"), &fileABI); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(token.QuidTokenMetaData.ABI), &boundABI); err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(fileABI)
	b, _ := json.Marshal(boundABI)
	if !bytes.Equal(a, b) {
		t.Error("artifacts/QuidToken.abi.json differs from the ABI in token.go: run evm/contracts/build.sh")
	}

	var build struct {
		Compiler     string `json:"compiler"`
		SourceSHA256 string `json:"sourceSha256"`
		Settings     struct {
			EVMVersion string `json:"evmVersion"`
		} `json:"settings"`
	}
	if err := json.Unmarshal(read("QuidToken.build.json"), &build); err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join("..", "QuidToken.sol"))
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(src); hex.EncodeToString(sum[:]) != build.SourceSHA256 {
		t.Error("QuidToken.sol changed since the artifacts were built: run evm/contracts/build.sh")
	}
	if !strings.HasPrefix(build.Compiler, "solc 0.8.37+") || build.Settings.EVMVersion != "cancun" {
		t.Errorf("artifacts built with %s for %s, want solc 0.8.37 for cancun", build.Compiler, build.Settings.EVMVersion)
	}
}
