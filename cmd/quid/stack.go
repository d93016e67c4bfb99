package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"

	"github.com/quidpay/quid/devnet"
	"github.com/quidpay/quid/evm"
	"github.com/quidpay/quid/facilitator"
	"github.com/quidpay/quid/paywall"
)

// Roles of the devnet's well-known test accounts in the local stack.
const (
	sellerAccount  = 1
	buyerAccount   = 2
	relayerAccount = 3
)

// demoRoutes are the paid API of the local stack.
var demoRoutes = []struct {
	path, price, description, body string
}{
	{"/weather", "$0.01", "Current weather", `{"city":"Lisbon","tempC":21,"sky":"clear"}`},
	{"/quote", "$0.005", "A quotation", `{"quote":"Price is what you pay. Value is what you get."}`},
	{"/report", "$0.25", "Market report", `{"report":"stablecoin volumes up 4% week on week"}`},
}

// stack is the local development stack: a chain, a facilitator and a paid API, on loopback.
type stack struct {
	chain          *devnet.Devnet
	rpcURL         string
	facilitatorURL string
	apiURL         string
	servers        []*http.Server
}

type stackConfig struct {
	chainID                           uint64
	rpcAddr, facilitatorAddr, apiAddr string
}

func startStack(cfg stackConfig) (*stack, error) {
	chain, err := devnet.Start(devnet.Config{ChainID: cfg.chainID})
	if err != nil {
		return nil, fmt.Errorf("starting chain: %w", err)
	}
	s := &stack{chain: chain}
	if s.rpcURL, err = chain.Serve(cfg.rpcAddr); err != nil {
		s.Close()
		return nil, fmt.Errorf("serving JSON-RPC: %w", err)
	}
	accounts := chain.Accounts()
	fac, err := facilitator.New(facilitator.Config{
		Chain:   chain.Client(),
		ChainID: chain.ChainID(),
		Relayer: accounts[relayerAccount].Key,
	})
	if err != nil {
		s.Close()
		return nil, err
	}
	if s.facilitatorURL, err = s.serve(cfg.facilitatorAddr, fac.Handler()); err != nil {
		s.Close()
		return nil, err
	}
	// The paid API reaches the facilitator over HTTP, as a seller on another machine would.
	pw, err := paywall.New(paywall.Config{
		Facilitator: facilitator.NewClient(s.facilitatorURL),
		ChainID:     chain.ChainID(),
		PayTo:       accounts[sellerAccount].Address,
		Assets:      evm.NewRegistry(evm.DevToken(chain.ChainID())),
	})
	if err != nil {
		s.Close()
		return nil, err
	}
	mux := http.NewServeMux()
	for _, rt := range demoRoutes {
		charge, err := pw.Charge(paywall.Route{Price: rt.price, Description: rt.description, MimeType: "application/json"})
		if err != nil {
			s.Close()
			return nil, err
		}
		body := rt.body
		mux.Handle("GET "+rt.path, charge(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintln(w, body)
		})))
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "quid demo API: GET /weather ($0.01), /quote ($0.005), /report ($0.25)")
	})
	if s.apiURL, err = s.serve(cfg.apiAddr, mux); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// serve serves h on a loopback address and returns its base URL.
func (s *stack) serve(addr string, h http.Handler) (string, error) {
	ln, err := listenLoopback(addr)
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	s.servers = append(s.servers, srv)
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), nil
}

// listenLoopback listens on addr, refusing addresses other than loopback: the dev stack holds
// public test keys and must not be reachable from a network.
func listenLoopback(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("%s is not a loopback address", addr)
	}
	return net.Listen("tcp", addr)
}

func (s *stack) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var errs []error
	for _, srv := range s.servers {
		errs = append(errs, srv.Shutdown(ctx))
	}
	errs = append(errs, s.chain.Close())
	return errors.Join(errs...)
}

// balance returns an account's token balance.
func balance(ctx context.Context, chain *devnet.Devnet, token, owner common.Address) (evm.Amount, error) {
	ret, err := chain.Client().CallContract(ctx, ethereum.CallMsg{To: &token, Data: evm.BalanceOfCalldata(owner)}, nil)
	if err != nil {
		return evm.Amount{}, err
	}
	return evm.DecodeUint256(ret)
}
