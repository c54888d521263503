package matrix

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// TestOAuthHostileReplies drives every OAuth call this package makes, the
// x/oauth2 ones included, through a server that echoes the request's secrets
// back in every form a reply can take, and checks each outcome is one clean
// line without them. It runs on a fake clock: the device grant's polling
// takes no real time.
func TestOAuthHostileReplies(t *testing.T) {
	secrets := []Secret{"mat_ACCESS_0123456789abcdef", "mar_REFRESH_0123456789abcdef", "DEVICECODE_0123456789abcdef", "AUTHCODE_0123456789abcdef", "VERIFIER_0123456789abcdef"}
	modes := []string{"json", "form", "html", "text", "badjson", "header", "error200", "huge"}
	synctest.Test(t, func(t *testing.T) {
		mode := ""
		handler := func(rw http.ResponseWriter, r *http.Request) {
			_ = r.ParseForm()
			var all []string
			for k, v := range r.PostForm {
				if k != "client_id" && k != "grant_type" {
					all = append(all, v...)
				}
			}
			echo := strings.Join(all, " ")
			q, _ := json.Marshal(echo)
			switch mode {
			case "json":
				rw.WriteHeader(400)
				fmt.Fprintf(rw, `{"error":%s,"error_description":%s}`, q, q)
			case "form":
				rw.Header().Set("Content-Type", "application/x-www-form-urlencoded")
				rw.WriteHeader(400)
				io.WriteString(rw, url.Values{"error": {echo}, "error_description": {echo + "\n\x1b[2J"}}.Encode())
			case "html":
				rw.WriteHeader(502)
				fmt.Fprintf(rw, "<html><title>%s</title></html>", echo)
			case "text":
				rw.Header().Set("Content-Type", "text/plain")
				rw.WriteHeader(503)
				io.WriteString(rw, echo)
			case "badjson":
				rw.WriteHeader(200)
				fmt.Fprintf(rw, `{"access_token":%s,"expires_in":%s`, q, q)
			case "header":
				rw.Header().Set("Retry-After", echo)
				rw.WriteHeader(429)
				fmt.Fprintf(rw, `{"error":"slow_down","error_description":%s}`, q)
			case "error200":
				rw.WriteHeader(200)
				fmt.Fprintf(rw, `{"error":%s,"access_token":%s,"token_type":%s}`, q, q, q)
			case "huge":
				rw.WriteHeader(200)
				fmt.Fprintf(rw, `{"error":%s,"pad":"%s"}`, q, strings.Repeat("x", MaxResponseBytes))
			}
		}
		hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			rec := httptest.NewRecorder()
			handler(rec, r)
			res := rec.Result()
			res.Request = r
			return res, nil
		})}
		var logs bytes.Buffer
		c, err := NewClient("http://127.0.0.1:1", WithHTTPClient(hc), WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
		if err != nil {
			t.Fatal(err)
		}
		meta := testMetadata("http://127.0.0.1:1")
		meta.DeviceAuthorizationEndpoint = "http://127.0.0.1:1/oauth2/device"
		meta.RevocationEndpoint = ""
		ctx := context.Background()
		calls := map[string]func() error{
			"device authorization": func() error {
				_, err := c.RequestDeviceAuthorization(WithHeldSecrets(ctx, secrets[1]), meta, "c", "scope "+secrets[1].Reveal())
				return err
			},
			"device polling": func() error {
				da := &DeviceAuthorization{DeviceCode: secrets[2], ExpiresIn: 30, Interval: 1, ReceivedAt: time.Now()}
				_, err := c.PollDeviceToken(ctx, meta, "c", da, nil)
				return err
			},
			"refresh": func() error {
				_, err := c.RefreshOAuth(ctx, OAuthClientOf(meta, "c"), secrets[1])
				return err
			},
			"code exchange": func() error {
				f := &AuthCodeFlow{RedirectURI: "http://127.0.0.1:1/callback", verifier: secrets[4], meta: meta, clientID: "c"}
				_, err := f.exchange(ctx, c, secrets[3])
				return err
			},
			"revocation": func() error {
				m := *meta
				m.RevocationEndpoint = "http://127.0.0.1:1/oauth2/revoke"
				return c.RevokeToken(ctx, &m, "c", secrets[0], TokenHintAccess)
			},
		}
		var out strings.Builder
		for _, m := range modes {
			mode = m
			for name, call := range calls {
				err := call()
				if err == nil && name == "revocation" && (m == "badjson" || m == "error200") {
					continue // RFC 7009: any 200 is success, whatever its body
				}
				if err == nil {
					t.Errorf("%s, %s: no error", m, name)
					continue
				}
				if strings.ContainsAny(err.Error(), "\x1b\n\r") {
					t.Errorf("%s, %s: error is not one clean line: %q", m, name, err)
				}
				t.Logf("%s, %s: %v", m, name, err)
				out.WriteString(err.Error() + "\n")
			}
		}
		out.WriteString(logs.String())
		for _, s := range secrets {
			if strings.Contains(out.String(), s.Reveal()) {
				t.Errorf("%s leaked:\n%s", s.Reveal()[:10], out.String())
			}
		}
		if strings.Count(out.String(), "[redacted]") < 2*len(calls) {
			t.Errorf("the echo did not reach the errors; the test proves nothing:\n%s", out.String())
		}
	})
}
