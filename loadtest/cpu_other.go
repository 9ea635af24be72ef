//go:build !unix

package loadtest

import "time"

// processCPU is unknown off Unix; CPU figures are then left out.
func processCPU() time.Duration { return 0 }
