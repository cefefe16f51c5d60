package bridge

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
)

// tlsConfig builds the TLS settings from BRIDGE_TLS_*, for the side that
// accepts connections (server) or the side that makes them. It returns nil
// when no TLS is configured.
func tlsConfig(cfg *Config, server bool) (*tls.Config, error) {
	if !cfg.TLS && cfg.TLSCert == "" && cfg.TLSCA == "" {
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
	var pool *x509.CertPool
	if cfg.TLSCA != "" {
		pem, err := os.ReadFile(cfg.TLSCA)
		if err != nil {
			return nil, &ConfigError{Var: "BRIDGE_TLS_CA", Value: cfg.TLSCA, Reason: err.Error()}
		}
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, &ConfigError{Var: "BRIDGE_TLS_CA", Value: cfg.TLSCA, Reason: "no PEM certificate in the file"}
		}
	}
	if server {
		if len(t.Certificates) == 0 {
			return nil, &ConfigError{Var: "BRIDGE_TLS_CERT", Reason: "required on the listening side when TLS is on"}
		}
		if cfg.TLSRequireClientCert {
			t.ClientAuth, t.ClientCAs = tls.RequireAndVerifyClientCert, pool
		}
		return t, nil
	}
	t.RootCAs = pool
	return t, nil
}

// describeTLS says how TLS is set, for the startup log.
func describeTLS(t *tls.Config) string {
	if t == nil {
		return "off"
	}
	return fmt.Sprintf("on (certificate: %v, client certificates required: %v)", len(t.Certificates) > 0, t.ClientAuth == tls.RequireAndVerifyClientCert)
}
