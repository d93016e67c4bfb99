package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"text/tabwriter"

	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/wallet"
	"github.com/quidpay/quid/x402"
)

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", stderr)
	chainID := fs.Uint64("chain-id", 31337, "chain id of the embedded chain")
	if err := parse(fs, args); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "Starting an embedded EVM chain, a facilitator and a paid API on 127.0.0.1…")
	s, err := startStack(stackConfig{chainID: *chainID, rpcAddr: "127.0.0.1:0", facilitatorAddr: "127.0.0.1:0", apiAddr: "127.0.0.1:0"})
	if err != nil {
		return err
	}
	defer s.Close()

	accounts := s.chain.Accounts()
	token := evm.DevToken(s.chain.ChainID())
	buyer, seller := accounts[buyerAccount], accounts[sellerAccount]
	fmt.Fprintf(stdout, "  chain     %s  (chain id %d)\n  token     %s %s\n  API       %s\n  buyer     %s\n  seller    %s\n\n",
		s.rpcURL, s.chain.ChainID(), token.Symbol, token.Address.Hex(), s.apiURL, buyer.Address.Hex(), seller.Address.Hex())

	spy := &headerSpy{base: http.DefaultTransport}
	w, err := wallet.New(wallet.Config{Key: buyer.Key, Assets: evm.NewRegistry(token), Max: "1.00", Base: spy})
	if err != nil {
		return err
	}
	client := w.Client()

	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROUTE\tPRICE\tSETTLEMENT TX\tBUYER BEFORE → AFTER\tSELLER BEFORE → AFTER")
	var failed int
	for _, rt := range demoRoutes {
		buyerBefore, err := balance(ctx, s.chain, token.Address, buyer.Address)
		if err != nil {
			return err
		}
		sellerBefore, err := balance(ctx, s.chain, token.Address, seller.Address)
		if err != nil {
			return err
		}
		resp, err := client.Get(s.apiURL + rt.path)
		if err != nil {
			return fmt.Errorf("GET %s: %w", rt.path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		tx := "-"
		if st, ok := wallet.Settlement(resp); ok && st.Success {
			tx = st.Transaction
		}
		if resp.StatusCode != http.StatusOK {
			failed++
			tx = "FAILED: " + resp.Status
		}
		buyerAfter, _ := balance(ctx, s.chain, token.Address, buyer.Address)
		sellerAfter, _ := balance(ctx, s.chain, token.Address, seller.Address)
		fmt.Fprintf(tw, "GET %s\t%s\t%s\t%s → %s\t%s → %s\n", rt.path, rt.price, tx,
			token.Format(buyerBefore), token.Format(buyerAfter), token.Format(sellerBefore), token.Format(sellerAfter))
	}
	tw.Flush()

	// Presenting the last payment again must not buy a second response.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.apiURL+demoRoutes[len(demoRoutes)-1].path, nil)
	req.Header.Set(x402.HeaderPaymentSignature, spy.last)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	verdict := "refused"
	if resp.StatusCode == http.StatusOK {
		verdict = "SERVED — replay protection failed"
		failed++
	}
	reason := ""
	if pr, err := x402.DecodePaymentRequired(resp.Header.Get(x402.HeaderPaymentRequired)); err == nil {
		reason = pr.Error
	}
	fmt.Fprintf(stdout, "\nReplaying the last payment: %d %s (%s): %s\n", resp.StatusCode, http.StatusText(resp.StatusCode), reason, verdict)
	if failed > 0 {
		return fmt.Errorf("%d of %d checks failed", failed, len(demoRoutes)+1)
	}
	fmt.Fprintln(stdout, "\nAll calls paid, settled on chain and served once.")
	return nil
}

// headerSpy remembers the last payment header the wallet sent, so the demo can replay it.
type headerSpy struct {
	base http.RoundTripper
	last string
}

func (h *headerSpy) RoundTrip(r *http.Request) (*http.Response, error) {
	if v := r.Header.Get(x402.HeaderPaymentSignature); v != "" {
		h.last = v
	}
	return h.base.RoundTrip(r)
}
