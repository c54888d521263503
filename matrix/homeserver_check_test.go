package matrix_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"mxauth/matrix"
	"mxauth/matrix/homeserver"
)

// TestCheckHomeserver tells "no homeserver here" (a wrong path, a web page,
// JSON that is not the versions reply) apart from a homeserver and from a
// check that cannot tell (unreachable, failing).
func TestCheckHomeserver(t *testing.T) {
	srv := homeserver.New(homeserver.Options{})
	t.Cleanup(srv.Close)
	reply := func(status int, contentType, body string) string {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", contentType)
			w.WriteHeader(status)
			_, _ = w.Write([]byte(body))
		}))
		t.Cleanup(s.Close)
		return s.URL
	}
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	for _, c := range []struct {
		name, base string
		notHS      bool
	}{
		{"homeserver", srv.URL(), false},
		{"wrong path", srv.URL() + "/wrong", true},
		{"web page", reply(404, "text/html", "<html><body>Not Found</body></html>"), true},
		{"page for every path", reply(200, "text/html", "<!doctype html><html></html>"), true},
		{"other JSON", reply(200, "application/json", `{"status":"ok"}`), true},
		{"no versions", reply(200, "application/json", `{"versions":[]}`), true},
		{"failing", reply(502, "text/html", "<html>Bad Gateway</html>"), false},
		{"unreachable", gone.URL, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			cl, err := matrix.NewClient(c.base)
			if err != nil {
				t.Fatal(err)
			}
			err = cl.CheckHomeserver(context.Background())
			var de *matrix.DiscoveryError
			if got := errors.As(err, &de); got != c.notHS {
				t.Fatalf("CheckHomeserver: %v; want \"not a homeserver\": %v", err, c.notHS)
			}
		})
	}
}
