package delivery

import (
	"crypto/hkdf"
	"crypto/sha256"
	"sync"

	"golang.org/x/crypto/argon2"
)

// MinSecretLen is the shortest secret NewSecret takes, in bytes.
const MinSecretLen = 16

// Secret is a secret both ends of a stream know, stretched once into the
// key that everything sealed with it derives from: the keys of sealed
// frames (see Seal), and whatever else a user needs kept between the two
// ends (the service derives the tcp carrier's handshake secret and the
// embedded NATS server's credentials from it).
//
// A sealed frame lets anyone who captured it test guesses of the secret
// offline, so NewSecret stretches the secret with argon2id: each guess then
// costs tens of milliseconds and 19 MiB. A secret of 16 random bytes or
// more needs none of that; a secret people chose does.
type Secret struct {
	key []byte // 32 bytes; never leaves the package
}

// secretMemory and secretPasses are argon2id's cost: OWASP's smallest
// recommended setting (19 MiB, 2 passes, 1 lane).
const (
	secretMemory = 19 << 10 // KiB
	secretPasses = 2
)

// secretSalt is argon2id's salt: fixed, because both ends must derive the
// same key without telling each other anything.
var secretSalt = []byte("bridge delivery secret v1")

// stretched caches argon2id's output per secret, so that a process that
// seals many links (or a test suite) stretches each secret once.
var stretched sync.Map // [32]byte (sha256 of the secret) -> []byte

// NewSecret stretches secret, which must be at least MinSecretLen bytes
// (a shorter one is a *SettingError).
func NewSecret(secret []byte) (*Secret, error) {
	if len(secret) < MinSecretLen {
		return nil, &SettingError{Setting: "Secret", Value: len(secret), Reason: "must be at least 16 bytes (this is its length)"}
	}
	id := sha256.Sum256(secret)
	if key, ok := stretched.Load(id); ok {
		return &Secret{key: key.([]byte)}, nil
	}
	key := argon2.IDKey(secret, secretSalt, secretPasses, secretMemory, 1, 32)
	stretched.Store(id, key)
	return &Secret{key: key}, nil
}

// Derive returns n bytes (at most 8160) for purpose: HKDF-SHA256 of the
// stretched key, with purpose as its info, so that keys for different
// purposes say nothing about each other or about the secret.
func (s *Secret) Derive(purpose string, n int) []byte {
	out, err := hkdf.Expand(sha256.New, s.key, purpose, n)
	if err != nil {
		panic("delivery: Secret.Derive: " + err.Error()) // only for n over 255 hashes: a programming error
	}
	return out
}
