package matrix

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"unicode"
	"unicode/utf8"
)

// Secret holds a bearer credential (access, refresh or login token) or a password.
// Every way of printing it redacts it, so a secret cannot leak through an error
// string, a log line or a %v by accident; Reveal is the one deliberate way out.
type Secret string

const redacted = "[redacted]"

// Reveal returns the secret's value. Call it only where the value must leave the
// process on purpose: a request body, an Authorization header, the keyring, or
// output the user explicitly asked for.
func (s Secret) Reveal() string { return string(s) }

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s == "" }

// printable reports whether a token is valid UTF-8 free of control,
// bidirectional and invisible characters: safe to print when the user asks
// for it. A server handing out escape sequences or line breaks as a token is
// not believed.
func (s Secret) printable() bool {
	v := string(s)
	if !utf8.ValidString(v) {
		return false
	}
	for _, r := range v {
		if unicode.IsControl(r) || isBidiOrInvisible(r) {
			return false
		}
	}
	return true
}

type heldSecretsKey struct{}

// WithHeldSecrets returns ctx carrying more secrets this process holds for
// the account: server text in an error from a call made with ctx is scrubbed
// of them as well as of the secrets that call sent (a server may echo the
// refresh token in a reply to a request that carried only the access token).
func WithHeldSecrets(ctx context.Context, secrets ...Secret) context.Context {
	prev, _ := ctx.Value(heldSecretsKey{}).([]Secret)
	return context.WithValue(ctx, heldSecretsKey{}, append(slices.Clip(prev), secrets...))
}

// heldSecrets are the secrets WithHeldSecrets put into ctx.
func heldSecrets(ctx context.Context) []Secret {
	s, _ := ctx.Value(heldSecretsKey{}).([]Secret)
	return s
}

// String redacts the value.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString redacts the value for %#v.
func (s Secret) GoString() string { return fmt.Sprintf("%q", s.String()) }

// Format redacts the value for every verb, including %s, %q, %x and %v.
func (s Secret) Format(f fmt.State, verb rune) {
	switch verb {
	case 'q':
		fmt.Fprintf(f, "%q", s.String())
	default:
		fmt.Fprint(f, s.String())
	}
}

// LogValue redacts the value in structured logs.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }
