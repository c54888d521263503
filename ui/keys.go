package ui

import "charm.land/bubbles/v2/key"

// helpMode selects which bindings the help bar lists.
type helpMode int

const (
	helpHome helpMode = iota
	helpHomeEmpty
	helpLogin
	helpDetails
	helpToken
	helpModal
	helpFallback
	helpConfirm
	helpFilter
	helpGrant
	helpLink
)

// KeyMap is every key binding, with the help text bubbles/help shows. It
// implements help.KeyMap for the screen currently in front.
type KeyMap struct {
	Up, Down      key.Binding
	Details       key.Binding
	Add           key.Binding
	Token         key.Binding
	Refresh       key.Binding
	SignOut       key.Binding
	SignIn        key.Binding
	Help          key.Binding
	Quit          key.Binding
	ForceQuit     key.Binding
	Back          key.Binding
	Next, Prev    key.Binding
	Submit        key.Binding
	Reveal        key.Binding
	DeleteDevice  key.Binding
	Copy          key.Binding
	CopyURL       key.Binding
	NewToken      key.Binding
	Yes, No       key.Binding
	Continue      key.Binding
	Cancel        key.Binding
	ModalSubmit   key.Binding
	DetailsUpDown key.Binding // help-only: device selection
	Move          key.Binding // help-only: up and down in one entry
	PageUp        key.Binding
	PageDown      key.Binding
	First, Last   key.Binding
	Filter        key.Binding
	FilterDone    key.Binding
	FilterClear   key.Binding
	// OAuth 2.0 sign-in and the account page
	CopyCode    key.Binding
	CopyLink    key.Binding
	Browser     key.Binding
	DeviceCode  key.Binding
	OpenPage    key.Binding
	NewCode     key.Binding
	UsePassword key.Binding
	UseOAuth    key.Binding
	AccountPage key.Binding
	Close       key.Binding

	mode helpMode
	// What the screen in front allows, so the bar lists only keys that work.
	needsSignIn  bool       // the selected account needs to sign in again
	tokenPhase   tokenPhase // on the token screen
	longList     bool       // the accounts do not fit on one screen
	noTokens     bool       // the keyring cannot give the selected account's tokens: r retries
	grantPhase   grantPhase // on the OAuth sign-in screen
	grantBrowser bool       // that screen is on the browser sign-in
	canOpen      bool       // a browser can be opened here
	formOAuth    bool       // the add form signs in through OAuth
	formCompat   bool       // the server also takes passwords: the form can switch
	accountPage  bool       // the account in front has an account page
}

// DefaultKeyMap returns mxauth's key bindings.
func DefaultKeyMap() KeyMap {
	b := func(keys []string, k, desc string) key.Binding {
		return key.NewBinding(key.WithKeys(keys...), key.WithHelp(k, desc))
	}
	return KeyMap{
		Up:            b([]string{"up", "k"}, "↑/k", "up"),
		Down:          b([]string{"down", "j"}, "↓/j", "down"),
		Details:       b([]string{"enter"}, "enter", "details"),
		Add:           b([]string{"a"}, "a", "add"),
		Token:         b([]string{"t"}, "t", "token"),
		Refresh:       b([]string{"r"}, "r", "refresh"),
		SignOut:       b([]string{"x"}, "x", "sign out"),
		SignIn:        b([]string{"s"}, "s", "sign in again"),
		Help:          b([]string{"?"}, "?", "help"),
		Quit:          b([]string{"q", "ctrl+c"}, "q", "quit"),
		ForceQuit:     b([]string{"ctrl+c"}, "ctrl+c", "quit"),
		Back:          b([]string{"esc"}, "esc", "back"),
		Next:          b([]string{"tab", "down"}, "tab", "next field"),
		Prev:          b([]string{"shift+tab", "up"}, "shift+tab", "previous field"),
		Submit:        b([]string{"enter"}, "enter", "sign in"),
		Reveal:        b([]string{"v"}, "v", "reveal token"),
		DeleteDevice:  b([]string{"d"}, "d", "delete device"),
		Copy:          b([]string{"c"}, "c", "copy"),
		CopyURL:       b([]string{"c"}, "c", "copy address"),
		NewToken:      b([]string{"n"}, "n", "new token"),
		Yes:           b([]string{"y"}, "y", "yes"),
		No:            b([]string{"n", "esc"}, "n/esc", "no"),
		Continue:      b([]string{"enter"}, "enter", "done in browser"),
		Cancel:        b([]string{"esc"}, "esc", "cancel"),
		ModalSubmit:   b([]string{"enter"}, "enter", "confirm"),
		DetailsUpDown: b([]string{"up", "down", "j", "k"}, "↑/↓", "select device"),
		Move:          b([]string{"up", "down", "j", "k"}, "↑↓/jk", "move"),
		PageUp:        b([]string{"pgup"}, "pgup", "page up"),
		PageDown:      b([]string{"pgdown"}, "pgdn", "page down"),
		First:         b([]string{"home"}, "home", "first"),
		Last:          b([]string{"end"}, "end", "last"),
		Filter:        b([]string{"/"}, "/", "filter"),
		FilterDone:    b([]string{"enter"}, "enter", "keep filter"),
		FilterClear:   b([]string{"esc"}, "esc", "clear filter"),
		CopyCode:      b([]string{"c"}, "c", "copy code"),
		CopyLink:      b([]string{"u"}, "u", "copy address"),
		Browser:       b([]string{"b"}, "b", "sign in with a browser"),
		DeviceCode:    b([]string{"b"}, "b", "sign in with a code"),
		OpenPage:      b([]string{"o"}, "o", "open in browser"),
		NewCode:       b([]string{"n"}, "n", "start again"),
		UsePassword:   b([]string{"ctrl+p"}, "ctrl+p", "use password"),
		UseOAuth:      b([]string{"ctrl+p"}, "ctrl+p", "use OAuth"),
		AccountPage:   b([]string{"o"}, "o", "account page"),
		Close:         b([]string{"esc"}, "esc", "close"),
	}
}

// ShortHelp is the one-line help for the current screen.
func (k KeyMap) ShortHelp() []key.Binding {
	switch k.mode {
	case helpHomeEmpty:
		return []key.Binding{k.Add, k.Help, k.Quit}
	case helpLogin:
		return append([]key.Binding{k.Next, k.Submit}, append(k.formSwitch(), k.Back, k.ForceQuit)...)
	case helpGrant:
		return append(k.grantKeys(), k.Cancel, k.Help)
	case helpLink:
		return k.linkKeys()
	case helpDetails:
		switch {
		case k.needsSignIn:
			return []key.Binding{k.SignIn, k.DeleteDevice, k.Back, k.Help}
		case k.noTokens:
			return []key.Binding{k.Refresh, k.Back, k.Help}
		}
		if k.accountPage {
			return []key.Binding{k.Reveal, k.Refresh, k.Token, k.AccountPage, k.DeleteDevice, k.Back, k.Help}
		}
		return []key.Binding{k.Reveal, k.Refresh, k.Token, k.DeleteDevice, k.Back, k.Help}
	case helpToken:
		return append(k.tokenKeys(), k.Back, k.Help)
	case helpModal:
		return []key.Binding{k.ModalSubmit, k.Cancel}
	case helpFallback:
		return []key.Binding{k.Continue, k.CopyURL, k.Cancel}
	case helpConfirm:
		return []key.Binding{k.Yes, k.No}
	case helpFilter:
		return []key.Binding{k.FilterDone, k.FilterClear, k.ForceQuit}
	}
	if k.longList {
		// A long list: finding an account comes before the rest.
		// (The list's last line names the paging keys.)
		switch {
		case k.needsSignIn:
			return []key.Binding{k.Details, k.SignIn, k.Filter, k.Add, k.SignOut, k.Help, k.Quit}
		case k.noTokens:
			return []key.Binding{k.Details, k.Refresh, k.Filter, k.Add, k.SignOut, k.Help, k.Quit}
		}
		return []key.Binding{k.Details, k.Refresh, k.Token, k.Filter, k.Add, k.SignOut, k.Help, k.Quit}
	}
	// Most useful first: when space runs out the entry before help goes.
	switch {
	case k.needsSignIn:
		return []key.Binding{k.Details, k.SignIn, k.Add, k.SignOut, k.Move, k.Help, k.Quit}
	case k.noTokens:
		return []key.Binding{k.Details, k.Refresh, k.Add, k.SignOut, k.Move, k.Help, k.Quit}
	}
	return []key.Binding{k.Details, k.Refresh, k.Token, k.Add, k.SignOut, k.Move, k.Help, k.Quit}
}

// tokenKeys are the token screen's own keys in its current phase.
func (k KeyMap) tokenKeys() []key.Binding {
	switch k.tokenPhase {
	case tokenShown:
		return []key.Binding{k.Copy, k.NewToken}
	case tokenUnsupported:
		if k.accountPage {
			if k.canOpen {
				return []key.Binding{k.AccountPage, k.CopyURL}
			}
			return []key.Binding{k.CopyURL}
		}
		return []key.Binding{k.NewToken}
	case tokenExpired, tokenFailed, tokenCancelled:
		return []key.Binding{k.NewToken}
	}
	return nil
}

// formSwitch is the add form's switch between OAuth and the password, on a
// server that takes both.
func (k KeyMap) formSwitch() []key.Binding {
	switch {
	case !k.formCompat:
		return nil
	case k.formOAuth:
		return []key.Binding{k.UsePassword}
	}
	return []key.Binding{k.UseOAuth}
}

// grantKeys are the OAuth sign-in screen's own keys in its current phase.
func (k KeyMap) grantKeys() []key.Binding {
	other := k.Browser
	if k.grantBrowser {
		other = k.DeviceCode
	}
	switch k.grantPhase {
	case grantWaiting:
		if k.grantBrowser {
			keys := []key.Binding{k.CopyURL}
			if k.canOpen {
				keys = append(keys, k.OpenPage)
			}
			return append(keys, other)
		}
		return []key.Binding{k.CopyCode, other}
	case grantDenied, grantExpired, grantFailed:
		return []key.Binding{k.NewCode, other}
	}
	return nil
}

// linkKeys are the account-page dialog's keys.
func (k KeyMap) linkKeys() []key.Binding {
	if k.canOpen {
		return []key.Binding{k.CopyURL, k.OpenPage, k.Close}
	}
	return []key.Binding{k.CopyURL, k.Close}
}

// FullHelp is the expanded help, in columns.
func (k KeyMap) FullHelp() [][]key.Binding {
	switch k.mode {
	case helpHomeEmpty:
		return [][]key.Binding{{k.Add}, {k.Help, k.Quit}}
	case helpLogin:
		return [][]key.Binding{{k.Next, k.Prev}, append([]key.Binding{k.Submit}, k.formSwitch()...), {k.Back, k.ForceQuit}}
	case helpGrant:
		own := k.grantKeys()
		if k.grantPhase == grantWaiting && !k.grantBrowser {
			own = []key.Binding{k.CopyCode, k.CopyLink}
			if k.canOpen {
				own = append(own, k.OpenPage)
			}
			own = append(own, k.Browser)
		}
		return [][]key.Binding{own, {k.Cancel, k.Help, k.ForceQuit}}
	case helpDetails:
		first := []key.Binding{k.Reveal, k.Refresh, k.Token}
		if k.needsSignIn {
			first = []key.Binding{k.SignIn}
		}
		second := []key.Binding{k.DetailsUpDown, k.DeleteDevice}
		if k.accountPage {
			second = append(second, k.AccountPage)
		}
		return [][]key.Binding{first, second, {k.Back, k.Help, k.Quit}}
	case helpToken:
		if keys := k.tokenKeys(); len(keys) > 0 {
			return [][]key.Binding{keys, {k.Back, k.Help, k.ForceQuit}}
		}
		return [][]key.Binding{{k.Back, k.Help, k.ForceQuit}}
	case helpModal, helpFallback, helpConfirm, helpFilter, helpLink:
		return [][]key.Binding{k.ShortHelp()}
	}
	return [][]key.Binding{
		{k.Up, k.Down, k.Details, k.Filter},
		{k.PageUp, k.PageDown, k.First, k.Last},
		{k.Add, k.SignIn, k.Token},
		{k.Refresh, k.SignOut, k.Help, k.Quit},
	}
}
