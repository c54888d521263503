// Package matrix speaks the Matrix Client-Server API for login, refresh, login-token minting and UIA.
// Keeping sessions' tokens fresh is package matrix/session's job.
package matrix
