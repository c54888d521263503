package browsertest_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"mxauth/matrix"
	"mxauth/matrix/homeserver"
	"mxauth/matrix/matrixtest/browsertest"
)

// deviceGrant starts a delegated homeserver with alice and a device
// authorization for deviceID.
func deviceGrant(t *testing.T, deviceID string) (*matrix.AuthMetadata, *matrix.DeviceAuthorization) {
	t.Helper()
	srv := homeserver.New(homeserver.Options{Delegated: true})
	t.Cleanup(srv.Close)
	srv.AddUser("alice", "wonderland")
	meta, da, err := requestDeviceCode(t.Context(), srv.URL(), deviceID)
	if err != nil {
		t.Fatalf("device authorization: %v", err)
	}
	return meta, da
}

// requestDeviceCode registers a device-grant client at the homeserver and
// asks for a device code for deviceID.
func requestDeviceCode(ctx context.Context, hs, deviceID string) (*matrix.AuthMetadata, *matrix.DeviceAuthorization, error) {
	c, err := matrix.NewClient(hs)
	if err != nil {
		return nil, nil, err
	}
	meta, err := c.AuthMetadata(ctx)
	if err != nil {
		return nil, nil, err
	}
	reg, err := c.RegisterClient(ctx, meta, matrix.NativeClient("browsertest", "https://mxauth.example.org/", []string{matrix.GrantDeviceCode}, nil))
	if err != nil {
		return nil, nil, err
	}
	da, err := c.RequestDeviceAuthorization(ctx, meta, reg.ClientID, matrix.OAuthScope(deviceID))
	return meta, da, err
}

// recorder is a testing.TB whose Fatalf records the message and ends the
// step's goroutine, as the real one ends the test's.
type recorder struct {
	testing.TB
	msg string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// failure runs step with a recorder and returns how it failed the test.
func failure(t *testing.T, step func(testing.TB)) string {
	t.Helper()
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		step(r)
	}()
	<-done
	if r.msg == "" {
		t.Fatal("the step did not fail the test")
	}
	return r.msg
}

// TestAnswerDeviceKeepsTheSignIn: the device code is approved on the pages,
// and the browser stays signed in for the account page.
func TestAnswerDeviceKeepsTheSignIn(t *testing.T) {
	meta, da := deviceGrant(t, "BROWSERDEV1")
	b := browsertest.New(t)
	b.AnswerDevice(da.VerificationURI, da.UserCode, browsertest.Answer{User: "alice", Password: "wonderland", Decision: browsertest.Approve, Device: "BROWSERDEV1"})
	if p := b.Account(meta.AccountManagementURI, "", ""); p.Status != http.StatusOK || !strings.Contains(p.Body, "Account @alice:") {
		t.Fatalf("account page: %d %s", p.Status, p.Body)
	}
}

// TestStepsFailOnUnexpectedPages: a refused sign-in, a consent page for
// another device, a sign-in page for a browser without a user and an unknown
// code each fail the test, naming what was expected and showing the page.
func TestStepsFailOnUnexpectedPages(t *testing.T) {
	_, da := deviceGrant(t, "BROWSERDEV2")
	alice := browsertest.Answer{User: "alice", Password: "wonderland", Decision: browsertest.Approve}
	for name, c := range map[string]struct {
		step func(testing.TB)
		want []string
	}{
		"wrong password": {func(tb testing.TB) {
			wrong := alice
			wrong.Password = "looking-glass"
			browsertest.New(tb).AnswerDevice(da.VerificationURI, da.UserCode, wrong)
		}, []string{"sign-in as alice to be accepted", "Invalid username or password", "/auth/login"}},
		"another device": {func(tb testing.TB) {
			other := alice
			other.Device = "SOMEOTHERDEV"
			browsertest.New(tb).AnswerDevice(da.VerificationURI, da.UserCode, other)
		}, []string{"consent page naming device SOMEOTHERDEV", "BROWSERDEV2"}},
		"no user": {func(tb testing.TB) {
			browsertest.New(tb).AnswerDevice(da.VerificationURI, da.UserCode, browsertest.Answer{Decision: browsertest.Approve})
		}, []string{"no user to sign in as", `name="password"`}},
		"unknown code": {func(tb testing.TB) {
			browsertest.New(tb).AnswerDevice(da.VerificationURI, "NOCODE", alice)
		}, []string{"the consent page", "(HTTP 400)", "Unknown or expired code"}},
		"no decision": {func(tb testing.TB) {
			browsertest.New(tb).AnswerDevice(da.VerificationURI, da.UserCode, browsertest.Answer{User: "alice", Password: "wonderland"})
		}, []string{`neither "approve" nor "deny"`}},
	} {
		msg := failure(t, c.step)
		for _, w := range c.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: the failure does not say %q:\n%s", name, w, msg)
			}
		}
	}
	// None of the failed attempts answered the code: it is still there to approve.
	browsertest.New(t).AnswerDevice(da.VerificationURI, da.UserCode, alice)
}

// TestFailureShowsThePageSafely: a hostile page is shown without its
// terminal escapes and control characters, and cut short.
func TestFailureShowsThePageSafely(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "<p>\x1b]0;owned\x07\x1b[2J\u202eevil\u0000</p>"+strings.Repeat("é", 5000))
	}))
	t.Cleanup(srv.Close)
	msg := failure(t, func(tb testing.TB) {
		browsertest.New(tb).Authorize(srv.URL, browsertest.Answer{Decision: browsertest.Deny})
	})
	if strings.ContainsAny(msg, "\x1b\x07\u202e\x00") || !strings.Contains(msg, "evil") || !strings.Contains(msg, "more bytes)") {
		t.Fatalf("failure message: %q", msg)
	}
	if len(msg) > 2300 {
		t.Fatalf("failure message of %d bytes, want the page cut short", len(msg))
	}
}
