package paywall

import (
	"errors"
	"net/http"
)

// errNotPaid is what a SettleOnCommit handler's writes return once settlement failed: its output
// is dropped and it may stop.
var errNotPaid = errors.New("paywall: response withheld: payment not settled")

// commitWriter holds a handler's headers until it commits its response (first WriteHeader,
// Write or Flush), settles then, and streams the rest through when settlement succeeded.
//
// It has no Unwrap on purpose: a handler reaching the underlying writer could flush headers
// before the payment settles.
type commitWriter struct {
	w      http.ResponseWriter
	header http.Header
	// commit settles for status; false means settlement failed and the refusal is written.
	commit    func(status int) bool
	committed bool
	pass      bool
}

func (c *commitWriter) Header() http.Header { return c.header }

func (c *commitWriter) WriteHeader(status int) {
	if c.committed || status < 200 {
		return
	}
	c.committed = true
	if !c.commit(status) {
		return
	}
	c.pass = true
	copyHeader(c.w.Header(), c.header)
	c.w.WriteHeader(status)
}

func (c *commitWriter) Write(b []byte) (int, error) {
	if !c.committed {
		c.WriteHeader(http.StatusOK)
	}
	if !c.pass {
		return 0, errNotPaid
	}
	return c.w.Write(b)
}

// Flush commits the response and flushes what was written, for streams such as server-sent
// events.
func (c *commitWriter) Flush() {
	c.FlushError()
}

// FlushError is Flush for http.ResponseController.
func (c *commitWriter) FlushError() error {
	if !c.committed {
		c.WriteHeader(http.StatusOK)
	}
	if !c.pass {
		return errNotPaid
	}
	return http.NewResponseController(c.w).Flush()
}

// finish commits a handler that wrote nothing: an empty 200 is settled like any other.
func (c *commitWriter) finish() {
	if !c.committed {
		c.WriteHeader(http.StatusOK)
	}
}

// statusWriter notes the status a handler answers with, streaming everything through.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(status int) {
	if s.status == 0 && status >= 200 {
		s.status = status
	}
	s.ResponseWriter.WriteHeader(status)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Flush() {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	http.NewResponseController(s.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusWriter) code() int {
	if s.status == 0 {
		return http.StatusOK
	}
	return s.status
}

func (b *bufferedWriter) code() int {
	if b.status == 0 {
		return http.StatusOK
	}
	return b.status
}
