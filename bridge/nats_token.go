package bridge

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// The embedded NATS server requires a token of every client, so that only
// the bridge processes of a stream use it, not whoever reaches its port.
// Both processes must know it without telling each other:
//
//   - with BRIDGE_SECRET, it is derived from the secret (the purpose "nats
//     embedded server token"), so both ends have it and nothing is written;
//   - without, it is a random token kept in a file only this user may read
//     (mode 0600): tokenFileName in BRIDGE_NATS_EMBEDDED_DIR, beside the
//     store's lock, or with no such directory userTokenFile under the
//     user's configuration directory (os.UserConfigDir: $XDG_CONFIG_HOME or
//     ~/.config on Linux, ~/Library/Application Support on macOS, %AppData%
//     on Windows). The first process to need it makes it; the others read
//     it. A process of another user cannot, and says so;
//   - on port 0 (the demo, both ends in one process) no other process can
//     find the server: a random token held in memory.
const (
	tokenFileName = "bridge-embedded.token"
	userTokenFile = "embedded-nats.token" // in a "bridge" directory
)

// embeddedNATSToken returns the token of the embedded server at port, and
// where it is kept ("" when it is not in a file).
func (cfg *Config) embeddedNATSToken(port int) (token, file string, err error) {
	if token, err = cfg.derivedSecret("nats embedded server token", 32); err != nil || token != "" {
		return token, "", err
	}
	if port == 0 {
		return randomToken(), "", nil
	}
	dir := cfg.NATSEmbeddedDir
	name := tokenFileName
	if dir == "" {
		base, err := os.UserConfigDir()
		if err != nil {
			return "", "", fmt.Errorf("the embedded NATS server's token: no BRIDGE_NATS_EMBEDDED_DIR, and %w; set BRIDGE_NATS_EMBEDDED_DIR or BRIDGE_SECRET", err)
		}
		dir, name = filepath.Join(base, "bridge"), userTokenFile
	}
	file = filepath.Join(dir, name)
	token, err = loadOrMakeToken(dir, file)
	return token, file, err
}

func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// loadOrMakeToken reads the token in file, or makes one there if there is
// none. Two processes may race to make it: each writes its own beside it
// and links it into place, which only the first can do; both then read the
// winner's.
func loadOrMakeToken(dir, file string) (string, error) {
	token, err := readToken(file)
	if !errors.Is(err, fs.ErrNotExist) {
		return token, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("the embedded NATS server's token: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(file)+"-*") // mode 0600
	if err != nil {
		return "", fmt.Errorf("the embedded NATS server's token: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(randomToken() + "\n")
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(tmp.Name(), file)
	}
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("the embedded NATS server's token: writing %s: %w", file, err)
	}
	return readToken(file)
}

// readToken reads a token file, refusing one that others may read.
func readToken(file string) (string, error) {
	fi, err := os.Stat(file)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		return "", tokenFileError(file, err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("the embedded NATS server's token file %s may be read by other users (mode %v): chmod 600 it", file, fi.Mode().Perm())
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", tokenFileError(file, err)
	}
	token := string(bytes.TrimSpace(b))
	if len(token) < 32 {
		return "", fmt.Errorf("the embedded NATS server's token file %s holds no token: remove it, and a new one is made", file)
	}
	return token, nil
}

func tokenFileError(file string, err error) error {
	return fmt.Errorf("cannot read the embedded NATS server's token (%w): the bridge that started the server made it; run this one as the same user, or give both BRIDGE_SECRET", err)
}
