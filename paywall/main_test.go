package paywall_test

import (
	"testing"

	"github.com/quidpay/quid/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }
