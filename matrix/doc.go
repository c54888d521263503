// Package matrix speaks the Matrix Client-Server API for login, refresh, login-token minting and UIA, and keeps sessions' tokens fresh.
package matrix
