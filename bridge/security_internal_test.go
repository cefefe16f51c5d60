package bridge

import (
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bridge-mq/bridge/delivery"
)

// TestRedact: a URL in a log or an error keeps its scheme, host and path,
// and loses its user info and query; one that does not parse shows
// nothing of itself.
func TestRedact(t *testing.T) {
	for raw, want := range map[string]string{
		"https://hook.example/in":                          "https://hook.example/in",
		"https://user:pw@hook.example/in?token=tk#frag":    "https://redacted@hook.example/in?redacted",
		"http://tokenonly@127.0.0.1:8080/":                 "http://redacted@127.0.0.1:8080/",
		"amqp://guest:guest@rabbit:5672/vhost":             "amqp://redacted@rabbit:5672/vhost",
		"http://user:pw@host:bad port/":                    "(a URL that does not parse)",
		"http://user:p%zzw@host/":                          "(a URL that does not parse)",
		"user:pw@host/no-scheme":                           "(a URL that does not parse)",
		"https://hook.example/a%20path?q=1&secret=hunter2": "https://hook.example/a%20path?redacted",
	} {
		if got := redact(raw); got != want {
			t.Errorf("redact(%q) = %q; want %q", raw, got, want)
		}
	}
}

func TestLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:7070": true, "127.3.4.5:1": true, "[::1]:7070": true, "localhost:7070": true, "LOCALHOST:1": true,
		":7070": false, "0.0.0.0:7070": false, "[::]:7070": false, "10.0.0.1:7070": false, "bridge.example:7070": false,
		"nonsense": false,
	} {
		if got := loopback(addr); got != want {
			t.Errorf("loopback(%q) = %v; want %v", addr, got, want)
		}
	}
}

// TestSecretSettings: BRIDGE_SECRET_FILE is the file's content less its
// trailing newline, and seals as BRIDGE_SECRET with that value does; a
// secret too short, both variables set, or a previous secret alone is
// refused, naming the variable and never showing the secret.
func TestSecretSettings(t *testing.T) {
	const secret = "a secret of twenty-six b"
	dir := t.TempDir()
	file := filepath.Join(dir, "secret")
	if err := os.WriteFile(file, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fromValue := Config{Secret: secret}
	fromFile := Config{SecretFile: file}
	a, _, err := fromValue.streamSecrets()
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := fromFile.streamSecrets()
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(a.Derive("x", 16)) != hex.EncodeToString(b.Derive("x", 16)) {
		t.Error("BRIDGE_SECRET_FILE holding the secret and a newline is not the same secret as BRIDGE_SECRET")
	}

	short := filepath.Join(dir, "short")
	os.WriteFile(short, []byte("fifteen bytes!!\n"), 0o600)
	for _, c := range []struct {
		name string
		cfg  Config
		want string // the variable named
	}{
		{"short", Config{Secret: "fifteen bytes!!"}, "BRIDGE_SECRET"},
		{"short file", Config{SecretFile: short}, "BRIDGE_SECRET_FILE"},
		{"both", Config{Secret: secret, SecretFile: file}, "BRIDGE_SECRET_FILE"},
		{"missing file", Config{SecretFile: filepath.Join(dir, "none")}, "BRIDGE_SECRET_FILE"},
		{"short previous", Config{Secret: secret, SecretPrevious: "fifteen bytes!!"}, "BRIDGE_SECRET_PREVIOUS"},
		{"previous alone", Config{SecretPrevious: secret}, "BRIDGE_SECRET_PREVIOUS"},
	} {
		var ch checker
		c.cfg.checkSecrets(&ch)
		err := ch.err()
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Var != c.want {
			t.Errorf("%s: %v; want a *ConfigError naming %s", c.name, err, c.want)
			continue
		}
		if strings.Contains(err.Error(), "fifteen") || strings.Contains(err.Error(), secret) {
			t.Errorf("%s: the error shows the secret: %v", c.name, err)
		}
	}
}

// TestEmbeddedNATSToken: with BRIDGE_SECRET the embedded server's token is
// derived from it and nothing is written; without, it is made once in a
// file only this user may read, in BRIDGE_NATS_EMBEDDED_DIR or else in the
// user's configuration directory, and read back by the next process; a
// file others may read is refused; on port 0 it is made up in memory.
func TestEmbeddedNATSToken(t *testing.T) {
	dir := t.TempDir()
	sealed := Config{Secret: "a secret of twenty-six b", NATSEmbeddedDir: dir}
	token, file, err := sealed.embeddedNATSToken(4233)
	secret, _ := delivery.NewSecret([]byte(sealed.Secret))
	if err != nil || file != "" || token != hex.EncodeToString(secret.Derive("nats embedded server token", 32)) {
		t.Errorf("with a secret: token %q in %q, %v; want it derived and in no file", token, file, err)
	}
	if _, err := os.Stat(filepath.Join(dir, tokenFileName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("with a secret, a token file was written: %v", err)
	}

	plain := Config{NATSEmbeddedDir: dir}
	first, file, err := plain.embeddedNATSToken(4233)
	if err != nil || file != filepath.Join(dir, tokenFileName) || len(first) < 32 {
		t.Fatalf("without a secret: token %q in %q, %v", first, file, err)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the token file: %v, %v; want mode 0600", fi.Mode(), err)
	}
	if again, _, err := plain.embeddedNATSToken(4233); err != nil || again != first {
		t.Errorf("the second process read %q, %v; want the first's token", again, err)
	}
	os.Chmod(file, 0o644)
	if _, _, err := plain.embeddedNATSToken(4233); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("a token file others may read: %v; want it refused", err)
	}

	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	home, _ := os.UserConfigDir()
	token, file, err = new(Config).embeddedNATSToken(4233)
	if err != nil || file != filepath.Join(home, "bridge", userTokenFile) || len(token) < 32 {
		t.Errorf("with no directory: token %q in %q, %v; want the user's file", token, file, err)
	}
	if a, file, _ := new(Config).embeddedNATSToken(0); file != "" || a == token {
		t.Errorf("on port 0: token in %q; want one of its own, in memory", file)
	}
}
