package kafka_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/adapters/kafka"
	"github.com/bridge-mq/bridge/delivery"
	"github.com/twmb/franz-go/pkg/kfake"
)

// selfSigned returns a server TLS configuration for 127.0.0.1 and a client
// configuration that trusts it.
func selfSigned(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kfake"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}}, MinVersion: tls.VersionTLS12}
	client = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return server, client
}

// TestTLSAndSASL: a stream over TLS with each SASL mechanism, against a
// broker that requires both; and a wrong password, or no TLS, is a clear
// error from New. On kfake, always: the test Kafka (.ci/kafka) serves
// plaintext only, and a broker of each mechanism's users is started here in
// a moment.
func TestTLSAndSASL(t *testing.T) {
	t.Parallel()
	serverTLS, clientTLS := selfSigned(t)
	const user, password = "bridge", "s3cret-pass"
	for _, mechanism := range []string{kafka.SASLPlain, kafka.SASLScramSHA256, kafka.SASLScramSHA512} {
		t.Run(mechanism, func(t *testing.T) {
			t.Parallel()
			broker := startBroker(t, kfake.TLS(serverTLS), kfake.EnableSASL(), kfake.Superuser(mechanism, user, password))
			cfg := kafka.Config{
				Brokers: []string{broker.addr()},
				TLS:     clientTLS,
				SASL:    kafka.SASL{Mechanism: mechanism, Username: user, Password: password},
			}
			c := newCarrier(t, cfg)
			ctx := testContext(t, time.Minute)
			stream := uniqueStream(t)
			const n = 200
			cons := adaptertest.StartConsumer(t, ctx, openLink(t, c, stream, delivery.ConsumerEnd), adaptertest.FastConsumer)
			p := adaptertest.StartProducer(t, ctx, openLink(t, c, stream, delivery.ProducerEnd), adaptertest.FastProducer, 0, n, adaptertest.SmallMessages)
			adaptertest.CheckExactlyOnceInOrder(t, cons.TakeUpTo(ctx, n-1), n)
			p.Stop(ctx)
			cons.Stop(ctx)

			bad := cfg
			bad.SASL.Password = "wrong"
			_, err := kafka.New(ctx, bad)
			var ce *kafka.ConnectError
			if !errors.As(err, &ce) {
				t.Fatalf("New with a wrong password: %v; want a *kafka.ConnectError", err)
			}
			t.Logf("wrong password: %v", err)

			plain := cfg
			plain.TLS = nil
			shortCtx := testContext(t, 5*time.Second)
			if _, err := kafka.New(shortCtx, plain); !errors.As(err, &ce) {
				t.Fatalf("New without TLS against a TLS broker: %v; want a *kafka.ConnectError", err)
			} else {
				t.Logf("no TLS: %v", err)
			}
		})
	}
}
