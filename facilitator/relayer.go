package facilitator

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"math/big"
	"sync"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
)

// errFeeTooHigh refuses a settlement whose network fee could exceed Config.MaxFee.
var errFeeTooHigh = errors.New("network fee above the configured cap")

// relayer sends transactions from one key with one nonce sequence. Sends are serialized: two
// concurrent settlements reading the same pending nonce is the classic relayer bug
// ("nonce too low", "replacement transaction underpriced").
type relayer struct {
	chain  Chain
	key    *ecdsa.PrivateKey
	addr   common.Address
	signer types.Signer

	maxFee *big.Int

	mu     sync.Mutex
	nonce  uint64
	seeded bool
}

func newRelayer(chain Chain, chainID uint64, key *ecdsa.PrivateKey, maxFee *big.Int) *relayer {
	return &relayer{
		maxFee: maxFee,
		chain:  chain,
		key:    key,
		addr:   crypto.PubkeyToAddress(key.PublicKey),
		signer: types.LatestSignerForChainID(new(big.Int).SetUint64(chainID)),
	}
}

// send signs a call, hands it to persist, and broadcasts it only if persist succeeded: what was
// sent is always on record first. It returns the transaction whenever one was persisted, even
// with an error: unless the error is a rejection by the node, the transaction may have been
// accepted, and its hash is how the outcome is found later.
func (r *relayer) send(ctx context.Context, to common.Address, data []byte, gas uint64, persist func(*types.Transaction) error) (*types.Transaction, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.seeded {
		n, err := r.chain.PendingNonceAt(ctx, r.addr)
		if err != nil {
			return nil, err
		}
		r.nonce, r.seeded = n, true
	}
	tip, err := r.chain.SuggestGasTipCap(ctx)
	if err != nil {
		return nil, err
	}
	head, err := r.chain.HeaderByNumber(ctx, nil)
	if err != nil {
		return nil, err
	}
	feeCap := new(big.Int).Add(tip, new(big.Int).Mul(head.BaseFee, big.NewInt(2)))
	if r.maxFee != nil {
		if cost := new(big.Int).Mul(feeCap, new(big.Int).SetUint64(gas)); cost.Cmp(r.maxFee) > 0 {
			return nil, fmt.Errorf("%w: up to %s wei, cap %s wei", errFeeTooHigh, cost, r.maxFee)
		}
	}
	tx, err := types.SignNewTx(r.key, r.signer, &types.DynamicFeeTx{
		Nonce:     r.nonce,
		GasTipCap: tip,
		GasFeeCap: feeCap,
		Gas:       gas,
		To:        &to,
		Data:      data,
	})
	if err != nil {
		return nil, err
	}
	if err := persist(tx); err != nil {
		return nil, err
	}
	if err := r.chain.SendTransaction(ctx, tx); err != nil {
		if notSent(err) {
			// The node never saw it: the nonce is still free for the next transaction.
			return tx, err
		}
		// The node refused it or may have it; its pending count is the truth for the next send.
		r.seeded = false
		return tx, err
	}
	r.nonce++
	return tx, nil
}
