// Package store owns quid's persistence contracts and their implementations. Each contract states
// its atomicity in its doc comment; implementations must honour it across goroutines and, for
// shared databases, across processes.
//
// It never decides policy: callers say what to claim or record, the store only makes it durable
// and atomic.
package store
