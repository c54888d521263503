package clocktest

import (
	"testing"
	"time"
)

func TestClockMovesOnlyWhenAdvanced(t *testing.T) {
	start := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	c := New(start)
	first := c.Now()
	if !first.Equal(start) || !c.Now().Equal(first) {
		t.Fatalf("the clock moved by itself: %v, then %v", first, c.Now())
	}
	c.Advance(90 * time.Second)
	if got := c.Now(); !got.Equal(start.Add(90 * time.Second)) {
		t.Fatalf("after Advance(90s): %v", got)
	}
}
