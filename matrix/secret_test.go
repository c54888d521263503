package matrix

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestSecretRedaction(t *testing.T) {
	s := Secret("syt_very_secret_value")
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10s", "%-8v"} {
		if out := fmt.Sprintf(verb, s); strings.Contains(out, "very_secret") || strings.Contains(out, fmt.Sprintf("%x", "syt_very")) {
			t.Errorf("%s leaked: %q", verb, out)
		}
	}
	holder := struct {
		Tok Secret
		P   *Secret
	}{s, &s}
	for _, verb := range []string{"%v", "%+v", "%#v"} {
		if out := fmt.Sprintf(verb, holder); strings.Contains(out, "very_secret") {
			t.Errorf("struct %s leaked: %q", verb, out)
		}
	}
	if s.GoString() != `"[redacted]"` || s.String() != "[redacted]" || Secret("").String() != "" || s.Reveal() != "syt_very_secret_value" || s.IsZero() || !Secret("").IsZero() {
		t.Fatal("basic methods")
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "tok", s, "group", slog.GroupValue(slog.Any("inner", s)))
	if strings.Contains(buf.String(), "very_secret") {
		t.Fatalf("slog leaked: %s", buf.String())
	}
	b, err := json.Marshal(map[string]Secret{"access_token": s})
	if err != nil || string(b) != `{"access_token":"syt_very_secret_value"}` {
		t.Fatalf("JSON must carry the value: %s %v", b, err)
	}
	var back struct {
		T Secret `json:"t"`
	}
	if err := json.Unmarshal([]byte(`{"t":"abc"}`), &back); err != nil || back.T.Reveal() != "abc" {
		t.Fatal("JSON unmarshal")
	}
}
