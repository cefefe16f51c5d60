package bridge

import (
	"crypto/tls"
	"crypto/x509"
	"os"
)

// tlsOn reports whether BRIDGE_TLS_* turn TLS on.
func (cfg *Config) tlsOn() bool { return cfg.TLS || cfg.TLSCert != "" || cfg.TLSCA != "" }

// tlsConfig builds the TLS settings from BRIDGE_TLS_*, or nil when TLS is
// off. One configuration serves both sides of a connection, as crypto/tls
// reads it: a listener presents Certificates and, with
// BRIDGE_TLS_REQUIRE_CLIENT_CERT, verifies its clients against the CA; a
// client verifies the server against the CA (the system's roots without
// one) and presents Certificates when asked.
func (cfg *Config) tlsConfig() (*tls.Config, error) {
	if !cfg.tlsOn() {
		return nil, nil
	}
	t := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, &ConfigError{Var: "BRIDGE_TLS_CERT", Value: cfg.TLSCert, Reason: "cannot load the certificate and key: " + err.Error()}
		}
		t.Certificates = []tls.Certificate{cert}
	}
	if cfg.TLSCA != "" {
		pem, err := os.ReadFile(cfg.TLSCA)
		if err != nil {
			return nil, &ConfigError{Var: "BRIDGE_TLS_CA", Value: cfg.TLSCA, Reason: err.Error()}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, &ConfigError{Var: "BRIDGE_TLS_CA", Value: cfg.TLSCA, Reason: "no PEM certificate in the file"}
		}
		t.RootCAs = pool
		t.ClientCAs = pool
	}
	if cfg.TLSRequireClientCert {
		t.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return t, nil
}
