package main

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestBalancedOrder: every round is an order of all kinds, and over a
// period each kind comes first, and follows each other kind, equally often.
func TestBalancedOrder(t *testing.T) {
	for k := 1; k <= 7; k++ {
		period := k
		if k%2 == 1 {
			period = 2 * k
		}
		first := map[int]int{}
		follows := map[[2]int]int{}
		for r := range period {
			o := balancedOrder(k, r)
			sorted := slices.Sorted(slices.Values(o))
			for i, v := range sorted {
				assert.Equal(t, i, v, "k=%d round %d: %v is not an order of all kinds", k, r, o)
			}
			first[o[0]]++
			for j := 1; j < k; j++ {
				follows[[2]int{o[j-1], o[j]}]++
			}
		}
		for a := range k {
			assert.Equal(t, period/k, first[a], "k=%d: kind %d first", k, a)
			for b := range k {
				if a != b {
					assert.Equal(t, period/k, follows[[2]int{a, b}], "k=%d: %d followed by %d", k, a, b)
				}
			}
		}
	}
}
