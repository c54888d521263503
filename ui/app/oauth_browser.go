package app

import (
	"context"
	"errors"

	"mxauth/matrix"
)

// browserFlow is the authorization code flow of a browser sign-in. This
// version signs in with the device grant only.
type browserFlow struct{}

func (l *OAuthLogin) startBrowser() error {
	return unsupportedErrorf("this version of mxauth cannot sign in through a browser yet; sign in with a code on another device (without --browser)")
}

func (b *browserFlow) wait(context.Context, *matrix.Client) (*matrix.OAuthTokenResponse, error) {
	return nil, errors.ErrUnsupported
}

func (b *browserFlow) close() {}
