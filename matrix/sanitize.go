package matrix

import (
	"encoding/base64"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxMessageRunes bounds server text kept in errors: enough for any real message,
// too short to flood a terminal.
const MaxMessageRunes = 300

// Sanitize makes server-provided text safe to print in a terminal: it removes
// ANSI/OSC/DCS escape sequences, C0 and C1 control characters, bidirectional
// overrides and invalid UTF-8, folds line breaks and tabs into single spaces and
// truncates the result to MaxMessageRunes.
func Sanitize(s string) string {
	return truncateRunes(stripUnsafe(s), MaxMessageRunes)
}

// SanitizeLimit is Sanitize with another bound on the length, in runes.
func SanitizeLimit(s string, max int) string {
	return truncateRunes(stripUnsafe(s), max)
}

// stripUnsafe is Sanitize without the length limit.
func stripUnsafe(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := false // a space is pending; written only before the next visible rune
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size <= 1 {
			i++
			continue
		}
		switch {
		case r == 0x1b:
			i = skipEscape(s, i+size)
			continue
		case r == 0x9b: // C1 CSI
			i = skipCSI(s, i+size)
			continue
		case r == 0x90 || r == 0x98 || r == 0x9d || r == 0x9e || r == 0x9f: // C1 DCS, SOS, OSC, PM, APC
			i = skipString(s, i+size)
			continue
		case r == '\t' || r == '\n' || r == '\r' || r == '\v' || r == '\f' || r == 0x85 || r == 0x2028 || r == 0x2029 || unicode.IsSpace(r):
			space = b.Len() > 0
		case unicode.IsControl(r) || isBidiOrInvisible(r):
			// dropped
		default:
			if space {
				b.WriteByte(' ')
				space = false
			}
			b.WriteRune(r)
		}
		i += size
	}
	return b.String()
}

// isBidiOrInvisible covers the runes that reorder or hide text (Trojan Source style).
func isBidiOrInvisible(r rune) bool {
	switch {
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069,
		r == 0x200e, r == 0x200f, r == 0x061c,
		r == 0x200b, r == 0xfeff, r == 0x2060, r == 0x00ad:
		return true
	}
	return false
}

// skipEscape skips the rest of an ESC sequence starting at i (just after ESC).
func skipEscape(s string, i int) int {
	if i >= len(s) {
		return i
	}
	switch s[i] {
	case '[':
		return skipCSI(s, i+1)
	case ']', 'P', 'X', '^', '_':
		return skipString(s, i+1)
	}
	// Two-byte sequences (ESC 7, ESC c, charset selection ESC ( B ...).
	if s[i] >= 0x20 && s[i] <= 0x2f {
		// intermediates, then one final byte
		for i < len(s) && s[i] >= 0x20 && s[i] <= 0x2f {
			i++
		}
		if i < len(s) {
			i++
		}
		return i
	}
	_, size := utf8.DecodeRuneInString(s[i:])
	return i + size
}

// skipCSI skips parameter and intermediate bytes up to and including the final byte.
func skipCSI(s string, i int) int {
	for i < len(s) {
		c := s[i]
		i++
		if c >= 0x40 && c <= 0x7e {
			return i
		}
		if c < 0x20 || c > 0x3f {
			// not a CSI byte: the sequence is broken, stop swallowing text
			return i
		}
	}
	return i
}

// skipString skips an OSC/DCS/SOS/PM/APC payload up to BEL, ESC \ or C1 ST.
func skipString(s string, i int) int {
	for i < len(s) {
		switch {
		case s[i] == 0x07:
			return i + 1
		case s[i] == 0x1b:
			if i+1 < len(s) && s[i+1] == '\\' {
				return i + 2
			}
			return i + 1
		case strings.HasPrefix(s[i:], "\u009c"):
			return i + len("\u009c")
		}
		i++
	}
	return i
}

func truncateRunes(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	n := 0
	for i := range s {
		if n == max-1 {
			return strings.TrimRight(s[:i], " ") + "…"
		}
		n++
	}
	return s
}

// minSecretRun is the shortest piece of a secret that is redacted wherever it
// appears: a server may echo a token without its prefix, cut short, or
// base64-encoded. Eight characters of a token's random part carry about 48
// bits, so ordinary server text matches one by chance practically never,
// while any echo long enough to help an attacker is caught. A secret shorter
// than this (a short password) is redacted where it appears whole.
const minSecretRun = 8

// scrub replaces every run of server text that shares minSecretRun or more
// characters with a known secret, or with its standard or URL-safe base64
// form, by [redacted].
func scrub(s string, secrets []Secret) string {
	windows := map[string]struct{}{}
	var whole []string
	for _, sec := range secrets {
		for i, form := range secretForms(sec.Reveal()) {
			if len(form) < minSecretRun {
				if i == 0 { // a short encoded piece would match ordinary text
					whole = append(whole, form)
				}
				continue
			}
			for i := 0; i+minSecretRun <= len(form); i++ {
				windows[form[i:i+minSecretRun]] = struct{}{}
			}
		}
	}
	hit := make([]bool, len(s))
	if len(windows) > 0 {
		for i := 0; i+minSecretRun <= len(s); i++ {
			if _, ok := windows[s[i:i+minSecretRun]]; ok {
				for j := i; j < i+minSecretRun; j++ {
					hit[j] = true
				}
			}
		}
	}
	for _, w := range whole {
		for off := 0; ; {
			k := strings.Index(s[off:], w)
			if k < 0 {
				break
			}
			for j := off + k; j < off+k+len(w); j++ {
				hit[j] = true
			}
			off += k + len(w)
		}
	}
	return replaceHits(s, hit)
}

// replaceHits writes s with every run of marked bytes replaced by [redacted].
func replaceHits(s string, hit []bool) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		if !hit[i] {
			b.WriteByte(s[i])
			i++
			continue
		}
		b.WriteString(redacted)
		for i < len(s) && hit[i] {
			i++
		}
	}
	return b.String()
}

// secretForms is a secret as it may appear in server text: as is (first), and its
// base64 encodings in both alphabets at each of the three byte alignments it
// can have inside a longer encoded text (characters that also depend on the
// neighbouring bytes are left out).
func secretForms(v string) []string {
	if v == "" {
		return nil
	}
	forms := []string{v}
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		for lead := 0; lead < 3; lead++ {
			e := enc.EncodeToString(append(make([]byte, lead), v...))
			// Drop the characters that mix in the leading filler bytes, and
			// a last one that would mix in whatever follows the secret.
			from := [3]int{0, 2, 3}[lead]
			to := len(e)
			if (lead+len(v))%3 != 0 {
				to--
			}
			if to > from {
				forms = append(forms, e[from:to])
			}
		}
	}
	return forms
}

// cleanServerText scrubs secrets before and after stripping (escapes could split a
// secret so that it only reappears once they are removed), then truncates.
func cleanServerText(s string, secrets []Secret) string {
	return truncateRunes(scrub(stripUnsafe(scrub(s, secrets)), secrets), MaxMessageRunes)
}
