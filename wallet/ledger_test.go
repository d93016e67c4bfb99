package wallet_test

import (
	"github.com/quidpay/quid/store"
	"github.com/quidpay/quid/wallet"
)

var _ wallet.Ledger = (*store.DB)(nil)
