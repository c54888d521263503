package app

import (
	"fmt"
	"time"
)

// FormatDuration renders a remaining time the way a person reads it: "59s",
// "4m 12s", "1h 05m", "2d 3h". It rounds up, so it never shows 0s while time
// is left. Every duration either front end shows goes through it.
func FormatDuration(d time.Duration) string {
	s := wholeSeconds(d)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm %02ds", s/60, s%60)
	case s < 86400:
		return fmt.Sprintf("%dh %02dm", s/3600, (s%3600)/60)
	default:
		return fmt.Sprintf("%dd %dh", s/86400, (s%86400)/3600)
	}
}

// FormatWait is FormatDuration for the end of a sentence ("Try again in …"):
// under a minute it spells the seconds out ("1 second", "30 seconds").
func FormatWait(d time.Duration) string {
	switch s := wholeSeconds(d); {
	case s == 1:
		return "1 second"
	case s < 60:
		return fmt.Sprintf("%d seconds", s)
	}
	return FormatDuration(d)
}

// wholeSeconds rounds d up to whole seconds; nothing left is 0.
func wholeSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}
