package app

import (
	"context"
	"sync"

	"mxauth/matrix"
)

// browserFlow is the authorization code flow of a browser sign-in: the
// loopback listener the browser comes back to, and the flow's state.
type browserFlow struct {
	listener *matrix.LoopbackListener
	flow     *matrix.AuthCodeFlow
	once     sync.Once
}

// startBrowser opens the loopback listener and builds the authorization URL.
func (l *OAuthLogin) startBrowser() error {
	ln, err := matrix.ListenLoopback()
	if err != nil {
		return err
	}
	flow, err := matrix.NewAuthCodeFlow(l.meta, l.clientID, matrix.OAuthScope(l.deviceID), ln.RedirectURI())
	if err != nil {
		ln.Close()
		return err
	}
	l.browser = &browserFlow{listener: ln, flow: flow}
	l.AuthURL = flow.URL
	return nil
}

// wait takes the browser's callback and exchanges its code.
func (b *browserFlow) wait(ctx context.Context, c *matrix.Client) (*matrix.OAuthTokenResponse, error) {
	return b.flow.Wait(ctx, c, b.listener)
}

func (b *browserFlow) close() {
	b.once.Do(func() { _ = b.listener.Close() })
}
