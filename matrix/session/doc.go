// Package session is the refresh engine: a Manager keeps each signed-in account's Session
// valid, refreshing its tokens before they expire (refresh.go), on a schedule (schedule.go)
// set by the timing rules (policy.go), with the secrets kept in a TokenStore (store.go).
package session
