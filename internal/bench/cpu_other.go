//go:build !unix

package bench

import "time"

// rusageSelf is not measured on this system; CPU columns read 0.
func rusageSelf() time.Duration { return 0 }
