package devnet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/rpc"
)

// Limits on one HTTP request, matching geth's own HTTP endpoint.
const (
	maxRequestBytes = 5 << 20
	maxBatchItems   = 1000
)

// Standard JSON-RPC 2.0 error codes.
const (
	codeParseError     = -32700
	codeInvalidRequest = -32600
	codeMethodNotFound = -32601
	codeInvalidParams  = -32602
	codeInternal       = -32603
	codeServer         = -32000
)

// rpcNamespaces are the only method prefixes served. The simulated node also answers admin_,
// debug_ and miner_ methods in-process; some of those could rewind the chain or open listeners,
// so they stay off the wire, as geth's own HTTP endpoint keeps them off by default.
var rpcNamespaces = []string{"eth_", "net_", "web3_", "txpool_"}

// handler serves standard Ethereum JSON-RPC by relaying each call to the simulated node's
// in-process RPC client, and mines the transactions a request sends before answering it.
//
// geth's simulated backend keeps its node and *rpc.Server private and exposes only an
// in-process client, so relaying through that client is the only way to serve the node's real
// API (formatting, errors and revert data included) without reimplementing it.
type handler struct {
	node  *rpc.Client
	miner *miner
}

type rpcMessage struct {
	Version string          `json:"jsonrpc,omitempty"`
	ID      json.RawMessage `json:"id,omitempty"`
	Method  string          `json:"method,omitempty"`
	Params  json.RawMessage `json:"params,omitempty"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   *rpcError       `json:"error,omitempty"`
}

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
}

var nullJSON = json.RawMessage("null")

// ServeHTTP answers JSON-RPC over HTTP POST, single calls and batches alike.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "devnet: send JSON-RPC requests with POST", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBytes))
	if err != nil {
		http.Error(w, "devnet: request body too large", http.StatusRequestEntityTooLarge)
		return
	}
	out := h.serve(r.Context(), body)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}

// serve answers one request body. An all-notification request gets an empty answer.
func (h *handler) serve(ctx context.Context, body []byte) []byte {
	body = bytes.TrimLeft(body, " \t\r\n")
	if len(body) == 0 || body[0] != '[' {
		var sent []common.Hash
		resp := h.call(ctx, body, &sent)
		// Like a real node, answer a send once the transaction is pooled; the block follows
		// within milliseconds. Holding the answer until the block is sealed would serialize
		// every sender that sends under a lock (a relayer's nonce sequence) behind block time.
		if len(sent) > 0 {
			h.miner.enqueue(sent)
		}
		return encode(resp)
	}

	var items []json.RawMessage
	if err := json.Unmarshal(body, &items); err != nil {
		return encode(errorResponse(nullJSON, codeParseError, "parse error"))
	}
	switch {
	case len(items) == 0:
		return encode(errorResponse(nullJSON, codeInvalidRequest, "empty batch"))
	case len(items) > maxBatchItems:
		return encode(errorResponse(nullJSON, codeInvalidRequest, "batch too large"))
	}
	resps := make([]*rpcMessage, 0, len(items))
	var sent []common.Hash
	for _, item := range items {
		// Transactions sent earlier in the batch share one block, mined before any later
		// call can look for them.
		if len(sent) > 0 && !isSend(peekMethod(item)) {
			h.mine(ctx, &sent)
		}
		if resp := h.call(ctx, item, &sent); resp != nil {
			resps = append(resps, resp)
		}
	}
	h.mine(ctx, &sent)
	if len(resps) == 0 {
		return nil
	}
	return encode(resps)
}

// mine waits until the transactions in sent are mined, and empties sent. Its error is not the
// caller's: the send itself succeeded, and the transaction stays in the pool.
func (h *handler) mine(ctx context.Context, sent *[]common.Hash) {
	if len(*sent) > 0 {
		_ = h.miner.mine(ctx, *sent)
		*sent = nil
	}
}

// call relays one JSON-RPC message and returns its response, or nil for a notification. The
// hash of a transaction it sends is appended to sent.
func (h *handler) call(ctx context.Context, raw []byte, sent *[]common.Hash) *rpcMessage {
	var req rpcMessage
	if err := json.Unmarshal(raw, &req); err != nil {
		var syntax *json.SyntaxError
		if errors.As(err, &syntax) {
			return errorResponse(nullJSON, codeParseError, "parse error")
		}
		return errorResponse(nullJSON, codeInvalidRequest, "invalid request")
	}
	id := req.ID
	if id == nil {
		id = nullJSON
	}
	if req.Method == "" {
		return errorResponse(id, codeInvalidRequest, "invalid request")
	}
	resp := h.dispatch(ctx, &req, sent)
	if req.ID == nil {
		return nil // a notification: run it, answer nothing
	}
	resp.ID = id
	return resp
}

func (h *handler) dispatch(ctx context.Context, req *rpcMessage, sent *[]common.Hash) *rpcMessage {
	if !allowed(req.Method) {
		return errorResponse(nil, codeMethodNotFound, fmt.Sprintf("the method %s does not exist/is not available", req.Method))
	}
	args, err := params(req.Params)
	if err != nil {
		return errorResponse(nil, codeInvalidParams, err.Error())
	}
	switch req.Method {
	case "eth_subscribe", "eth_unsubscribe":
		return errorResponse(nil, codeMethodNotFound, "notifications not supported") // as geth over HTTP
	case "eth_sendRawTransactionSync":
		return h.sendSync(ctx, args)
	}

	var result json.RawMessage
	if err := h.node.CallContext(ctx, &result, req.Method, args...); err != nil {
		return &rpcMessage{Version: "2.0", Error: toRPCError(err)}
	}
	if isSend(req.Method) {
		var hash common.Hash
		if json.Unmarshal(result, &hash) == nil {
			*sent = append(*sent, hash)
		}
	}
	if len(result) == 0 {
		result = nullJSON
	}
	return &rpcMessage{Version: "2.0", Result: result}
}

// sendSync implements eth_sendRawTransactionSync (EIP-7966) itself: the node's version waits for
// a block that, with mining on demand, is only sealed after the call returns.
func (h *handler) sendSync(ctx context.Context, args []any) *rpcMessage {
	if len(args) == 0 {
		return errorResponse(nil, codeInvalidParams, "missing value for required argument 0")
	}
	var hash common.Hash
	if err := h.node.CallContext(ctx, &hash, "eth_sendRawTransaction", args[0]); err != nil {
		return &rpcMessage{Version: "2.0", Error: toRPCError(err)}
	}
	if err := h.miner.mine(ctx, []common.Hash{hash}); err != nil {
		return errorResponse(nil, codeServer, fmt.Sprintf("transaction %s was added to the pool but not mined: %v", hash, err))
	}
	var receipt json.RawMessage
	if err := h.node.CallContext(ctx, &receipt, "eth_getTransactionReceipt", hash); err != nil {
		return &rpcMessage{Version: "2.0", Error: toRPCError(err)}
	}
	if len(receipt) == 0 || bytes.Equal(receipt, nullJSON) {
		return errorResponse(nil, 4, fmt.Sprintf("transaction %s was added to the pool but cannot be mined yet", hash))
	}
	return &rpcMessage{Version: "2.0", Result: receipt}
}

func isSend(method string) bool {
	return method == "eth_sendRawTransaction" || method == "eth_sendTransaction"
}

func allowed(method string) bool {
	for _, ns := range rpcNamespaces {
		if strings.HasPrefix(method, ns) {
			return true
		}
	}
	return false
}

// peekMethod returns the method of a batch item, or "" if it has none.
func peekMethod(raw json.RawMessage) string {
	var m struct {
		Method string `json:"method"`
	}
	_ = json.Unmarshal(raw, &m)
	return m.Method
}

// params splits positional JSON-RPC params into arguments the client re-encodes verbatim.
func params(raw json.RawMessage) ([]any, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, nullJSON) {
		return nil, nil
	}
	if raw[0] != '[' {
		return nil, errors.New("non-array args")
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, fmt.Errorf("invalid params: %w", err)
	}
	args := make([]any, len(items))
	for i, item := range items {
		args[i] = item
	}
	return args, nil
}

// toRPCError keeps the code and data of the node's error, such as a revert's code 3 and its
// ABI-encoded reason, which tools decode.
func toRPCError(err error) *rpcError {
	out := &rpcError{Code: codeInternal, Message: err.Error()}
	var coded rpc.Error
	if errors.As(err, &coded) {
		out.Code = coded.ErrorCode()
	}
	var withData rpc.DataError
	if errors.As(err, &withData) {
		out.Data = withData.ErrorData()
	}
	return out
}

func errorResponse(id json.RawMessage, code int, msg string) *rpcMessage {
	return &rpcMessage{Version: "2.0", ID: id, Error: &rpcError{Code: code, Message: msg}}
}

func encode(v any) []byte {
	out, err := json.Marshal(v)
	if err != nil {
		// Only a result the node itself produced can get here, and it was valid JSON.
		out, _ = json.Marshal(errorResponse(nullJSON, codeInternal, err.Error()))
	}
	return out
}

// inprocTransport is an http.RoundTripper that hands requests straight to the handler, so RPC
// gets the same mining and method filtering as the HTTP endpoint without a socket.
type inprocTransport struct{ h *handler }

func (t inprocTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		var err error
		body, err = io.ReadAll(io.LimitReader(req.Body, maxRequestBytes+1))
		_ = req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("devnet: read request: %w", err)
		}
	}
	if len(body) > maxRequestBytes {
		return nil, errors.New("devnet: request body too large")
	}
	out := t.h.serve(req.Context(), body)
	return &http.Response{
		Status:        "200 OK",
		StatusCode:    http.StatusOK,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": {"application/json"}},
		Body:          io.NopCloser(bytes.NewReader(out)),
		ContentLength: int64(len(out)),
		Request:       req,
	}, nil
}
