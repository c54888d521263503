package cli

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"mxauth/matrix"
	"mxauth/matrix/matrixtest/dendritetest"
)

// dendriteRateLimit runs its own Dendrite with the limiter on: 5 requests per
// device per second. Dendrite answers 429 with retry_after_ms and no
// Retry-After header.
func dendriteRateLimit(t *testing.T) {
	const threshold, cooloff = 5, time.Second
	srv := startDendrite(t, dendritetest.Options{RateLimitThreshold: threshold, RateLimitCooloff: cooloff})
	uid, pw := dendriteUser(t, srv, "rita")

	t.Run("client", func(t *testing.T) {
		resp := directLogin(t, srv.URL, uid, pw, "")
		c, err := matrix.NewClient(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		var limited error
		var ok atomic.Int32
		for round := 0; round < 5 && limited == nil; round++ {
			errs := make(chan error, 4*threshold)
			var wg sync.WaitGroup
			for range 4 * threshold {
				wg.Go(func() {
					_, err := c.WhoAmI(ctx, resp.AccessToken)
					if err == nil {
						ok.Add(1)
					}
					errs <- err
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				switch {
				case err == nil:
				case matrix.IsLimitExceeded(err):
					limited = err
				default:
					t.Fatalf("whoami in a burst: %v", err)
				}
			}
		}
		if limited == nil {
			t.Fatalf("no 429 from %d bursts of %d requests", 5, 4*threshold)
		}
		var merr *matrix.Error
		if !errors.As(limited, &merr) || merr.Status != http.StatusTooManyRequests || merr.ErrCode != "M_LIMIT_EXCEEDED" {
			t.Fatalf("429: %#v", limited)
		}
		if d, has := matrix.RetryAfter(limited); !has || d != cooloff {
			t.Fatalf("RetryAfter = %s, %v; want %s from retry_after_ms", d, has, cooloff)
		}
		// The wait came from the body: the slots are still full, and the
		// header is absent.
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/_matrix/client/v3/account/whoami", nil)
		req.Header.Set("Authorization", "Bearer "+resp.AccessToken.Reveal())
		raw, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw.Body.Close()
		if raw.StatusCode != http.StatusTooManyRequests || raw.Header.Get("Retry-After") != "" {
			t.Errorf("raw whoami right after the burst: %d, Retry-After %q; want 429 without the header",
				raw.StatusCode, raw.Header.Get("Retry-After"))
		}
		if !matrix.IsTransient(limited) {
			t.Error("a 429 is not transient")
		}
		if n := ok.Load(); n < threshold {
			t.Errorf("only %d requests got through before the limit of %d", n, threshold)
		}
		t.Logf("429 after %d successful requests: %v", ok.Load(), limited)
	})

	t.Run("mxauth", func(t *testing.T) {
		c := newCLI(t)
		c.ok(pw+"\n", "login", "--user", uid, "--password-stdin")
		tok := matrix.Secret(strings.TrimSpace(c.ok("", "token").stdout))
		cl, err := matrix.NewClient(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		// Keep mxauth's device saturated: every slot freed is taken again at once.
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		var hits atomic.Int32
		for range 2 * threshold {
			wg.Go(func() {
				for ctx.Err() == nil {
					if _, err := cl.WhoAmI(ctx, tok); matrix.IsLimitExceeded(err) {
						hits.Add(1)
					}
					time.Sleep(5 * time.Millisecond) // saturated all the same, without burning both cores
				}
			})
		}
		defer func() { cancel(); wg.Wait() }()
		deadline := time.Now().Add(10 * time.Second)
		for hits.Load() == 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if hits.Load() == 0 {
			t.Fatal("the burst never reached the limit")
		}

		// login-token reads the capabilities, a rate-limited endpoint: it
		// either gets through (and then learns Dendrite has no login tokens)
		// or stops with exit 6 saying how long to wait.
		sawLimit := false
		for i := 0; i < 3 && !sawLimit; i++ {
			r := c.run(pw+"\n", "login-token", "--password-stdin")
			switch r.code {
			case exitUnsupported:
				t.Logf("login-token got through the burst: %s", strings.TrimSpace(r.stderr))
			case exitRateLimited:
				sawLimit = true
				t.Logf("login-token during the burst: exit %d, %s", r.code, strings.TrimSpace(r.stderr))
				oneLineStderr(t, r)
				if !strings.Contains(r.stderr, "rate limited") || !strings.Contains(r.stderr, "try again in 1s") {
					t.Fatalf("want how long to wait: %s", r)
				}
			default:
				t.Fatalf("login-token during a burst: want exit %d or %d, got %s", exitUnsupported, exitRateLimited, r)
			}
		}
		// doctor reads the capabilities too: ok, or a FAIL line with the wait.
		r := c.run("", "doctor")
		switch {
		case r.code == exitOK:
		case r.code == exitRateLimited && strings.Contains(r.stdout, "rate limited, try again in 1s"):
			sawLimit = true
		default:
			t.Fatalf("doctor during a burst: %s", r)
		}
		if !sawLimit {
			t.Error("no mxauth command was rate limited while the device was saturated")
		}
		cancel()
		wg.Wait()
		// Once the burst ends the limit lifts and mxauth works again.
		time.Sleep(cooloff + 200*time.Millisecond)
		c.expect(exitUnsupported, pw+"\n", "login-token", "--password-stdin")
		c.ok("", "doctor")
	})
}
