//go:build linux || freebsd || openbsd || netbsd || dragonfly

package keyringtest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	dbus "github.com/godbus/dbus/v5"
)

const (
	secretsName      = "org.freedesktop.secrets"
	secretsPath      = "/org/freedesktop/secrets"
	loginCollection  = dbus.ObjectPath("/org/freedesktop/secrets/collection/login")
	serviceInterface = "org.freedesktop.Secret.Service"
)

// No <servicedir>: nothing is auto-started on this bus, so a missing Secret
// Service stays missing and no graphical unlock prompter can appear.
const busConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`

type impl struct {
	bus          *exec.Cmd
	daemon       *exec.Cmd
	daemonLog    *lockedBuffer
	daemonExited chan struct{}
	daemonErr    error     // set before daemonExited closes
	daemonEnd    time.Time // set before daemonExited closes
	stopping     atomic.Bool
	prompter     *dbus.Conn
	release      chan struct{}
	stopOnce     sync.Once
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func launch(opt Options) (k *Keyring, err error) {
	busBin, err1 := exec.LookPath("dbus-daemon")
	krBin, err2 := exec.LookPath("gnome-keyring-daemon")
	var missing []string
	if err1 != nil {
		missing = append(missing, "dbus-daemon")
	}
	if err2 != nil && !opt.NoSecretService {
		missing = append(missing, "gnome-keyring-daemon")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w (%s not found in PATH)", ErrNotInstalled, strings.Join(missing, " and "))
	}

	// A short root: the bus socket path must fit in sun_path (108 bytes).
	dir, err := os.MkdirTemp("", "mxkr-")
	if err != nil {
		return nil, errorf("%v", err)
	}
	k = &Keyring{Dir: dir, Password: opt.Password}
	defer func() {
		if err != nil {
			k.Stop()
		}
	}()

	dirs := map[string]string{
		"HOME":            "home",
		"XDG_CONFIG_HOME": "home/.config",
		"XDG_DATA_HOME":   "home/.local/share",
		"XDG_CACHE_HOME":  "home/.cache",
		"XDG_STATE_HOME":  "home/.local/state",
		"XDG_RUNTIME_DIR": "run",
	}
	for _, key := range []string{"HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME", "XDG_RUNTIME_DIR"} {
		p := filepath.Join(dir, dirs[key])
		if err := os.MkdirAll(p, 0o700); err != nil {
			return k, errorf("%v", err)
		}
		k.Env = append(k.Env, key+"="+p)
	}

	conf := filepath.Join(dir, "bus.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, busConfig, filepath.Join(dir, "bus")), 0o600); err != nil {
		return k, errorf("%v", err)
	}
	k.bus = exec.Command(busBin, "--config-file="+conf, "--nofork", "--nopidfile", "--print-address=1")
	k.bus.Env = Merge(os.Environ(), k.Env)
	out, err := k.bus.StdoutPipe()
	if err != nil {
		return k, errorf("%v", err)
	}
	busLog := &lockedBuffer{}
	k.bus.Stderr = busLog
	if err := k.bus.Start(); err != nil {
		return k, errorf("starting dbus-daemon: %v", err)
	}
	addrc := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		addrc <- strings.TrimSpace(line)
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case k.Address = <-addrc:
	case <-time.After(opt.Timeout):
	}
	if k.Address == "" {
		return k, errorf("dbus-daemon printed no address: %s", strings.TrimSpace(busLog.String()))
	}
	k.Env = append(k.Env, "DBUS_SESSION_BUS_ADDRESS="+k.Address)

	if opt.HangingPrompter {
		if err := k.startPrompter(); err != nil {
			return k, err
		}
	}
	if opt.NoSecretService {
		return k, nil
	}

	// --unlock reads the password from stdin up to EOF and uses every byte of
	// it, so it goes in without a trailing newline and stdin is then closed.
	k.daemon = exec.Command(krBin, "--foreground", "--unlock", "--components=secrets")
	k.daemon.Env = Merge(os.Environ(), k.Env)
	k.daemon.Stdin = strings.NewReader(opt.Password)
	k.daemonLog = &lockedBuffer{}
	k.daemon.Stdout = k.daemonLog
	k.daemon.Stderr = k.daemonLog
	if err := k.daemon.Start(); err != nil {
		return k, errorf("starting gnome-keyring-daemon: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		err := k.daemon.Wait()
		k.daemonErr, k.daemonEnd = err, time.Now()
		close(exited)
	}()
	k.daemonExited = exited

	deadline := time.Now().Add(opt.Timeout)
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return k, errorf("gnome-keyring-daemon exited: %s", strings.TrimSpace(k.daemonLog.String()))
		default:
		}
		if lastErr = k.loginReady(); lastErr == nil {
			return k, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return k, errorf("the Secret Service did not come up within %s: %v; daemon said: %s",
		opt.Timeout, lastErr, strings.TrimSpace(k.daemonLog.String()))
}

// conn opens a private connection, leaving godbus's shared session bus (the one
// go-keyring uses) alone.
func (k *Keyring) conn() (*dbus.Conn, error) {
	c, err := dbus.Dial(k.Address)
	if err != nil {
		return nil, err
	}
	if err := c.Auth(nil); err != nil {
		c.Close()
		return nil, err
	}
	if err := c.Hello(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// loginReady reports nil once the Secret Service is on the bus and has its
// login collection.
func (k *Keyring) loginReady() error {
	c, err := k.conn()
	if err != nil {
		return err
	}
	defer c.Close()
	var has bool
	if err := c.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, secretsName).Store(&has); err != nil {
		return err
	}
	if !has {
		return errors.New(secretsName + " is not on the bus yet")
	}
	v, err := c.Object(secretsName, secretsPath).GetProperty(serviceInterface + ".Collections")
	if err != nil {
		return err
	}
	paths, _ := v.Value().([]dbus.ObjectPath)
	for _, p := range paths {
		if p == loginCollection {
			return nil
		}
	}
	return errors.New("no login collection yet")
}

// Lock locks the login collection, as a screen locker or `secret-tool lock`
// would; reading or writing then needs an unlock prompt, which never comes here.
func (k *Keyring) Lock() error {
	c, err := k.conn()
	if err != nil {
		return errorf("lock: %v", err)
	}
	defer c.Close()
	var locked []dbus.ObjectPath
	var prompt dbus.ObjectPath
	err = c.Object(secretsName, secretsPath).Call(serviceInterface+".Lock", 0, []dbus.ObjectPath{loginCollection}).Store(&locked, &prompt)
	if err != nil {
		return errorf("lock: %v", err)
	}
	if len(locked) != 1 {
		return errorf("lock: the daemon locked %v and asked for prompt %v", locked, prompt)
	}
	return nil
}

// Unlock unlocks the login collection with the password, without a prompt,
// through gnome-keyring's internal interface.
func (k *Keyring) Unlock() error {
	c, err := k.conn()
	if err != nil {
		return errorf("unlock: %v", err)
	}
	defer c.Close()
	svc := c.Object(secretsName, secretsPath)
	var out dbus.Variant
	var session dbus.ObjectPath
	if err := svc.Call(serviceInterface+".OpenSession", 0, "plain", dbus.MakeVariant("")).Store(&out, &session); err != nil {
		return errorf("unlock: %v", err)
	}
	defer c.Object(secretsName, session).Call("org.freedesktop.Secret.Session.Close", 0)
	secret := struct {
		Session     dbus.ObjectPath
		Parameters  []byte
		Value       []byte
		ContentType string
	}{session, []byte{}, []byte(k.Password), "text/plain"}
	call := svc.Call("org.gnome.keyring.InternalUnsupportedGuiltRiddenInterface.UnlockWithMasterPassword", 0, loginCollection, secret)
	if call.Err != nil {
		return errorf("unlock: %v", call.Err)
	}
	return nil
}

// startPrompter owns gcr's system prompter name and blocks every call until
// Stop, so gnome-keyring waits on its unlock prompt as if a dialog were open.
func (k *Keyring) startPrompter() error {
	c, err := k.conn()
	if err != nil {
		return errorf("prompter: %v", err)
	}
	k.prompter = c
	k.release = make(chan struct{})
	wait := func(dbus.ObjectPath) *dbus.Error {
		<-k.release
		return dbus.NewError("org.freedesktop.DBus.Error.NoReply", []any{"prompter stopped"})
	}
	methods := map[string]any{
		"BeginPrompting": wait,
		"StopPrompting":  wait,
		"PerformPrompt": func(cb dbus.ObjectPath, typ string, props map[string]dbus.Variant, exchange string) *dbus.Error {
			return wait(cb)
		},
	}
	if err := c.ExportMethodTable(methods, "/org/gnome/keyring/Prompter", "org.gnome.keyring.internal.Prompter"); err != nil {
		return errorf("prompter: %v", err)
	}
	reply, err := c.RequestName("org.gnome.keyring.SystemPrompter", dbus.NameFlagDoNotQueue)
	if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		return errorf("prompter: cannot own the name (%v, %v)", reply, err)
	}
	return nil
}

// SearchItems returns the paths of the items whose attributes include attrs,
// locked or not (go-keyring stores "service" and "username").
func (k *Keyring) SearchItems(attrs map[string]string) ([]string, error) {
	c, err := k.conn()
	if err != nil {
		return nil, errorf("search: %v", err)
	}
	defer c.Close()
	var unlocked, locked []dbus.ObjectPath
	if err := c.Object(secretsName, secretsPath).Call(serviceInterface+".SearchItems", 0, attrs).Store(&unlocked, &locked); err != nil {
		return nil, errorf("search: %v", err)
	}
	var out []string
	for _, p := range append(unlocked, locked...) {
		out = append(out, string(p))
	}
	return out, nil
}

// Pause stops gnome-keyring-daemon with SIGSTOP, so every keyring call hangs
// as it would with a daemon that stopped answering; resume sends SIGCONT. Stop
// also works while paused.
func (k *Keyring) Pause() (resume func(), err error) {
	if k.daemon == nil || k.daemon.Process == nil {
		return nil, errorf("no gnome-keyring-daemon to pause")
	}
	if err := k.daemon.Process.Signal(syscall.SIGSTOP); err != nil {
		return nil, errorf("pausing gnome-keyring-daemon: %v", err)
	}
	var once sync.Once
	return func() { once.Do(func() { _ = k.daemon.Process.Signal(syscall.SIGCONT) }) }, nil
}

// Stop kills the daemons and removes Dir. It is safe to call more than once.
func (k *Keyring) Stop() {
	k.stopping.Store(true)
	k.stopOnce.Do(func() {
		if k.release != nil {
			close(k.release)
		}
		if k.prompter != nil {
			k.prompter.Close()
		}
		if k.daemon != nil && k.daemon.Process != nil {
			_ = k.daemon.Process.Kill()
			if k.daemonExited != nil {
				select {
				case <-k.daemonExited:
				case <-time.After(5 * time.Second):
				}
			}
		}
		if k.bus != nil && k.bus.Process != nil {
			_ = k.bus.Process.Kill()
			done := make(chan struct{})
			go func() { _ = k.bus.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
			}
		}
		if k.Dir != "" {
			_ = os.RemoveAll(k.Dir)
		}
	})
}

// Died says when and how the Secret Service's daemon ended, with the end of
// its log, if it ended before Stop; "" while it runs or after Stop. Tests that
// share one keyring report it, since every test after that moment fails.
func (k *Keyring) Died() string {
	if k.daemonExited == nil || k.stopping.Load() {
		return ""
	}
	select {
	case <-k.daemonExited:
	default:
		return ""
	}
	log := strings.TrimSpace(k.daemonLog.String())
	if len(log) > 2000 {
		log = log[len(log)-2000:]
	}
	return fmt.Sprintf("gnome-keyring-daemon ended at %s (%v); its log: %q", k.daemonEnd.Format("15:04:05.000"), k.daemonErr, log)
}
