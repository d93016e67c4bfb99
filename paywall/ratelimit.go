package paywall

import (
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// rateLimiter holds one token bucket per (route, payer), in this process's memory: a rate is
// enforced per instance. Buckets refill continuously at Requests per Per, up to Requests.
type rateLimiter struct {
	now func() time.Time

	mu      sync.Mutex
	buckets map[rateKey]*bucket
}

type rateKey struct {
	route *route
	payer common.Address
}

type bucket struct {
	tokens float64
	last   time.Time
}

// maxBuckets bounds the buckets kept; past it, full buckets (payers idle long enough) go.
const maxBuckets = 100_000

func newRateLimiter(now func() time.Time) *rateLimiter {
	return &rateLimiter{now: now, buckets: map[rateKey]*bucket{}}
}

// take takes one request from payer's bucket on rt, or says how long until one is available.
func (l *rateLimiter) take(rt *route, payer common.Address, rate Rate) (time.Duration, bool) {
	now := l.now()
	capacity := float64(rate.Requests)
	perToken := rate.Per.Seconds() / capacity
	l.mu.Lock()
	defer l.mu.Unlock()
	k := rateKey{rt, payer}
	b, ok := l.buckets[k]
	if !ok {
		if len(l.buckets) >= maxBuckets {
			l.sweepLocked(now, perToken, capacity)
		}
		b = &bucket{tokens: capacity, last: now}
		l.buckets[k] = b
	}
	if elapsed := now.Sub(b.last).Seconds(); elapsed > 0 {
		b.tokens = min(capacity, b.tokens+elapsed/perToken)
	}
	b.last = now
	if b.tokens < 1 {
		return time.Duration((1 - b.tokens) * perToken * float64(time.Second)), false
	}
	b.tokens--
	return 0, true
}

// sweepLocked drops buckets that have refilled, which are the same as no bucket.
func (l *rateLimiter) sweepLocked(now time.Time, perToken, capacity float64) {
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Seconds()/perToken >= capacity {
			delete(l.buckets, k)
		}
	}
}
