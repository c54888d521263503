package ui

import (
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"

	"mxauth/matrix"
)

type modalPurpose int

const (
	modalMintToken modalPurpose = iota
	modalDeleteDevice
)

// uiaModal asks for the account password (user-interactive auth) over the
// screen that needs it. It stays in one UIA session across wrong attempts.
type uiaModal struct {
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
}

func modalInputWidth(w int) int { return min(36, max(16, w-30)) }

// openOrUpdateModal shows a challenge: a new modal for a new session, or the
// same modal (with "wrong password") when the server answers in the same one.
func (m *model) openOrUpdateModal(p modalPurpose, userID, deviceID string, ch *matrix.UIAChallenge) {
	md := m.modal
	if md == nil || md.purpose != p || md.userID != userID || md.session != ch.Session {
		in := textinput.New()
		in.Prompt = ""
		in.EchoMode = textinput.EchoPassword
		in.EchoCharacter = '•'
		in.CharLimit = 512
		in.SetStyles(m.styles.Input)
		in.SetWidth(modalInputWidth(m.width))
		in.Focus()
		md = &uiaModal{purpose: p, userID: userID, deviceID: deviceID, session: ch.Session, input: in}
		m.modal = md
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
		md.fallbackURL = m.b.FallbackURL(userID, md.stage, ch.Session)
	}
}

func (m *model) modalKey(k tea.KeyPressMsg) tea.Cmd {
	md := m.modal
	switch {
	case key.Matches(k, m.keys.Cancel):
		m.cancelModal()
		return nil
	case md.busy:
		return nil
	case k.String() == "enter":
		var auth *matrix.AuthData
		if md.fallbackURL != "" {
			auth = matrix.SessionAuth(md.session)
		} else if md.stage == "" {
			pw := md.input.Value()
			if pw == "" {
				md.errText = "Enter your password."
				return nil
			}
			auth = matrix.PasswordAuth(md.session, md.userID, matrix.Secret(pw))
			// The password now lives only in the request being sent.
			md.input.SetValue("")
		} else {
			return nil
		}
		md.busy, md.errText = true, ""
		return m.resendUIA(auth)
	}
	if md.fallbackURL != "" {
		if k.String() == "c" {
			md.copy = copySent
			return copyCmd(md.fallbackURL)
		}
		return nil
	}
	var cmd tea.Cmd
	md.input, cmd = md.input.Update(k)
	return cmd
}

func (m *model) resendUIA(auth *matrix.AuthData) tea.Cmd {
	md := m.modal
	switch md.purpose {
	case modalDeleteDevice:
		return m.deleteDeviceCmd(md.userID, md.deviceID, auth)
	default:
		return m.mintCmd(auth)
	}
}

func (m *model) cancelModal() {
	md := m.modal
	m.modal = nil
	switch md.purpose {
	case modalMintToken:
		m.token.seq = m.nextSeq() // drop an answer still on its way
		m.token.phase = tokenCancelled
		m.token.session = ""
	case modalDeleteDevice:
		m.details.deleting = false
		m.details.note = "Device not deleted."
	}
}

func (m *model) modalView() string {
	md := m.modal
	s := m.styles
	width := min(56, max(40, m.width-8))
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
			s.Value.Render(hardWrap(clean(md.fallbackURL), width)),
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
		lines = append(lines, "", m.spin.View()+" checking…")
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

// hardWrap breaks text without spaces (a URL) every w cells.
func hardWrap(s string, w int) string {
	r := []rune(s)
	var parts []string
	for len(r) > w {
		parts = append(parts, string(r[:w]))
		r = r[w:]
	}
	parts = append(parts, string(r))
	return strings.Join(parts, "\n")
}
