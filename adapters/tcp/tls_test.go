package tcp_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/adapters/tcp"
	"github.com/bridge-mq/bridge/delivery"
)

// pki is a throwaway certificate authority with a server and a client
// certificate, and one that is both (for a carrier that listens and
// dials).
type pki struct {
	pool                 *x509.CertPool
	server, client, both tls.Certificate
}

func newPKI(t *testing.T) pki {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bridge test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(serial int64, usage ...x509.ExtKeyUsage) tls.Certificate {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "bridge"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			ExtKeyUsage: usage, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pki{
		pool:   pool,
		server: issue(2, x509.ExtKeyUsageServerAuth),
		client: issue(3, x509.ExtKeyUsageClientAuth),
		both:   issue(4, x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth),
	}
}

// TestTLSClientCertificates: with TLS requiring client certificates, a
// dialer with one delivers; a dialer without one is refused in the TLS
// handshake and never connects.
func TestTLSClientCertificates(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p := newPKI(t)
	serverCfg := testConfig
	serverCfg.TLS = &tls.Config{
		Certificates: []tls.Certificate{p.server},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    p.pool,
		MinVersion:   tls.VersionTLS13,
	}
	ln, err := tcp.Listen(ctx, "127.0.0.1:0", serverCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	consumer, _ := ln.Link("secure", delivery.ConsumerEnd)

	anonymous := testConfig
	anonymous.TLS = &tls.Config{RootCAs: p.pool}
	err = refusal(t, ctx, ln.Addr().String(), "secure", testConfig.Secret+"", delivery.ProducerEnd, anonymous)
	if !strings.Contains(err.Error(), "tls") && !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a dialer without a certificate: %v; want a TLS refusal", err)
	}

	withCert := anonymous
	withCert.TLS = &tls.Config{RootCAs: p.pool, Certificates: []tls.Certificate{p.client}}
	producer, err := tcp.Dial(ctx, ln.Addr().String(), "secure", delivery.ProducerEnd, withCert)
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	sendOne(t, ctx, producer, consumer, "over tls")

	// A dialer that does not trust the listener's certificate refuses it.
	untrusting := testConfig
	untrusting.TLS = &tls.Config{Certificates: []tls.Certificate{p.client}}
	if err := refusal(t, ctx, ln.Addr().String(), "secure", testConfig.Secret, delivery.ProducerEnd, untrusting); !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a dialer that does not trust the listener: %v", err)
	}
}
