package facilitator

import (
	"context"
	"errors"
	"math/big"
	"syscall"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rpc"
)

// Chain is what the facilitator needs of an EVM JSON-RPC endpoint. *ethclient.Client has it;
// tests substitute endpoints that fail.
type Chain interface {
	CodeAt(ctx context.Context, account common.Address, block *big.Int) ([]byte, error)
	CallContract(ctx context.Context, call ethereum.CallMsg, block *big.Int) ([]byte, error)
	EstimateGas(ctx context.Context, call ethereum.CallMsg) (uint64, error)
	PendingNonceAt(ctx context.Context, account common.Address) (uint64, error)
	NonceAt(ctx context.Context, account common.Address, block *big.Int) (uint64, error)
	SuggestGasTipCap(ctx context.Context) (*big.Int, error)
	HeaderByNumber(ctx context.Context, number *big.Int) (*types.Header, error)
	SendTransaction(ctx context.Context, tx *types.Transaction) error
	TransactionReceipt(ctx context.Context, hash common.Hash) (*types.Receipt, error)
	TransactionByHash(ctx context.Context, hash common.Hash) (*types.Transaction, bool, error)
	FilterLogs(ctx context.Context, q ethereum.FilterQuery) ([]types.Log, error)
}

var _ Chain = (*ethclient.Client)(nil)

// ErrUnavailable reports that the chain (or a remote facilitator) could not be asked. Nothing was
// decided about the payment; it may be presented again.
var ErrUnavailable = errors.New("facilitator: unavailable")

// isRejection reports whether err is an answer from the node (a JSON-RPC error such as a revert
// or "nonce too low") rather than a failure to reach it. Only an answer proves a transaction was
// not accepted.
func isRejection(err error) bool {
	var rpcErr rpc.Error
	return errors.As(err, &rpcErr)
}

// notSent reports an error that proves a request never reached the node: the connection was
// refused. Other transport errors (timeouts, resets) leave open whether it arrived.
func notSent(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED)
}

// revertMessage extracts the human part of a revert error without the RPC plumbing.
func revertMessage(err error) string {
	if err == nil {
		return ""
	}
	msg := err.Error()
	if len(msg) > 200 {
		msg = msg[:200]
	}
	return msg
}
