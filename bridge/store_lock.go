package bridge

import (
	"fmt"
	"os"
	"path/filepath"
)

// storeLockFile is the file in BRIDGE_NATS_EMBEDDED_DIR whose lock says
// which process runs the embedded server on that store.
const storeLockFile = "bridge-embedded.lock"

// lockStore takes an exclusive lock on the store directory, if no other
// process (nor another caller in this one) holds it, and reports whether it
// got it. The lock goes with the process: a killed bridge leaves none
// behind.
func lockStore(dir string) (unlock func(), held bool, err error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, false, fmt.Errorf("BRIDGE_NATS_EMBEDDED_DIR=%s: %w", dir, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, storeLockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("BRIDGE_NATS_EMBEDDED_DIR=%s: %w", dir, err)
	}
	held, err = tryLockFile(f)
	if err != nil || !held {
		f.Close()
		if err != nil {
			return nil, false, fmt.Errorf("BRIDGE_NATS_EMBEDDED_DIR=%s: locking: %w", dir, err)
		}
		return func() {}, false, nil
	}
	return func() { f.Close() }, true, nil // closing lets go of the lock
}
