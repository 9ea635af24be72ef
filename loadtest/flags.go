package loadtest

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseShare reads a sampling share for Config.VerifyRate: "1%", "0.5%" or
// a fraction like "0.01". Zero gives -1 (Config: verification off).
func ParseShare(s string) (float64, error) {
	s = strings.TrimSpace(s)
	div := 1.0
	if t, ok := strings.CutSuffix(s, "%"); ok {
		s, div = strings.TrimSpace(t), 100
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || v/div > 1 {
		return 0, fmt.Errorf("%q is not a share between 0 and 100%%", s)
	}
	if v == 0 {
		return -1, nil
	}
	return v / div, nil
}

// ParseSize reads a byte count with an optional KiB/MiB (or K/M) suffix.
func ParseSize(s string) (int, error) {
	s = strings.TrimSpace(s)
	mult := 1
	for _, u := range []struct {
		suf string
		m   int
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"kB", 1 << 10}, {"K", 1 << 10}, {"k", 1 << 10}, {"M", 1 << 20}} {
		if t, ok := strings.CutSuffix(s, u.suf); ok {
			s, mult = strings.TrimSpace(t), u.m
			break
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 || n > (1<<31)/mult {
		return 0, fmt.Errorf("%q is not a size", s)
	}
	return n * mult, nil
}
