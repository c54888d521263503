// Command tokenbench compares `mxauth token` with `secret-tool lookup` reading
// the same item from the same private Secret Service, and reports the median
// wall time of each and their ratio.
//
// Run it from the repository root: go run ./matrix/matrixtest/tokenbench -n 50
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"mxauth/keystore"
	"mxauth/keystore/keyringtest"
	"mxauth/matrix/homeserver"
)

func main() {
	n := flag.Int("n", 50, "calls of each command (alternating)")
	warmup := flag.Int("warmup", 5, "untimed calls of each command first")
	bin := flag.String("bin", "", "mxauth binary (default: go build it from the current module)")
	dbusCount := flag.Bool("dbus", true, "also count the D-Bus messages of one call of each (needs dbus-monitor)")
	initTrace := flag.Bool("inittrace", true, "also report mxauth's package initialisation time (GODEBUG=inittrace=1)")
	flag.Parse()
	if err := run(*n, *warmup, *bin, *dbusCount, *initTrace); err != nil {
		fmt.Fprintln(os.Stderr, "tokenbench:", err)
		os.Exit(1)
	}
}

func run(n, warmup int, bin string, dbusCount, initTrace bool) error {
	tmp, err := os.MkdirTemp("", "tokenbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if bin == "" {
		bin = filepath.Join(tmp, "mxauth")
		build := exec.Command("go", "build", "-o", bin, "mxauth")
		build.Stderr = os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("building mxauth: %w", err)
		}
	}
	secretTool, err := exec.LookPath("secret-tool")
	if err != nil {
		return fmt.Errorf("secret-tool not found (package libsecret-tools): %w", err)
	}

	k, err := keyringtest.Launch(keyringtest.Options{})
	if err != nil {
		return err
	}
	defer k.Stop()
	srv := homeserver.New(homeserver.Options{AccessTokenLifetime: time.Hour})
	defer srv.Close()
	alice := srv.AddUser("alice", "bench-password")

	env := keyringtest.Merge(os.Environ(), k.Env)
	env = append(env, "MXAUTH_CONFIG_DIR="+filepath.Join(tmp, "config"), "NO_COLOR=1")
	mx := func(stdin string, args ...string) (string, error) {
		return output(env, stdin, bin, args...)
	}
	if _, err := mx("bench-password\n", "login", "--user", alice, "--password-stdin"); err != nil {
		return err
	}
	listOut, err := mx("", "list", "--json")
	if err != nil {
		return err
	}
	var list []struct {
		UserID   string `json:"user_id"`
		DeviceID string `json:"device_id"`
	}
	if err := json.Unmarshal([]byte(listOut), &list); err != nil || len(list) != 1 {
		return fmt.Errorf("list --json: %v %q", err, listOut)
	}
	// go-keyring stores service and user as the attributes "service" and
	// "username"; mxauth's user is "<user ID>|<device ID>".
	item := list[0].UserID + "|" + list[0].DeviceID
	lookup := []string{"lookup", "service", keystore.Service, "username", item}

	// Both must read the same token, or the comparison means nothing.
	tok, err := mx("", "token")
	if err != nil {
		return err
	}
	raw, err := output(env, "", secretTool, lookup...)
	if err != nil {
		return err
	}
	var stored struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal([]byte(raw), &stored); err != nil || stored.AccessToken == "" || stored.AccessToken != strings.TrimSpace(tok) {
		return fmt.Errorf("mxauth token and secret-tool lookup disagree (decode error: %v)", err)
	}

	type cmd struct {
		name string
		path string
		args []string
	}
	cmds := []cmd{
		{"mxauth token", bin, []string{"token"}},
		{"secret-tool lookup", secretTool, lookup},
		{"mxauth --version", bin, []string{"--version"}},
		{"true", "/bin/true", nil},
	}
	for i := 0; i < warmup; i++ {
		for _, c := range cmds {
			if _, err := timed(env, c.path, c.args...); err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
		}
	}
	srv.ResetLog()
	times := make([][]time.Duration, len(cmds))
	for i := 0; i < n; i++ {
		for j, c := range cmds {
			d, err := timed(env, c.path, c.args...)
			if err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			times[j] = append(times[j], d)
		}
	}
	requests := len(srv.Requests())

	goVersion, _ := output(nil, "", "go", "env", "GOVERSION")
	fmt.Printf("machine: nproc %d, %s, %s\n", numCPU(), strings.TrimSpace(goVersion), cpuModel())
	fmt.Printf("calls: %d of each, alternating, after %d warm-up rounds\n\n", n, warmup)
	fmt.Printf("%-20s %9s %9s %9s %9s\n", "command", "median", "p10", "p90", "mean")
	med := make([]time.Duration, len(cmds))
	for j, c := range cmds {
		s := summarise(times[j])
		med[j] = s.median
		fmt.Printf("%-20s %9s %9s %9s %9s\n", c.name, ms(s.median), ms(s.p10), ms(s.p90), ms(s.mean))
	}
	fmt.Printf("\nratio of medians mxauth token / secret-tool lookup: %.2f\n", float64(med[0])/float64(med[1]))
	fmt.Printf("HTTP requests to the homeserver during the timed calls: %d\n", requests)

	if dbusCount {
		for _, c := range cmds[:2] {
			calls, err := countDBus(k.Address, env, c.path, c.args...)
			if err != nil {
				fmt.Printf("D-Bus count for %s: %v\n", c.name, err)
				continue
			}
			fmt.Printf("D-Bus method calls of one %s: %d (%s)\n", c.name, len(calls), strings.Join(calls, ", "))
		}
	}
	if initTrace {
		total, top, err := initCost(env, bin)
		if err != nil {
			fmt.Printf("inittrace: %v\n", err)
		} else {
			fmt.Printf("mxauth package initialisation: %s in total; largest: %s\n", ms(total), strings.Join(top, ", "))
		}
	}
	return nil
}

// output runs a command and returns its stdout; env nil inherits ours.
func output(env []string, stdin, path string, args ...string) (string, error) {
	c := exec.Command(path, args...)
	c.Env = env
	c.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	if err := c.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %v: %s", filepath.Base(path), strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// timed is the wall time from starting the process to its exit.
func timed(env []string, path string, args ...string) (time.Duration, error) {
	c := exec.Command(path, args...)
	c.Env = env
	var errb bytes.Buffer
	c.Stderr = &errb
	start := time.Now()
	err := c.Run()
	d := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("%v: %s", err, strings.TrimSpace(errb.String()))
	}
	return d, nil
}

type summary struct{ median, p10, p90, mean time.Duration }

func summarise(ds []time.Duration) summary {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	at := func(q float64) time.Duration { return s[int(q*float64(len(s)-1)+0.5)] }
	return summary{median: at(0.5), p10: at(0.1), p90: at(0.9), mean: sum / time.Duration(len(s))}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }

// countDBus lists the method calls one run of the command sends on the bus,
// as seen by dbus-monitor (the private bus allows eavesdropping).
func countDBus(addr string, env []string, path string, args ...string) ([]string, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mon := exec.CommandContext(ctx, "dbus-monitor", "--address", addr)
	out, err := mon.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := mon.Start(); err != nil {
		return nil, err
	}
	lines := make(chan string, 4096)
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	time.Sleep(300 * time.Millisecond) // let the monitor attach
	// A marker call brackets the command's traffic.
	marker := func(tag string) {
		_ = exec.Command("dbus-send", "--address="+addr, "--dest=org.freedesktop.DBus", "/org/freedesktop/DBus",
			"org.freedesktop.DBus.NameHasOwner", "string:tokenbench-"+tag).Run()
	}
	marker("start")
	if _, err := timed(env, path, args...); err != nil {
		return nil, err
	}
	marker("end")
	time.Sleep(300 * time.Millisecond)
	cancel()
	_ = mon.Wait()
	member := regexp.MustCompile(`member=(\S+)`)
	var calls []string
	inside := false
	for l := range lines {
		if strings.Contains(l, "tokenbench-start") {
			inside = true
			continue
		}
		if strings.Contains(l, "tokenbench-end") {
			break
		}
		if inside && strings.HasPrefix(l, "method call") {
			if m := member.FindStringSubmatch(l); m != nil && m[1] != "NameHasOwner" {
				calls = append(calls, m[1])
			}
		}
	}
	return calls, nil
}

// initCost sums mxauth's package init times (GODEBUG=inittrace=1) and names the largest.
func initCost(env []string, bin string) (time.Duration, []string, error) {
	c := exec.Command(bin, "--version")
	c.Env = append(append([]string(nil), env...), "GODEBUG=inittrace=1")
	var errb bytes.Buffer
	c.Stderr = &errb
	if err := c.Run(); err != nil {
		return 0, nil, err
	}
	re := regexp.MustCompile(`^init (\S+) @\S+ ms, ([0-9.]+) ms clock`)
	type pkg struct {
		name string
		d    time.Duration
	}
	var pkgs []pkg
	var total time.Duration
	for _, l := range strings.Split(errb.String(), "\n") {
		m := re.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		f, _ := strconv.ParseFloat(m[2], 64)
		d := time.Duration(f * float64(time.Millisecond))
		total += d
		pkgs = append(pkgs, pkg{m[1], d})
	}
	sort.Slice(pkgs, func(i, j int) bool { return pkgs[i].d > pkgs[j].d })
	var top []string
	for i := 0; i < len(pkgs) && i < 5; i++ {
		top = append(top, fmt.Sprintf("%s %s", pkgs[i].name, ms(pkgs[i].d)))
	}
	return total, top, nil
}

func numCPU() int {
	out, err := output(nil, "", "nproc")
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(out))
	return n
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
