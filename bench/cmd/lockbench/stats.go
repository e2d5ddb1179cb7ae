package main

import (
	"fmt"
	"slices"
	"time"
)

// sample is a set of latencies.
type sample []time.Duration

// quantile returns the q-quantile (nearest rank) of s.
func (s sample) quantile(q float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	c := slices.Clone(s)
	slices.Sort(c)
	i := int(q*float64(len(c))+0.999999) - 1
	i = max(0, min(i, len(c)-1))
	return c[i]
}

func (s sample) median() time.Duration { return s.quantile(0.5) }
func (s sample) p99() time.Duration    { return s.quantile(0.99) }

// ms formats d in milliseconds.
func ms(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}

// medP99 formats the median and p99 of s.
func (s sample) medP99() string {
	if len(s) == 0 {
		return "—"
	}
	return ms(s.median()) + " / " + ms(s.p99())
}

// ratio formats a/b.
func ratio(a, b float64) string {
	if b == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// yesNo renders whether a target is met.
func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

// bytesFmt formats a byte count.
func bytesFmt(b float64) string {
	switch {
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", b/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", b/(1<<10))
	default:
		return fmt.Sprintf("%.0f B", b)
	}
}
