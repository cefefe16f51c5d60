package main_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
)

// bin is the bridge binary, built once for these tests.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "bridge-bin-")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "bridge")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		panic("building bridge: " + err.Error())
	}
	code := 0
	func() {
		defer os.RemoveAll(dir)
		defer func() {
			if r := recover(); r != nil {
				code = 1
			}
		}()
		// toxiproxy's Proxy.Stop does not wait for its links' pipes; a
		// pipe can outlive it for a moment, blocked on its own channel. A
		// link stopped with bytes in flight leaves its reader blocked for
		// good, writing to a toxic that no longer reads (v2.5.0's
		// ToxicLink.read into stream.ChanWriter; seen in CI on 2026-12-04):
		// toxiproxy's goroutine, not ours.
		goleak.VerifyTestMain(m,
			goleak.IgnoreAnyFunction("github.com/Shopify/toxiproxy/v2/toxics.(*ToxicStub).Run"),
			goleak.IgnoreAnyFunction("github.com/Shopify/toxiproxy/v2.(*ToxicLink).read"))
	}()
	os.Exit(code)
}

// command returns bridge with exactly the given BRIDGE_ variables (none
// inherited), logging at warn unless said otherwise.
func command(args []string, vars ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "BRIDGE_LOG_LEVEL=warn"}
	cmd.Env = append(cmd.Env, vars...)
	return cmd
}

// output runs bridge to its end and returns its exit status, stdout and
// stderr.
func output(t *testing.T, args []string, vars ...string) (int, string, string) {
	t.Helper()
	cmd := command(args, vars...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, stdout.String(), stderr.String()
}
