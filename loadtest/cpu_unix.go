//go:build unix

package loadtest

import (
	"syscall"
	"time"
)

// processCPU is the CPU time (user + system) this process has used: with
// the server's process_cpu_seconds_total it gives CPU per signature, a
// measure that other load on a shared machine does not distort the way it
// distorts wall-clock rates.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
