package ui

import (
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"mxauth/matrix"
	"mxauth/ui/app"
)

type modalPurpose int

const (
	modalMintToken modalPurpose = iota
	modalDeleteDevice
)

// uiaModal asks for the account password (user-interactive auth) over the
// screen that needs it. It stays in one UIA session across wrong attempts.
type uiaModal struct {
	*common
	purpose   modalPurpose
	userID    string
	deviceID  string
	challenge *matrix.UIAChallenge
	session   string
	input     textinput.Model
	errText   string
	busy      bool
	// Set when no flow can continue with a password: the stage is done in a
	// browser at fallbackURL, then the request is resent with the session.
	stage       string
	fallbackURL string
	copy        copyState // of the fallback address

	flow     *app.UIAFlow                        // the request's UIA flow: its auth and policy
	resend   func(auth *matrix.AuthData) tea.Cmd // sends the request again with auth
	onCancel func()                              // tells the screen that asked
}

func modalInputWidth(w int) int { return min(36, max(16, w-30)) }

// uiaRequest is what a screen needs confirmed, and how to go on.
type uiaRequest struct {
	purpose          modalPurpose
	userID, deviceID string
	flow             *app.UIAFlow
	resend           func(auth *matrix.AuthData) tea.Cmd
	onCancel         func()
}

// showChallenge shows a challenge: a new dialog for a new session, or the
// same one (with "wrong password") when the server answers in the same one.
func (c *common) showChallenge(r uiaRequest, ch *matrix.UIAChallenge) {
	md := c.uia()
	if md == nil || md.purpose != r.purpose || md.userID != r.userID || md.session != ch.Session {
		in := textinput.New()
		in.Prompt = ""
		in.EchoMode = textinput.EchoPassword
		in.EchoCharacter = '•'
		in.CharLimit = 512
		in.SetStyles(c.styles.Input)
		in.SetWidth(modalInputWidth(c.width))
		in.Focus()
		md = &uiaModal{common: c, purpose: r.purpose, userID: r.userID, deviceID: r.deviceID, session: ch.Session, input: in,
			flow: r.flow, resend: r.resend, onCancel: r.onCancel}
		c.dialog = md
	} else {
		md.errText = ""
		if md.fallbackURL != "" && !ch.StageFailed() {
			md.errText = "That step is not finished yet. Complete it in the browser, then press enter."
		}
	}
	md.busy = false
	md.challenge = ch
	md.input.SetValue("")
	if ch.StageFailed() {
		if ch.ErrCode == "M_FORBIDDEN" {
			md.errText = "Wrong password, try again."
		} else {
			md.errText = "The server did not accept that: " + clean(ch.Message)
		}
	}
	md.stage, md.fallbackURL = "", ""
	if !ch.CanUsePassword() {
		stages := ch.NextStages()
		if len(stages) == 0 {
			md.errText = "The server asks for a confirmation mxauth cannot do. esc cancels."
			return
		}
		md.stage = stages[0]
		md.fallbackURL = c.b.FallbackURL(r.userID, md.stage, ch.Session)
	}
}

func (md *uiaModal) restyle() { md.input.SetStyles(md.styles.Input) }

func (md *uiaModal) Busy() bool { return md.busy }

func (md *uiaModal) HelpMode() helpMode {
	if md.fallbackURL != "" {
		return helpFallback
	}
	return helpModal
}

func (md *uiaModal) SetSize(w, _ int) { md.input.SetWidth(modalInputWidth(w)) }

// fail shows why the request did not go through; the dialog stays open.
func (md *uiaModal) fail(text string) {
	md.busy, md.errText = false, text
}

func (md *uiaModal) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case tea.KeyPressMsg:
		return md.onKey(msg)
	case tea.PasteMsg:
		if md.busy {
			return nil
		}
		var cmd tea.Cmd
		md.input, cmd = md.input.Update(msg)
		return cmd
	case tea.ClipboardMsg:
		if md.copy == copySent && md.fallbackURL != "" && msg.Content == md.fallbackURL {
			md.copy = copyConfirmed
		}
	}
	return nil
}

func (md *uiaModal) onKey(k tea.KeyPressMsg) tea.Cmd {
	km := md.keys
	switch {
	case key.Matches(k, km.Cancel):
		md.dialog = nil
		md.onCancel()
		return nil
	case md.busy:
		return nil
	case key.Matches(k, km.ModalSubmit, km.Continue):
		var auth *matrix.AuthData
		if md.fallbackURL != "" {
			auth = md.flow.Resend()
		} else if md.stage == "" {
			pw := md.input.Value()
			if pw == "" {
				md.errText = "Enter your password."
				return nil
			}
			auth = md.flow.Password(matrix.Secret(pw))
			// The password now lives only in the request being sent.
			md.input.SetValue("")
		} else {
			return nil
		}
		md.busy, md.errText = true, ""
		return md.resend(auth)
	}
	if md.fallbackURL != "" {
		if key.Matches(k, km.CopyURL) {
			md.copy = copySent
			return copyCmd(md.fallbackURL)
		}
		return nil
	}
	var cmd tea.Cmd
	md.input, cmd = md.input.Update(k)
	return cmd
}

func (md *uiaModal) View() string {
	s := md.styles
	width := min(56, max(40, md.width-8))
	var what string
	switch md.purpose {
	case modalDeleteDevice:
		what = "to delete device " + clean(md.deviceID) + "."
	default:
		what = "to mint a login token."
	}
	lines := []string{s.Header.Render("Confirm it's you"), ""}
	if md.fallbackURL != "" {
		lines = append(lines,
			wrap("The server wants a step mxauth cannot show here ("+clean(md.stage)+") for "+clean(md.userID)+", "+what, width),
			"",
			"Open this address in a browser and complete it:",
			s.Value.Render(ansi.Hardwrap(clean(md.fallbackURL), width, false)),
			"",
			"Then press enter here. c copies the address.",
		)
	} else {
		lines = append(lines,
			wrap("Enter the password of "+s.UserID.Render(clean(md.userID))+" "+what, width),
			"",
			s.Label.Render("Password ")+md.input.View(),
		)
	}
	switch {
	case md.busy:
		lines = append(lines, "", md.spin.View()+" checking…")
	case md.errText != "":
		lines = append(lines, "", s.Error.Render(wrap(md.errText, width)))
	case md.copy != copyNone:
		lines = append(lines, "", s.Muted.Render(wrap("Address "+copyNotes[md.copy]+".", width)))
	}
	hint := "enter confirm · esc cancel"
	if md.fallbackURL != "" {
		hint = "enter done in browser · c copy address · esc cancel"
	}
	lines = append(lines, "", s.Muted.Render(hint))
	return s.Modal.Render(strings.Join(lines, "\n"))
}
