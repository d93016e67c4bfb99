package bench

import (
	"math"
	"math/bits"
	"time"
)

// hist is a log-linear histogram of durations in nanoseconds: values below 2^subBits are counted
// exactly, larger ones in buckets whose width is 1/2^(subBits-1) of their magnitude, so any
// percentile read from it is within 1.6% of the exact one. It holds every sample of a scenario
// in a few kilobytes, whatever the sample count, so recording does not grow the heap whose peak
// the bench reports. The zero value is empty and ready; it is not safe for concurrent use.
type hist struct {
	counts []uint64
	n      uint64
	sum    float64
	min    int64
	max    int64
}

const subBits = 7 // 64 sub-buckets per power of two

// bucketOf returns the bucket of v ≥ 0.
func bucketOf(v int64) int {
	if v < 1<<subBits {
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - subBits
	return shift<<(subBits-1) + int(uint64(v)>>shift)
}

// bucketRange returns the smallest and largest values of bucket i.
func bucketRange(i int) (lo, hi int64) {
	if i < 1<<subBits {
		return int64(i), int64(i)
	}
	shift := i>>(subBits-1) - 1
	top := int64(i - shift<<(subBits-1))
	lo = top << shift
	return lo, lo + (int64(1) << shift) - 1
}

func (h *hist) record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	b := bucketOf(v)
	if b >= len(h.counts) {
		grown := make([]uint64, b+1+64)
		copy(grown, h.counts)
		h.counts = grown
	}
	h.counts[b]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += float64(v)
}

// merge adds o's samples to h.
func (h *hist) merge(o *hist) {
	if o.n == 0 {
		return
	}
	if len(o.counts) > len(h.counts) {
		grown := make([]uint64, len(o.counts))
		copy(grown, h.counts)
		h.counts = grown
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.n += o.n
	h.sum += o.sum
}

// quantile returns the q-quantile (0 < q ≤ 1) by nearest rank: the smallest recorded value v
// such that at least ⌈q·n⌉ samples are ≤ v, read as the midpoint of its bucket and clamped to
// the exact minimum and maximum, which are exact themselves. It returns 0 for an empty
// histogram.
func (h *hist) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(1, min(rank, h.n))
	switch rank {
	case h.n:
		return time.Duration(h.max)
	case 1:
		return time.Duration(h.min)
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, hi := bucketRange(i)
			v := lo + (hi-lo)/2
			return time.Duration(min(max(v, h.min), h.max))
		}
	}
	return time.Duration(h.max)
}

func (h *hist) mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.n))
}
