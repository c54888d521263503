// Command refreshsoak signs many accounts in to an in-process homeserver with
// short-lived access tokens, lets one session Manager keep them all fresh for a
// while, and reports refreshes, lapses, lateness, goroutines and memory.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"mxauth/keystore"
	"mxauth/matrix"
	"mxauth/matrix/homeserver"
	"mxauth/matrix/session"
)

func main() {
	accounts := flag.Int("accounts", 10000, "number of accounts (one session each)")
	lifetime := flag.Duration("lifetime", 5*time.Second, "access-token lifetime the server grants")
	duration := flag.Duration("duration", 60*time.Second, "how long the manager runs after every account is signed in")
	workers := flag.Int("workers", 32, "refresh worker pool size")
	checkEvery := flag.Duration("check-every", time.Millisecond, "pause between AccessToken checks on random accounts")
	loginBatch := flag.Int("login-parallel", 64, "concurrent logins while signing accounts in")
	storeKind := flag.String("store", "keystore", "token store: keystore (memory keyring, real lock files) or memory (session.MemoryStore)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile to this file")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "refreshsoak:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if err := run(*accounts, *lifetime, *duration, *workers, *checkEvery, *loginBatch, *storeKind); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "refreshsoak:", err)
		os.Exit(1)
	}
}

// sampler tracks the goroutine count while the manager runs.
type sampler struct {
	mu       sync.Mutex
	min, max int
}

func (s *sampler) sample() {
	n := runtime.NumGoroutine()
	s.mu.Lock()
	if s.min == 0 || n < s.min {
		s.min = n
	}
	if n > s.max {
		s.max = n
	}
	s.mu.Unlock()
}

func run(accounts int, lifetime, duration time.Duration, workers int, checkEvery time.Duration, parallel int, storeKind string) error {
	srv := homeserver.New(homeserver.Options{AccessTokenLifetime: lifetime, LogLimit: 1000})
	defer srv.Close()

	// By default the memory keyring behind the real keystore: per-account lock
	// files, JSON items and deadlines as in normal use, without touching the
	// user's keyring.
	var store session.TokenStore
	switch storeKind {
	case "keystore":
		dir, err := os.MkdirTemp("", "refreshsoak")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		ks, err := keystore.Open(keystore.Options{Backend: keystore.NewMemoryBackend(), Dir: dir})
		if err != nil {
			return err
		}
		defer ks.Close()
		store = ks
	case "memory":
		store = session.NewMemoryStore()
	default:
		return fmt.Errorf("unknown -store %q", storeKind)
	}

	// One connection pool big enough for the workers, so connections are reused.
	hc := &http.Client{Transport: &http.Transport{MaxIdleConns: 4 * (workers + parallel), MaxIdleConnsPerHost: 4 * (workers + parallel)}}
	client, err := matrix.NewClient(srv.URL(), matrix.WithHTTPClient(hc))
	if err != nil {
		return err
	}

	baseGoroutines := runtime.NumGoroutine()
	mgr := session.NewManager(store, session.ManagerOptions{Workers: workers})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runDone := make(chan struct{})
	go func() { mgr.Run(ctx); close(runDone) }()
	go func() { // nobody shows these events here
		for {
			select {
			case <-mgr.Events():
			case <-ctx.Done():
				return
			}
		}
	}()

	// Sign everyone in, in parallel batches; the manager is already running, so
	// the first accounts are kept fresh while the last ones log in.
	start := time.Now()
	sessions := make([]*session.Session, accounts)
	var loginErr atomic.Value
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < parallel; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= accounts {
					return
				}
				local := fmt.Sprintf("soak%05d", i)
				srv.AddUser(local, "pw")
				resp, err := client.Login(ctx, matrix.PasswordLogin(local, "pw"))
				if err == nil {
					sessions[i], err = mgr.AddWithTokens(ctx, session.AccountKey{UserID: resp.UserID, DeviceID: resp.DeviceID}, client, resp.Tokens())
				}
				if err != nil {
					loginErr.Store(fmt.Errorf("account %d: %w", i, err))
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := loginErr.Load().(error); err != nil {
		return err
	}
	loginTime := time.Since(start)
	refreshesAtStart := srv.RefreshCount()

	// The soak: the manager refreshes; a checker asks random sessions for tokens.
	var checks, checkErrs, lapses atomic.Int64
	var firstCheckErr atomic.Value
	var gs sampler
	soakCtx, stopSoak := context.WithTimeout(ctx, duration)
	defer stopSoak()
	var cw sync.WaitGroup
	cw.Add(2)
	go func() {
		defer cw.Done()
		for soakCtx.Err() == nil {
			s := sessions[rand.IntN(len(sessions))]
			tok, err := s.AccessToken(soakCtx)
			checks.Add(1)
			if err != nil {
				if soakCtx.Err() == nil {
					checkErrs.Add(1)
					firstCheckErr.CompareAndSwap(nil, err.Error())
				}
				continue
			}
			// Lapse: the token handed out was already past its deadline.
			if t := s.Tokens(); t.AccessToken == tok && t.Expires() && !time.Now().Before(t.ExpiresAt) {
				lapses.Add(1)
			}
			if checkEvery > 0 {
				time.Sleep(checkEvery)
			}
		}
	}()
	go func() {
		defer cw.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				gs.sample()
			case <-soakCtx.Done():
				return
			}
		}
	}()
	<-soakCtx.Done()
	cw.Wait()
	refreshes := srv.RefreshCount() - refreshesAtStart
	stats := mgr.Stats()

	// Afterwards every session must still work; the server counts expired uses.
	var broken int
	var firstBroken string
	for _, s := range sessions {
		if err := s.Do(ctx, func(ctx context.Context, tok matrix.Secret) error {
			_, err := client.WhoAmI(ctx, tok)
			return err
		}); err != nil {
			broken++
			if firstBroken == "" {
				firstBroken = err.Error()
			}
		}
	}
	states := map[session.State]int{}
	for _, st := range mgr.Statuses() {
		states[st.State]++
	}
	cancel()
	<-runDone

	fmt.Printf("refreshsoak: %d accounts, %v access tokens, %v soak, %d workers, store %s\n", accounts, lifetime, duration, workers, storeKind)
	fmt.Printf("machine: %s/%s, %d CPUs, %s\n", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version())
	fmt.Printf("sign-in: %d accounts in %v (%.0f/s)\n", accounts, loginTime.Round(time.Millisecond), float64(accounts)/loginTime.Seconds())
	fmt.Printf("refreshes during soak: %d (%.0f/s; server count)\n", refreshes, float64(refreshes)/duration.Seconds())
	fmt.Printf("refreshes by the manager in total: %d (scheduled dispatches %d)\n", stats.Refreshes, stats.Dispatched)
	fmt.Printf("AccessToken checks: %d, errors %d\n", checks.Load(), checkErrs.Load())
	if v := firstCheckErr.Load(); v != nil {
		fmt.Printf("  first error: %s\n", v)
	}
	fmt.Printf("lapses: %d (server saw expired tokens %d times, AccessToken returned an expired token %d times)\n",
		int64(srv.ExpiredTokenUses())+lapses.Load(), srv.ExpiredTokenUses(), lapses.Load())
	fmt.Printf("refreshes that came after the old token had expired: %d\n", stats.ExpiredFirst)
	fmt.Printf("sessions not working at the end: %d\n", broken)
	if firstBroken != "" {
		fmt.Printf("  first: %s\n", firstBroken)
	}
	fmt.Printf("states at the end: %s\n", formatStates(states))
	fmt.Printf("worst lateness vs planned refresh time: %v (worst scheduler hand-over delay %v)\n",
		stats.MaxLateness.Round(time.Millisecond), stats.MaxDispatch.Round(time.Millisecond))
	fmt.Printf("goroutines: %d before the manager, %d-%d during the soak (min-max, includes the in-process server's connections)\n",
		baseGoroutines, gs.min, gs.max)
	fmt.Printf("peak RSS (VmHWM, server and client in one process): %s\n", vmHWM())
	fmt.Printf("events dropped (channel full): %d\n", stats.DroppedEvents)
	if srv.ExpiredTokenUses() > 0 || lapses.Load() > 0 || broken > 0 {
		return fmt.Errorf("sessions lapsed")
	}
	if stats.ExpiredFirst > 0 {
		return fmt.Errorf("%d refreshes came too late: the machine cannot keep up with this load", stats.ExpiredFirst)
	}
	return nil
}

func formatStates(m map[session.State]int) string {
	var parts []string
	for st := session.StateActive; st <= session.StateNonExpiring; st++ {
		if n := m[st]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", st, n))
		}
	}
	return strings.Join(parts, ", ")
}

// vmHWM reads the peak resident set size; Linux only.
func vmHWM() string {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return "unknown (no /proc)"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
