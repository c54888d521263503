package app

import (
	"testing"
	"time"
)

func TestFormatDuration(t *testing.T) {
	cases := []struct {
		d    time.Duration
		want string
	}{
		{-time.Second, "0s"},
		{0, "0s"},
		{time.Millisecond, "1s"}, // rounds up: time is left
		{59 * time.Second, "59s"},
		{59*time.Second + time.Millisecond, "1m 00s"},
		{4*time.Minute + 12*time.Second, "4m 12s"},
		{time.Hour + 5*time.Minute + 59*time.Second, "1h 05m"},
		{50 * time.Hour, "2d 2h"},
	}
	for _, c := range cases {
		if got := FormatDuration(c.d); got != c.want {
			t.Errorf("FormatDuration(%v) = %q, want %q", c.d, got, c.want)
		}
	}
}

func TestFormatWait(t *testing.T) {
	cases := []struct {
		d    time.Duration
		want string
	}{
		{0, "0 seconds"},
		{300 * time.Millisecond, "1 second"},
		{30 * time.Second, "30 seconds"},
		{2 * time.Minute, "2m 00s"},
	}
	for _, c := range cases {
		if got := FormatWait(c.d); got != c.want {
			t.Errorf("FormatWait(%v) = %q, want %q", c.d, got, c.want)
		}
	}
}
