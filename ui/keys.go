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

	mode helpMode
	// What the screen in front allows, so the bar lists only keys that work.
	needsSignIn bool       // the selected account needs to sign in again
	tokenPhase  tokenPhase // on the token screen
	longList    bool       // the accounts do not fit on one screen
	noTokens    bool       // the keyring cannot give the selected account's tokens: r retries
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
	}
}

// ShortHelp is the one-line help for the current screen.
func (k KeyMap) ShortHelp() []key.Binding {
	switch k.mode {
	case helpHomeEmpty:
		return []key.Binding{k.Add, k.Help, k.Quit}
	case helpLogin:
		return []key.Binding{k.Next, k.Submit, k.Back, k.ForceQuit}
	case helpDetails:
		switch {
		case k.needsSignIn:
			return []key.Binding{k.SignIn, k.DeleteDevice, k.Back, k.Help}
		case k.noTokens:
			return []key.Binding{k.Refresh, k.Back, k.Help}
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
	case tokenExpired, tokenFailed, tokenCancelled, tokenUnsupported:
		return []key.Binding{k.NewToken}
	}
	return nil
}

// FullHelp is the expanded help, in columns.
func (k KeyMap) FullHelp() [][]key.Binding {
	switch k.mode {
	case helpHomeEmpty:
		return [][]key.Binding{{k.Add}, {k.Help, k.Quit}}
	case helpLogin:
		return [][]key.Binding{{k.Next, k.Prev}, {k.Submit, k.Back, k.ForceQuit}}
	case helpDetails:
		first := []key.Binding{k.Reveal, k.Refresh, k.Token}
		if k.needsSignIn {
			first = []key.Binding{k.SignIn}
		}
		return [][]key.Binding{first, {k.DetailsUpDown, k.DeleteDevice}, {k.Back, k.Help, k.Quit}}
	case helpToken:
		if keys := k.tokenKeys(); len(keys) > 0 {
			return [][]key.Binding{keys, {k.Back, k.Help, k.ForceQuit}}
		}
		return [][]key.Binding{{k.Back, k.Help, k.ForceQuit}}
	case helpModal, helpFallback, helpConfirm, helpFilter:
		return [][]key.Binding{k.ShortHelp()}
	}
	return [][]key.Binding{
		{k.Up, k.Down, k.Details, k.Filter},
		{k.PageUp, k.PageDown, k.First, k.Last},
		{k.Add, k.SignIn, k.Token},
		{k.Refresh, k.SignOut, k.Help, k.Quit},
	}
}
