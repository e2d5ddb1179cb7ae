package backoff

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"go.uber.org/goleak"
)

func TestBackoffGrowsWithinBoundsAndResets(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: time.Second}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for i, w := range want {
		d := b.Next()
		hi := w * time.Millisecond
		assert.GreaterOrEqual(t, d, hi/2, "attempt %d", i)
		assert.LessOrEqual(t, d, hi, "attempt %d", i)
	}
	b.Reset()
	assert.LessOrEqual(t, b.Next(), 100*time.Millisecond)
}

func TestJitterAndSpreadStayInRange(t *testing.T) {
	for range 1000 {
		j := Jitter(time.Second, 0.25)
		assert.True(t, j >= 750*time.Millisecond && j <= time.Second, "jitter %s", j)
		s := Spread(time.Second, 0.1)
		assert.True(t, s >= time.Second && s <= 1100*time.Millisecond, "spread %s", s)
	}
	assert.Equal(t, time.Second, Jitter(time.Second, 0))
	assert.Equal(t, time.Duration(0), Spread(-time.Second, 0.5))
}

func TestSleepReturnsEarlyWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	assert.ErrorIs(t, Sleep(ctx, time.Minute), context.Canceled)
	assert.Less(t, time.Since(start), time.Second)
	assert.NoError(t, Sleep(context.Background(), time.Millisecond))
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
