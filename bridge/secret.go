package bridge

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"github.com/bridge-mq/bridge/delivery"
)

// maxSecretFile is the most a secret file may hold: a secret is short, and
// a file much larger than one is the wrong file.
const maxSecretFile = 64 << 10

// secretVar is one secret setting: a variable and the one naming a file
// that holds its value instead.
type secretVar struct {
	name        string // without BRIDGE_
	value, file string
}

func (cfg *Config) secretVars() (current, previous secretVar) {
	return secretVar{"SECRET", cfg.Secret, cfg.SecretFile},
		secretVar{"SECRET_PREVIOUS", cfg.SecretPrevious, cfg.SecretPreviousFile}
}

// Sealed reports whether this configuration seals its frames: it has
// BRIDGE_SECRET (or BRIDGE_SECRET_FILE).
func (cfg *Config) Sealed() bool { return cfg.Secret != "" || cfg.SecretFile != "" }

// Unsealed is the configuration without its secrets: its links are not
// sealed (the bench's unsealed modes beside its sealed one).
func (cfg Config) Unsealed() Config {
	cfg.Secret, cfg.SecretFile, cfg.SecretPrevious, cfg.SecretPreviousFile = "", "", "", ""
	return cfg
}

// read returns the secret v holds (nil for none), or a *ConfigError naming
// the variable. No error holds the secret or any part of it.
func (v secretVar) read() ([]byte, error) {
	varName, fileVar := envPrefix+"_"+v.name, envPrefix+"_"+v.name+"_FILE"
	var secret []byte
	switch {
	case v.value != "" && v.file != "":
		return nil, &ConfigError{Var: fileVar, Value: v.file, Reason: "set " + varName + " or " + fileVar + ", not both"}
	case v.value != "":
		secret = []byte(v.value)
	case v.file != "":
		f, err := os.Open(v.file)
		if err != nil {
			return nil, &ConfigError{Var: fileVar, Value: v.file, Reason: "cannot read the file: " + err.Error()}
		}
		secret, err = io.ReadAll(io.LimitReader(f, maxSecretFile+1))
		f.Close()
		if err != nil {
			return nil, &ConfigError{Var: fileVar, Value: v.file, Reason: "cannot read the file: " + err.Error()}
		}
		if len(secret) > maxSecretFile {
			return nil, &ConfigError{Var: fileVar, Value: v.file, Reason: "holds more than 64 KiB: not a secret file"}
		}
		secret = bytes.TrimRight(secret, "\r\n")
		varName = fileVar
	default:
		return nil, nil
	}
	if len(secret) < delivery.MinSecretLen {
		return nil, &ConfigError{Var: varName, Reason: fmt.Sprintf(
			"must be at least %d bytes; it has %d (make it random: openssl rand -hex 32)", delivery.MinSecretLen, len(secret))}
	}
	return secret, nil
}

// checkSecrets checks the secret settings: each readable and long enough,
// and a previous secret only beside a current one.
func (cfg *Config) checkSecrets(c *checker) {
	current, previous := cfg.secretVars()
	for _, v := range []secretVar{current, previous} {
		if _, err := v.read(); err != nil {
			c.errs = append(c.errs, err)
		}
	}
	if !cfg.Sealed() && (cfg.SecretPrevious != "" || cfg.SecretPreviousFile != "") {
		c.fail("SECRET_PREVIOUS", "", "only beside BRIDGE_SECRET (or BRIDGE_SECRET_FILE): the previous secret opens frames while the current one takes over")
	}
}

// streamSecrets returns the stream's secret and the previous one,
// stretched (see delivery.NewSecret), or nils without BRIDGE_SECRET. A
// process stretches each secret once, however often it asks.
func (cfg *Config) streamSecrets() (current, previous *delivery.Secret, err error) {
	cv, pv := cfg.secretVars()
	if current, err = stretch(cv); err != nil || current == nil {
		return nil, nil, err
	}
	if previous, err = stretch(pv); err != nil {
		return nil, nil, err
	}
	return current, previous, nil
}

func stretch(v secretVar) (*delivery.Secret, error) {
	raw, err := v.read()
	if err != nil || raw == nil {
		return nil, err
	}
	s, err := delivery.NewSecret(raw)
	if err != nil {
		return nil, &ConfigError{Var: envPrefix + "_" + v.name, Reason: err.Error()}
	}
	return s, nil
}

// derivedSecret is n bytes derived from BRIDGE_SECRET for purpose, in hex,
// or "" without a secret: what else both ends must share (the tcp
// handshake's secret, the embedded NATS server's token), independent of the
// keys that seal frames and of each other.
func (cfg *Config) derivedSecret(purpose string, n int) (string, error) {
	s, _, err := cfg.streamSecrets()
	if err != nil || s == nil {
		return "", err
	}
	return hex.EncodeToString(s.Derive(purpose, n)), nil
}
