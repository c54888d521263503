package keystore

import (
	"errors"
	"runtime"
	"sync"

	"github.com/zalando/go-keyring"
)

// Backend is a place for secrets, addressed by service and key. Get reports a
// missing item with ErrItemNotFound. Calls may block (a keyring waiting for an
// unlock prompt); the Store runs them behind its deadline.
type Backend interface {
	Get(service, key string) (string, error)
	Set(service, key, value string) error
	Delete(service, key string) error
	Name() string
}

const (
	secretServiceName = "Secret Service"
	memoryName        = "memory (demo: nothing is saved)"
)

// NewKeyringBackend returns the operating system's keyring through go-keyring:
// the Secret Service on Linux and the BSDs, the Keychain on macOS, the
// Credential Manager on Windows.
func NewKeyringBackend() Backend { return keyringBackend{} }

type keyringBackend struct{}

func (keyringBackend) Name() string {
	switch runtime.GOOS {
	case "darwin":
		return "macOS Keychain"
	case "windows":
		return "Windows Credential Manager"
	case "linux", "freebsd", "openbsd", "netbsd", "dragonfly":
		return secretServiceName
	}
	return "OS keyring (" + runtime.GOOS + ")"
}

func (keyringBackend) Get(service, key string) (string, error) {
	if err := checkSessionBus(); err != nil {
		return "", err
	}
	return keyring.Get(service, key)
}

func (keyringBackend) Set(service, key, value string) error {
	if err := checkSessionBus(); err != nil {
		return err
	}
	return keyring.Set(service, key, value)
}

func (keyringBackend) Delete(service, key string) error {
	if err := checkSessionBus(); err != nil {
		return err
	}
	return keyring.Delete(service, key)
}

var errNoSessionBus = errors.New("no D-Bus session bus")

// NewMemoryBackend returns a backend that keeps secrets in this process only,
// for tests and the demo. Its Name says so, since nothing survives exit.
func NewMemoryBackend() Backend { return &memoryBackend{items: map[[2]string]string{}} }

type memoryBackend struct {
	mu    sync.Mutex
	items map[[2]string]string
}

func (*memoryBackend) Name() string { return memoryName }

func (m *memoryBackend) Get(service, key string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.items[[2]string{service, key}]
	if !ok {
		return "", ErrItemNotFound
	}
	return v, nil
}

func (m *memoryBackend) Set(service, key, value string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.items[[2]string{service, key}] = value
	return nil
}

func (m *memoryBackend) Delete(service, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := [2]string{service, key}
	if _, ok := m.items[k]; !ok {
		return ErrItemNotFound
	}
	delete(m.items, k)
	return nil
}

// IsMemory reports whether b is the memory backend.
func IsMemory(b Backend) bool {
	_, ok := b.(*memoryBackend)
	return ok
}
