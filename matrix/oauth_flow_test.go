package matrix_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"mxauth/matrix"
	"mxauth/matrix/homeserver"
	"mxauth/matrix/matrixtest/browsertest"
)

// aliceAnswers is alice's answer on the authorization pages: she signs in if
// asked and decides d on a consent page that must name deviceID.
func aliceAnswers(deviceID string, d browsertest.Decision) browsertest.Answer {
	return browsertest.Answer{User: "alice", Password: "wonderland", Decision: d, Device: deviceID}
}

// oauthServer is a delegated homeserver with a registered client.
type oauthServer struct {
	srv      *homeserver.Server
	c        *matrix.Client
	meta     *matrix.AuthMetadata
	clientID string
}

func newOAuthServer(t *testing.T, opt homeserver.Options, clientOpts ...matrix.Option) *oauthServer {
	t.Helper()
	opt.Delegated = true
	srv := homeserver.New(opt)
	t.Cleanup(srv.Close)
	srv.AddUser("alice", "wonderland")
	return registerAt(t, srv, clientOpts...)
}

func registerAt(t *testing.T, srv *homeserver.Server, clientOpts ...matrix.Option) *oauthServer {
	t.Helper()
	ctx := t.Context()
	c, err := matrix.NewClient(srv.URL(), clientOpts...)
	if err != nil {
		t.Fatal(err)
	}
	meta, err := c.AuthMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	reg := matrix.NativeClient("mxauth test", "https://mxauth.example.org/",
		[]string{matrix.GrantDeviceCode, matrix.GrantRefreshToken, matrix.GrantAuthorizationCode}, []string{matrix.LoopbackRedirectURI})
	client, err := c.RegisterClient(ctx, meta, reg)
	if err != nil {
		t.Fatal(err)
	}
	return &oauthServer{srv: srv, c: c, meta: meta, clientID: client.ClientID}
}

// startDevice requests a device authorization for a fresh device ID.
func (o *oauthServer) startDevice(t *testing.T) (*matrix.DeviceAuthorization, string) {
	t.Helper()
	deviceID, err := matrix.NewDeviceID()
	if err != nil {
		t.Fatal(err)
	}
	da, err := o.c.RequestDeviceAuthorization(t.Context(), o.meta, o.clientID, matrix.OAuthScope(deviceID))
	if err != nil {
		t.Fatal(err)
	}
	return da, deviceID
}

// checkSignedIn proves the tokens work: whoami names alice on deviceID.
func (o *oauthServer) checkSignedIn(t *testing.T, tok *matrix.OAuthTokenResponse, deviceID string) {
	t.Helper()
	who, err := o.c.WhoAmI(t.Context(), tok.AccessToken)
	if err != nil || !strings.HasPrefix(who.UserID, "@alice:") || who.DeviceID != deviceID {
		t.Fatalf("whoami with the new token: %+v %v", who, err)
	}
	if tok.RefreshToken.IsZero() || tok.ReceivedAt.IsZero() {
		t.Fatalf("token reply %+v", tok)
	}
}

// tokenPolls are the token endpoint requests the server logged.
func tokenPolls(srv *homeserver.Server) []homeserver.LoggedRequest {
	var out []homeserver.LoggedRequest
	for _, r := range srv.Requests() {
		if r.Path == "/auth/oauth2/token" {
			out = append(out, r)
		}
	}
	return out
}

// pollLog records onPoll calls.
type pollLog struct {
	mu    sync.Mutex
	polls []matrix.DevicePoll
}

func (l *pollLog) add(p matrix.DevicePoll) {
	l.mu.Lock()
	l.polls = append(l.polls, p)
	l.mu.Unlock()
}

func (l *pollLog) get() []matrix.DevicePoll {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.polls)
}

// TestPollDeviceTokenApproved runs the whole device grant over the network:
// a lost first poll (the connection dropped) polls on, the user approves on
// the HTML pages while the grant is pending, and the tokens work.
func TestPollDeviceTokenApproved(t *testing.T) {
	t.Parallel()
	o := newOAuthServer(t, homeserver.Options{DeviceInterval: time.Second})
	da, deviceID := o.startDevice(t)
	if da.PollInterval() != time.Second {
		t.Fatalf("interval %v", da.PollInterval())
	}
	o.srv.InjectFault(homeserver.Fault{PathPrefix: "/auth/oauth2/token", DropAfterHandling: true})
	b := browsertest.New(t)
	var log pollLog
	tok, err := o.c.PollDeviceToken(t.Context(), o.meta, o.clientID, da, func(p matrix.DevicePoll) {
		log.add(p)
		if len(log.get()) == 1 {
			b.AnswerDevice(da.VerificationURI, da.UserCode, aliceAnswers(deviceID, browsertest.Approve))
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	o.checkSignedIn(t, tok, deviceID)
	want := []matrix.DevicePoll{{Attempt: 2, Interval: time.Second}}
	if got := log.get(); !slices.Equal(got, want) {
		t.Fatalf("onPoll saw %+v, want %+v", got, want)
	}
	polls := tokenPolls(o.srv)
	if len(polls) != 3 || polls[0].Fault != "drop" || polls[1].Status != 400 || polls[2].Status != 200 {
		t.Fatalf("token requests %+v", polls)
	}
	t.Logf("figure: %d token requests for a device grant with one lost poll", len(polls))
}

func TestPollDeviceTokenDenied(t *testing.T) {
	t.Parallel()
	o := newOAuthServer(t, homeserver.Options{DeviceInterval: time.Second})
	da, deviceID := o.startDevice(t)
	browsertest.New(t).AnswerDevice(da.VerificationURI, da.UserCode, aliceAnswers(deviceID, browsertest.Deny))
	tok, err := o.c.PollDeviceToken(t.Context(), o.meta, o.clientID, da, nil)
	if tok != nil || !matrix.IsAccessDenied(err) || matrix.IsExpiredToken(err) || matrix.IsTransient(err) {
		t.Fatalf("denied grant: %v %v", tok, err)
	}
	if !strings.Contains(err.Error(), "access_denied") {
		t.Fatalf("error text %q", err)
	}
}

// TestPollDeviceTokenWithoutRefreshToken: a reply without a refresh token is
// refused (the session could not stay signed in) and what it granted revoked.
func TestPollDeviceTokenWithoutRefreshToken(t *testing.T) {
	t.Parallel()
	o := newOAuthServer(t, homeserver.Options{DeviceInterval: time.Second})
	da, _ := o.startDevice(t)
	o.srv.InjectFault(homeserver.Fault{PathPrefix: "/auth/oauth2/token", Status: 200,
		Body: `{"access_token":"mat_GRANTED_0123456789","token_type":"Bearer","expires_in":300}`})
	tok, err := o.c.PollDeviceToken(t.Context(), o.meta, o.clientID, da, nil)
	if tok != nil || !errors.Is(err, matrix.ErrMalformedResponse) || !strings.Contains(err.Error(), "lacks refresh_token") || strings.Contains(err.Error(), "GRANTED") {
		t.Fatalf("reply without refresh token: %v %v", tok, err)
	}
	var revoked bool
	for _, r := range o.srv.Requests() {
		revoked = revoked || r.Path == "/auth/oauth2/revoke"
	}
	if !revoked {
		t.Fatal("the access token of the refused reply was not revoked")
	}
}

// handlerTransport serves requests in memory with h, on the calling
// goroutine: inside a synctest bubble the server then runs on the bubble's
// fake clock too, so intervals can be counted exactly without waiting.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if err := r.Context().Err(); err != nil {
		return nil, err
	}
	in := r.Clone(r.Context())
	in.RequestURI = r.URL.RequestURI()
	in.RemoteAddr = "127.0.0.1:40000"
	if in.Body == nil {
		in.Body = http.NoBody
	}
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, in)
	res := rec.Result()
	res.Request = r
	return res, nil
}

// fakeClockServer starts a delegated homeserver (outside any synctest
// bubble: its listener, unused, would keep the bubble's clock from moving)
// and returns a way to reach it in memory.
func fakeClockServer(t *testing.T, opt homeserver.Options) (*homeserver.Server, http.RoundTripper) {
	opt.Delegated = true
	srv := homeserver.New(opt)
	t.Cleanup(srv.Close)
	srv.AddUser("alice", "wonderland")
	return srv, handlerTransport{srv}
}

// inMemory registers a client at srv through tr (call it inside the bubble).
func inMemory(t *testing.T, srv *homeserver.Server, tr http.RoundTripper) *oauthServer {
	return registerAt(t, srv, matrix.WithHTTPClient(&http.Client{Transport: tr}))
}

// TestPollDeviceTokenIntervals counts the polls and the time between them on
// a fake clock: the server's interval, then +5 s for each slow_down (JSON or
// form-encoded), kept for all later requests; a 503 between them polls on at
// the same interval.
func TestPollDeviceTokenIntervals(t *testing.T) {
	srv, tr := fakeClockServer(t, homeserver.Options{DeviceInterval: 2 * time.Second})
	synctest.Test(t, func(t *testing.T) {
		o := inMemory(t, srv, tr)
		da, deviceID := o.startDevice(t)
		slow := homeserver.Fault{PathPrefix: "/auth/oauth2/token", Status: 400, Body: `{"error":"slow_down","error_description":"polling too fast"}`}
		o.srv.InjectFault(slow)
		o.srv.InjectFault(homeserver.Fault{PathPrefix: "/auth/oauth2/token", Status: 503, Body: `<html><title>busy</title></html>`})
		// Form-encoded, as some servers answer: x/oauth2 reads it, so must we.
		o.srv.InjectFault(homeserver.Fault{PathPrefix: "/auth/oauth2/token", Status: 400, Body: "error=slow_down",
			Header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}})
		b := browsertest.New(t, browsertest.Transport(tr))
		var log pollLog
		tok, err := o.c.PollDeviceToken(t.Context(), o.meta, o.clientID, da, func(p matrix.DevicePoll) {
			log.add(p)
			if !p.SlowDown {
				b.AnswerDevice(da.VerificationURI, da.UserCode, aliceAnswers(deviceID, browsertest.Approve))
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		o.checkSignedIn(t, tok, deviceID)
		want := []matrix.DevicePoll{
			{Attempt: 1, Interval: 7 * time.Second, SlowDown: true},
			{Attempt: 3, Interval: 12 * time.Second, SlowDown: true},
			{Attempt: 4, Interval: 12 * time.Second},
		}
		if got := log.get(); !slices.Equal(got, want) {
			t.Fatalf("onPoll saw %+v, want %+v", got, want)
		}
		var gaps []time.Duration
		prev := da.ReceivedAt
		for _, r := range tokenPolls(o.srv) {
			gaps = append(gaps, r.Time.Sub(prev))
			prev = r.Time
		}
		wantGaps := []time.Duration{2 * time.Second, 7 * time.Second, 7 * time.Second, 12 * time.Second, 12 * time.Second}
		if !slices.Equal(gaps, wantGaps) {
			t.Fatalf("time before each token request %v, want %v", gaps, wantGaps)
		}
	})
}

// TestPollDeviceTokenExpiry: the local clock ends the grant at expires_in
// (ErrDeviceCodeExpired), and a server saying expired_token ends it too.
func TestPollDeviceTokenExpiry(t *testing.T) {
	srv1, tr1 := fakeClockServer(t, homeserver.Options{DeviceInterval: time.Second})
	srv2, tr2 := fakeClockServer(t, homeserver.Options{DeviceInterval: 60 * time.Second})
	synctest.Test(t, func(t *testing.T) {
		o := inMemory(t, srv1, tr1)
		da, _ := o.startDevice(t)
		// 2.5 s left of the device code's life: polls at 1 s and 2 s, then expiry.
		da.ReceivedAt = da.ReceivedAt.Add(-time.Duration(da.ExpiresIn)*time.Second + 2500*time.Millisecond)
		var log pollLog
		start := time.Now()
		_, err := o.c.PollDeviceToken(t.Context(), o.meta, o.clientID, da, log.add)
		if !errors.Is(err, matrix.ErrDeviceCodeExpired) || !matrix.IsExpiredToken(err) || matrix.IsAccessDenied(err) {
			t.Fatalf("local expiry: %v", err)
		}
		if n := len(log.get()); n != 2 || time.Since(start) != 2500*time.Millisecond {
			t.Fatalf("%d polls, ended after %v", n, time.Since(start))
		}

		// The server's clock: its code lives 1200 s; ours is told it lives longer.
		o = inMemory(t, srv2, tr2)
		da, _ = o.startDevice(t)
		da.ExpiresIn *= 4
		_, err = o.c.PollDeviceToken(t.Context(), o.meta, o.clientID, da, nil)
		if oe, ok := matrix.AsOAuthError(err); !ok || oe.Code != matrix.OAuthExpiredToken || !matrix.IsExpiredToken(err) || errors.Is(err, matrix.ErrDeviceCodeExpired) {
			t.Fatalf("server expiry: %v", err)
		}
		if n := len(tokenPolls(o.srv)); n != 20 {
			t.Fatalf("%d polls in 1200 s at 60 s", n)
		}
		if _, err := o.c.PollDeviceToken(t.Context(), o.meta, o.clientID, da, nil); err == nil {
			t.Fatal("polling an ended grant succeeded")
		}
	})
}

// TestPollDeviceTokenCancel: cancelling ends the polling with ctx.Err().
func TestPollDeviceTokenCancel(t *testing.T) {
	srv, tr := fakeClockServer(t, homeserver.Options{DeviceInterval: time.Second})
	synctest.Test(t, func(t *testing.T) {
		o := inMemory(t, srv, tr)
		da, _ := o.startDevice(t)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		_, err := o.c.PollDeviceToken(ctx, o.meta, o.clientID, da, func(p matrix.DevicePoll) {
			if p.Attempt == 3 {
				cancel()
			}
		})
		if !errors.Is(err, context.Canceled) || matrix.IsTransient(err) {
			t.Fatalf("cancelled: %v", err)
		}
		if n := len(tokenPolls(o.srv)); n != 3 {
			t.Fatalf("%d polls after cancelling on the third", n)
		}
	})
}

// TestPollDeviceTokenEndings: refusals that are not pending end the polling
// at once; a token reply refused as unusable is revoked by its refresh token.
func TestPollDeviceTokenEndings(t *testing.T) {
	srv, tr := fakeClockServer(t, homeserver.Options{DeviceInterval: time.Second})
	synctest.Test(t, func(t *testing.T) {
		o := inMemory(t, srv, tr)
		da, _ := o.startDevice(t)
		srv.InjectFault(homeserver.Fault{PathPrefix: "/auth/oauth2/token", Status: 401, Body: `{"error":"invalid_client","error_description":"who are you \u001b[2J"}`})
		_, err := o.c.PollDeviceToken(t.Context(), o.meta, o.clientID, da, nil)
		if oe, ok := matrix.AsOAuthError(err); !ok || oe.Code != matrix.OAuthInvalidClient || strings.ContainsRune(err.Error(), 0x1b) {
			t.Fatalf("invalid_client: %v", err)
		}

		srv.ResetLog()
		srv.InjectFault(homeserver.Fault{PathPrefix: "/auth/oauth2/token", Status: 200, Body: `{"access_token":"mat_A_0123456789","refresh_token":"mar_R_0123456789","token_type":"mac"}`})
		_, err = o.c.PollDeviceToken(t.Context(), o.meta, o.clientID, da, nil)
		if !errors.Is(err, matrix.ErrMalformedResponse) || !strings.Contains(err.Error(), "other than Bearer") {
			t.Fatalf("unusable reply: %v", err)
		}
		if rs := srv.Requests(); len(rs) != 2 || rs[1].Path != "/auth/oauth2/revoke" {
			t.Fatalf("requests after an unusable reply: %+v", rs)
		}

		for _, bad := range []*matrix.DeviceAuthorization{nil, {}} {
			if _, err := o.c.PollDeviceToken(t.Context(), o.meta, o.clientID, bad, nil); err == nil {
				t.Fatalf("polled with %+v", bad)
			}
		}
		if _, err := o.c.PollDeviceToken(t.Context(), o.meta, "", da, nil); err == nil {
			t.Fatal("polled without a client ID")
		}
		insecure := *o.meta
		insecure.TokenEndpoint = "http://auth.example.com/token"
		if _, err := o.c.PollDeviceToken(t.Context(), &insecure, o.clientID, da, nil); err == nil {
			t.Fatal("polled a plain-http remote token endpoint")
		}
		ended := *da
		ended.ExpiresIn = 1
		ended.ReceivedAt = time.Now().Add(-time.Minute)
		if _, err := o.c.PollDeviceToken(t.Context(), o.meta, o.clientID, &ended, nil); !errors.Is(err, matrix.ErrDeviceCodeExpired) {
			t.Fatalf("already expired: %v", err)
		}
	})
}
