package matrix

import (
	"encoding/base64"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestSanitize(t *testing.T) {
	cases := map[string]string{
		"plain text":                                          "plain text",
		"  lead and trail \n":                                 "lead and trail",
		"line1\nline2\r\n\tline3":                             "line1 line2 line3",
		"red \x1b[31mALERT\x1b[0m done":                       "red ALERT done",
		"title \x1b]0;owned\x07 after":                        "title after",
		"osc st \x1b]8;;https://evil\x1b\\link\x1b]8;;\x1b\\": "osc st link",
		"dcs \x1bPq#0;2;0;0;0\x1b\\ end":                      "dcs end",
		"c1 csi \u009b2J end":                                 "c1 csi end",
		"c1 osc \u009d0;x\u009c end":                          "c1 osc end",
		"charset \x1b(B ok":                                   "charset ok",
		"save \x1b7 restore \x1b8":                            "save restore",
		"nul\x00bel\x07del\x7f":                               "nulbeldel",
		"bidi \u202eevil\u202c \u2066iso\u2069 \u200f":        "bidi evil iso",
		"zero\u200bwidth\ufeff":                               "zerowidth",
		"bad utf8 \xff\xfe ok":                                "bad utf8 ok",
		"unterminated \x1b[":                                  "unterminated",
		"unterminated osc \x1b]0;abc":                         "unterminated osc",
		"trailing esc \x1b":                                   "trailing esc",
		"broken csi \x1b[12\x01x":                             "broken csi x",
		"emoji 🙂 and ünïcödé":                                 "emoji 🙂 and ünïcödé",
		"sep\u2028para\u2029end":                              "sep para end",
		"":                                                    "",
	}
	for in, want := range cases {
		if got := Sanitize(in); got != want {
			t.Errorf("Sanitize(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSanitizeTruncates(t *testing.T) {
	long := strings.Repeat("é", MaxMessageRunes*3)
	got := Sanitize(long)
	if n := utf8.RuneCountInString(got); n != MaxMessageRunes || !strings.HasSuffix(got, "…") {
		t.Fatalf("truncated to %d runes: %q", n, got[len(got)-8:])
	}
	exact := strings.Repeat("a", MaxMessageRunes)
	if Sanitize(exact) != exact {
		t.Fatal("text at the limit was cut")
	}
}

func TestScrub(t *testing.T) {
	secret := Secret("s3cr3t-token")
	in := "echo s3cr3t-token and s3cr\x1b[0m3t-token"
	got := cleanServerText(in, []Secret{secret, ""})
	if strings.Contains(got, "s3cr3t") || strings.Count(got, redacted) != 2 {
		t.Fatalf("cleanServerText = %q", got)
	}
}

// checkSanitized asserts the properties every Sanitize output has.
func checkSanitized(t *testing.T, out string) {
	t.Helper()
	if !utf8.ValidString(out) {
		t.Fatalf("invalid UTF-8: %q", out)
	}
	if utf8.RuneCountInString(out) > MaxMessageRunes {
		t.Fatalf("too long: %d runes", utf8.RuneCountInString(out))
	}
	for _, r := range out {
		if unicode.IsControl(r) || isBidiOrInvisible(r) || r == '\n' || r == '\t' {
			t.Fatalf("unsafe rune %U in %q", r, out)
		}
	}
	if strings.HasPrefix(out, " ") || strings.HasSuffix(out, " ") || strings.Contains(out, "  ") {
		t.Fatalf("untidy spaces in %q", out)
	}
}

// TestScrubPiecesAndBase64: a server echoing part of a secret, or the secret
// base64-encoded (either alphabet, any alignment inside a longer encoding),
// gets every run of minSecretRun or more of its characters redacted; text
// that merely shares a few characters stays.
func TestScrubPiecesAndBase64(t *testing.T) {
	tok := "syt_YWxpY2U_Qm9hTkxyZWp0VW5lcnZQ_2mJ0aF"
	sec := []Secret{Secret(tok)}
	b64 := func(enc *base64.Encoding, prefix string) string {
		return enc.EncodeToString([]byte(prefix + tok + "!"))
	}
	for name, echo := range map[string]string{
		"without prefix":   strings.TrimPrefix(tok, "syt_"),
		"middle piece":     tok[10:20],
		"std base64":       base64.StdEncoding.EncodeToString([]byte(tok)),
		"url base64":       base64.URLEncoding.EncodeToString([]byte(tok + "??>")),
		"inside, offset 1": b64(base64.StdEncoding, "a"),
		"inside, offset 2": b64(base64.RawURLEncoding, "token="),
		"split by escapes": tok[:12] + "\x1b[0m" + tok[12:],
	} {
		got := cleanServerText("invalid token "+echo+" given", sec)
		if !strings.Contains(got, redacted) || !strings.HasPrefix(got, "invalid token ") || !strings.HasSuffix(got, " given") {
			t.Errorf("%s: %q", name, got)
		}
		for _, form := range secretForms(tok) {
			for i := 0; i+minSecretRun <= len(form); i++ {
				if strings.Contains(got, form[i:i+minSecretRun]) {
					t.Errorf("%s: %q still shows %q", name, got, form[i:i+minSecretRun])
				}
			}
		}
	}
	for _, harmless := range []string{"Invalid access token passed.", "syt_ is a prefix", "Qm9hTkx", "@alice:example.org"} {
		if got := cleanServerText(harmless, sec); got != harmless {
			t.Errorf("%q became %q", harmless, got)
		}
	}
	// A short password is still redacted where it appears whole.
	if got := cleanServerText("bad password hunter2.", []Secret{"hunter2"}); got != "bad password [redacted]." {
		t.Errorf("short secret: %q", got)
	}
}
