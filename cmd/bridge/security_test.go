package main_test

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"

	"github.com/bridge-mq/bridge/adapters/adaptertest"
	"github.com/bridge-mq/bridge/delivery"
)

// Secrets of the tests that give two ends different ones.
const (
	secretA = "BRIDGE_SECRET=the first secret of the tests"
	secretB = "BRIDGE_SECRET=the other secret of the tests"
)

// waitStderr polls a process's log until it holds want (a process's
// output has no event to wait on), and returns how long that took; it
// fails the test if it does not within a minute.
func waitStderr(t *testing.T, p *proc, want string) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < time.Minute {
		if strings.Contains(p.stderr.String(), want) {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the log never said %q:\n%s", want, p.stderr.String())
	return 0
}

// TestSealedStream: a producer and a consumer process with the same
// secret, one given it in BRIDGE_SECRET and the other in a file with a
// trailing newline (BRIDGE_SECRET_FILE), deliver every line, over tcp and
// over the embedded NATS server, and no frame fails to open.
func TestSealedStream(t *testing.T) {
	const n = 20_000
	input := numbered(n)
	const secret = "the secret both ends of the stream share"
	for _, tr := range transports[:2] { // tcp, nats (embedded)
		t.Run(tr.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "secret")
			if err := os.WriteFile(file, []byte(secret+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			var vars []string
			for _, v := range tr.vars(t) {
				if !strings.HasPrefix(v, "BRIDGE_SECRET=") { // tcp's own
					vars = append(vars, v)
				}
			}
			vars = append(vars, "BRIDGE_RESEND_MIN=100ms", "BRIDGE_RESEND_MAX=1s")
			out, err := os.Create(filepath.Join(t.TempDir(), "out"))
			if err != nil {
				t.Fatal(err)
			}
			defer out.Close()
			httpAddr := adaptertest.FreeAddr(t)
			consumer := startProc(t, nil, out, append(vars, "BRIDGE_ROLE=consumer", "BRIDGE_SECRET="+secret, "BRIDGE_HTTP_ADDR="+httpAddr, "BRIDGE_LOG_LEVEL=info")...)
			producer := startProc(t, strings.NewReader(input), nil, append(vars, "BRIDGE_ROLE=producer", "BRIDGE_SECRET_FILE="+file)...)
			producer.wait(t, "producer", 2*time.Minute)
			metrics := waitStatus(t, "http://"+httpAddr+"/metrics", http.StatusOK)
			consumer.terminate(t, "consumer")
			if got, _ := os.ReadFile(out.Name()); string(got) != input {
				t.Fatalf("the consumer wrote %d bytes, not the input's %d\n%s", len(got), len(input), consumer.stderr.String())
			}
			if !strings.Contains(consumer.stderr.String(), "sealed=true") {
				t.Errorf("the consumer does not say its frames are sealed:\n%s", consumer.stderr.String())
			}
			rejected := strings.Split(grepLines(metrics, "bridge_frames_rejected_total{"), "\n")
			for _, l := range rejected {
				if len(rejected) != 4 || !strings.HasSuffix(l, "} 0") {
					t.Errorf("frames rejected between ends with the same secret:\n%s", strings.Join(rejected, "\n"))
					break
				}
			}
		})
	}
}

// TestSecretMismatch: a producer and a consumer with different secrets
// deliver nothing, and say why within seconds. Over a broker, each end's
// SealedLink drops the other's frames, and both log it and answer /readyz
// with the reason. Over tcp the handshake refuses the dialer before any
// frame: both ends log the refusal, and the dialing end's /readyz says so
// (the listening end's only that it has no peer: a stranger's refusal says
// nothing of its own stream).
func TestSecretMismatch(t *testing.T) {
	run := func(t *testing.T, vars []string) (producer, consumer *proc, producerHTTP, consumerHTTP string, out *os.File) {
		producerHTTP, consumerHTTP = adaptertest.FreeAddr(t), adaptertest.FreeAddr(t)
		out, err := os.Create(filepath.Join(t.TempDir(), "out"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { out.Close() })
		vars = append(vars, "BRIDGE_RESEND_MIN=100ms", "BRIDGE_RESEND_MAX=1s", "BRIDGE_SHUTDOWN_TIMEOUT=1s")
		consumer = startProc(t, nil, out, append(vars, "BRIDGE_ROLE=consumer", secretA, "BRIDGE_HTTP_ADDR="+consumerHTTP)...)
		// Its carrier is open (over tcp, listening) once it serves HTTP: the
		// producer's first attempt meets the other secret, not a closed port
		// (whose warning would hold the next back for 10 s).
		waitStatus(t, "http://"+consumerHTTP+"/healthz", http.StatusOK)
		producer = startProc(t, strings.NewReader(numbered(100)), nil, append(vars, "BRIDGE_ROLE=producer", secretB, "BRIDGE_HTTP_ADDR="+producerHTTP)...)
		return
	}
	t.Run("nats", func(t *testing.T) {
		srv := adaptertest.StartNATS(t, adaptertest.NATSOptions{})
		producer, consumer, producerHTTP, consumerHTTP, out := run(t, []string{"BRIDGE_TRANSPORT=nats", "BRIDGE_NATS_URL=" + srv.URL()})
		for name, p := range map[string]*proc{"producer": producer, "consumer": consumer} {
			if took := waitStderr(t, p, "check that both ends have the same secret (BRIDGE_SECRET)"); took > 10*time.Second {
				t.Errorf("the %s said so after %v", name, took)
			}
		}
		for _, addr := range []string{producerHTTP, consumerHTTP} {
			waitReason(t, addr, "peer's frames do not open: check BRIDGE_SECRET\n")
		}
		producer.terminate(t, "producer")
		consumer.terminate(t, "consumer")
		if got, _ := os.ReadFile(out.Name()); len(got) != 0 {
			t.Errorf("the consumer wrote %q from a producer with another secret", got)
		}
	})
	t.Run("tcp", func(t *testing.T) {
		producer, consumer, producerHTTP, _, out := run(t, []string{"BRIDGE_TRANSPORT=tcp", "BRIDGE_TCP_ADDR=" + adaptertest.FreeAddr(t)})
		for name, p := range map[string]*proc{"producer": producer, "consumer": consumer} {
			if took := waitStderr(t, p, "wrong secret"); took > 10*time.Second {
				t.Errorf("the %s said so after %v", name, took)
			}
		}
		waitReason(t, producerHTTP, "refused by the peer: check BRIDGE_SECRET (the log says why)\n")
		producer.terminate(t, "producer")
		consumer.terminate(t, "consumer")
		if got, _ := os.ReadFile(out.Name()); len(got) != 0 {
			t.Errorf("the consumer wrote %q from a producer with another secret", got)
		}
	})
}

// waitReason polls /readyz until it answers 503 with want (probes are
// polled by design).
func waitReason(t *testing.T, addr, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if code, body := get("http://" + addr + "/readyz"); code == http.StatusServiceUnavailable && body == want {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	code, body := get("http://" + addr + "/readyz")
	t.Fatalf("%s/readyz answers %d %q; want 503 %q", addr, code, body, want)
}

// TestEmbeddedNATSCredentials: the embedded NATS server a bridge runs
// refuses a client without its token. Without BRIDGE_SECRET the token is
// in a file only its user reads, in BRIDGE_NATS_EMBEDDED_DIR; with one it
// is derived from the secret, and a bridge with another secret is refused
// and says to check BRIDGE_SECRET.
func TestEmbeddedNATSCredentials(t *testing.T) {
	refusesStrangers := func(t *testing.T, addr, token string) {
		t.Helper()
		nc, err := natsgo.Connect("nats://" + addr)
		if err == nil {
			nc.Close()
			t.Fatal("the embedded server took a client without its token")
		}
		if !errors.Is(err, natsgo.ErrAuthorization) {
			t.Errorf("a client without the token: %v; want an authorization violation", err)
		}
		nc, err = natsgo.Connect("nats://"+addr, natsgo.Token(token))
		if err != nil {
			t.Fatalf("a client with the token: %v", err)
		}
		nc.Close()
	}
	t.Run("token file", func(t *testing.T) {
		addr, dir, httpAddr := adaptertest.FreeAddr(t), t.TempDir(), adaptertest.FreeAddr(t)
		startProc(t, nil, nil, "BRIDGE_ROLE=consumer", "BRIDGE_TRANSPORT=nats", "BRIDGE_NATS_EMBEDDED_ADDR="+addr,
			"BRIDGE_NATS_EMBEDDED_DIR="+dir, "BRIDGE_HTTP_ADDR="+httpAddr)
		waitStatus(t, "http://"+httpAddr+"/healthz", http.StatusOK) // the server runs by now
		file := filepath.Join(dir, "bridge-embedded.token")
		fi, err := os.Stat(file)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("the token file: %v, %v; want mode 0600", fi, err)
		}
		token, _ := os.ReadFile(file)
		refusesStrangers(t, addr, strings.TrimSpace(string(token)))
	})
	t.Run("secret", func(t *testing.T) {
		addr, dir, httpAddr := adaptertest.FreeAddr(t), t.TempDir(), adaptertest.FreeAddr(t)
		vars := []string{"BRIDGE_TRANSPORT=nats", "BRIDGE_NATS_EMBEDDED_ADDR=" + addr, "BRIDGE_NATS_EMBEDDED_DIR=" + dir}
		startProc(t, nil, nil, append(vars, "BRIDGE_ROLE=consumer", secretA, "BRIDGE_HTTP_ADDR="+httpAddr)...)
		waitStatus(t, "http://"+httpAddr+"/healthz", http.StatusOK)
		if _, err := os.Stat(filepath.Join(dir, "bridge-embedded.token")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("with BRIDGE_SECRET, a token file was written: %v", err)
		}
		secret, err := delivery.NewSecret([]byte(strings.TrimPrefix(secretA, "BRIDGE_SECRET=")))
		if err != nil {
			t.Fatal(err)
		}
		refusesStrangers(t, addr, hex.EncodeToString(secret.Derive("nats embedded server token", 32)))

		code, _, stderr := output(t, nil, append(vars, "BRIDGE_ROLE=producer", secretB)...)
		if code != 1 || !strings.Contains(stderr, "refused this bridge's token") || !strings.Contains(stderr, "check BRIDGE_SECRET") {
			t.Errorf("a producer with another secret: exit %d; want 1, saying to check BRIDGE_SECRET:\n%s", code, stderr)
		}
	})
}

// TestSecretSettings: a secret shorter than 16 bytes (given or in a file,
// its newline trimmed), both BRIDGE_SECRET and BRIDGE_SECRET_FILE, a
// previous secret alone, and the retired BRIDGE_TCP_SECRET each exit 2
// naming the variable, and no message shows a secret.
func TestSecretSettings(t *testing.T) {
	dir := t.TempDir()
	short, long := filepath.Join(dir, "short"), filepath.Join(dir, "long")
	os.WriteFile(short, []byte("fifteen bytes!!\n"), 0o600)
	os.WriteFile(long, []byte("a secret long enough for the bridge\n"), 0o600)
	for _, c := range []struct {
		name string
		vars []string
		want []string
	}{
		{"15 bytes", []string{"BRIDGE_SECRET=fifteen bytes!!"}, []string{"BRIDGE_SECRET:", "at least 16 bytes; it has 15"}},
		{"15 bytes in a file", []string{"BRIDGE_SECRET_FILE=" + short}, []string{"BRIDGE_SECRET_FILE", "at least 16 bytes; it has 15"}},
		{"both", []string{"BRIDGE_SECRET=a secret long enough for the bridge", "BRIDGE_SECRET_FILE=" + long}, []string{"BRIDGE_SECRET_FILE", "not both"}},
		{"no such file", []string{"BRIDGE_SECRET_FILE=" + filepath.Join(dir, "none")}, []string{"BRIDGE_SECRET_FILE", "cannot read"}},
		{"previous alone", []string{"BRIDGE_SECRET_PREVIOUS=a secret long enough for the bridge"}, []string{"BRIDGE_SECRET_PREVIOUS", "only beside BRIDGE_SECRET"}},
		{"previous 15 bytes", []string{"BRIDGE_SECRET_FILE=" + long, "BRIDGE_SECRET_PREVIOUS=fifteen bytes!!"}, []string{"BRIDGE_SECRET_PREVIOUS:", "it has 15"}},
		{"BRIDGE_TCP_SECRET", []string{"BRIDGE_TCP_SECRET=a secret long enough for the bridge"}, []string{"BRIDGE_TCP_SECRET", "set BRIDGE_SECRET"}},
	} {
		for _, cmd := range []string{"run", "check"} {
			code, _, stderr := output(t, []string{cmd}, append(c.vars, "BRIDGE_ROLE=consumer")...)
			if code != 2 {
				t.Errorf("%s (%s): exit %d; want 2\n%s", c.name, cmd, code, stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("%s (%s): the message does not say %q:\n%s", c.name, cmd, w, stderr)
				}
			}
			if strings.Contains(stderr, "fifteen") || strings.Contains(stderr, "long enough") || strings.Contains(stderr, "unknown variable") {
				t.Errorf("%s (%s): the message shows a secret, or calls a variable unknown:\n%s", c.name, cmd, stderr)
			}
		}
	}
	if code, _, stderr := output(t, []string{"check"}, "BRIDGE_ROLE=consumer", "BRIDGE_SECRET_FILE="+long); code != 0 {
		t.Errorf("a secret of 35 bytes in a file: exit %d\n%s", code, stderr)
	}
}

// TestSecureDefaults: `bridge run` refuses a tcp listener on a
// non-loopback address with neither a secret nor client certificates, and
// the HTTP API on one without a token, naming the variables, unless
// BRIDGE_INSECURE=true, which then warns at start.
func TestSecureDefaults(t *testing.T) {
	dir := t.TempDir()
	cert, key, ca := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "ca.pem")
	for _, f := range []string{cert, key, ca} {
		os.WriteFile(f, []byte("checked when the carrier opens, not by check"), 0o600)
	}
	tcpRefused := []string{"BRIDGE_TCP_ADDR", "BRIDGE_SECRET", "BRIDGE_TLS_REQUIRE_CLIENT_CERT", "BRIDGE_INSECURE=true"}
	httpRefused := []string{"BRIDGE_HTTP_ADDR", "BRIDGE_HTTP_TOKEN", "BRIDGE_INSECURE=true"}
	for _, c := range []struct {
		name string
		vars []string
		want []string // nil: accepted
	}{
		{"listener on 0.0.0.0", []string{"BRIDGE_ROLE=consumer", "BRIDGE_TCP_ADDR=0.0.0.0:7070"}, tcpRefused},
		{"listener on every interface", []string{"BRIDGE_ROLE=consumer", "BRIDGE_TCP_ADDR=:7070"}, tcpRefused},
		{"listener on an address", []string{"BRIDGE_ROLE=consumer", "BRIDGE_TCP_ADDR=10.1.2.3:7070"}, tcpRefused},
		{"producer listening", []string{"BRIDGE_ROLE=producer", "BRIDGE_TCP_LISTEN=producer", "BRIDGE_TCP_ADDR=[::]:7070"}, tcpRefused},
		{"listener with a secret", []string{"BRIDGE_ROLE=consumer", "BRIDGE_TCP_ADDR=0.0.0.0:7070", secretA}, nil},
		{"listener with client certificates", []string{"BRIDGE_ROLE=consumer", "BRIDGE_TCP_ADDR=0.0.0.0:7070",
			"BRIDGE_TLS_CERT=" + cert, "BRIDGE_TLS_KEY=" + key, "BRIDGE_TLS_CA=" + ca, "BRIDGE_TLS_REQUIRE_CLIENT_CERT=true"}, nil},
		{"listener, insecure", []string{"BRIDGE_ROLE=consumer", "BRIDGE_TCP_ADDR=0.0.0.0:7070", "BRIDGE_INSECURE=true"}, nil},
		{"listener on loopback", []string{"BRIDGE_ROLE=consumer", "BRIDGE_TCP_ADDR=127.0.0.2:7070"}, nil},
		{"listener on localhost", []string{"BRIDGE_ROLE=consumer", "BRIDGE_TCP_ADDR=localhost:7070"}, nil},
		{"dialer to an address", []string{"BRIDGE_ROLE=producer", "BRIDGE_TCP_ADDR=10.1.2.3:7070"}, nil},
		{"API on every interface", []string{"BRIDGE_ROLE=producer", "BRIDGE_SOURCE=http", "BRIDGE_HTTP_ADDR=:8080"}, httpRefused},
		{"API on 0.0.0.0", []string{"BRIDGE_ROLE=producer", "BRIDGE_SOURCE=http", "BRIDGE_HTTP_ADDR=0.0.0.0:8080"}, httpRefused},
		{"API with a token", []string{"BRIDGE_ROLE=producer", "BRIDGE_SOURCE=http", "BRIDGE_HTTP_ADDR=:8080", "BRIDGE_HTTP_TOKEN=t"}, nil},
		{"API, insecure", []string{"BRIDGE_ROLE=producer", "BRIDGE_SOURCE=http", "BRIDGE_HTTP_ADDR=:8080", "BRIDGE_INSECURE=true"}, nil},
		{"API on ::1", []string{"BRIDGE_ROLE=producer", "BRIDGE_SOURCE=http", "BRIDGE_HTTP_ADDR=[::1]:8080"}, nil},
		{"probes on every interface", []string{"BRIDGE_ROLE=producer", "BRIDGE_SOURCE=stdin", "BRIDGE_HTTP_ADDR=:8080"}, nil},
	} {
		code, stdout, stderr := output(t, []string{"check"}, c.vars...)
		switch {
		case c.want == nil && code != 0:
			t.Errorf("%s: exit %d; want it accepted\n%s", c.name, code, stderr)
		case c.want != nil && code != 2:
			t.Errorf("%s: exit %d; want 2\n%s%s", c.name, code, stdout, stderr)
		}
		for _, w := range c.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%s: the message does not say %q:\n%s", c.name, w, stderr)
			}
		}
	}

	// Insecure, it starts, and says what it exposes.
	httpAddr := adaptertest.FreeAddr(t)
	_, port, _ := strings.Cut(adaptertest.FreeAddr(t), ":")
	p := startProc(t, nil, nil, "BRIDGE_ROLE=consumer", "BRIDGE_TCP_ADDR=0.0.0.0:"+port, "BRIDGE_INSECURE=true", "BRIDGE_HTTP_ADDR="+httpAddr)
	waitStderr(t, p, "BRIDGE_INSECURE=true: the tcp listener is on a non-loopback address")
	waitStatus(t, "http://"+httpAddr+"/healthz", http.StatusOK)
	p.terminate(t, "consumer")
}

// TestTLSSettingsNotIgnored: TLS settings that a carrier would ignore are
// refused: with an amqp:// URL (amqps:// takes them), client certificates
// required of a broker, TLS to the embedded NATS server. The AMQP URL's
// password is not shown.
func TestTLSSettingsNotIgnored(t *testing.T) {
	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, []byte("checked when the carrier opens, not by check"), 0o600)
	amqp := []string{"BRIDGE_ROLE=producer", "BRIDGE_TRANSPORT=amqp"}
	for _, c := range []struct {
		name string
		vars []string
		want []string // nil: accepted
	}{
		{"TLS, amqp://", append(amqp, "BRIDGE_AMQP_URL=amqp://guest:pa55word@rabbit:5672/", "BRIDGE_TLS=true"), []string{"BRIDGE_AMQP_URL", "amqps://", "in clear"}},
		{"a CA, amqp://", append(amqp, "BRIDGE_AMQP_URL=amqp://guest:pa55word@rabbit:5672/", "BRIDGE_TLS_CA="+ca), []string{"BRIDGE_AMQP_URL", "amqps://"}},
		{"TLS, amqps://", append(amqp, "BRIDGE_AMQP_URL=amqps://guest:pa55word@rabbit:5671/", "BRIDGE_TLS=true"), nil},
		{"client certificates, amqp", append(amqp, "BRIDGE_AMQP_URL=amqps://guest:pa55word@rabbit:5671/", "BRIDGE_TLS_CA="+ca, "BRIDGE_TLS_REQUIRE_CLIENT_CERT=true"), []string{"BRIDGE_TLS_REQUIRE_CLIENT_CERT", "only a tcp listener"}},
		{"TLS, embedded NATS", []string{"BRIDGE_ROLE=producer", "BRIDGE_TRANSPORT=nats", "BRIDGE_TLS=true"}, []string{"BRIDGE_NATS_URL", "serves no TLS"}},
		{"TLS, nats://", []string{"BRIDGE_ROLE=producer", "BRIDGE_TRANSPORT=nats", "BRIDGE_NATS_URL=nats://broker:4222", "BRIDGE_TLS=true"}, nil},
		{"a token, embedded NATS", []string{"BRIDGE_ROLE=producer", "BRIDGE_TRANSPORT=nats", "BRIDGE_NATS_TOKEN=t"}, []string{"BRIDGE_NATS_TOKEN", "only with BRIDGE_NATS_URL"}},
	} {
		code, _, stderr := output(t, []string{"check"}, c.vars...)
		switch {
		case c.want == nil && code != 0:
			t.Errorf("%s: exit %d; want it accepted\n%s", c.name, code, stderr)
		case c.want != nil && code != 2:
			t.Errorf("%s: exit %d; want 2\n%s", c.name, code, stderr)
		}
		for _, w := range c.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%s: the message does not say %q:\n%s", c.name, w, stderr)
			}
		}
		if strings.Contains(stderr, "pa55word") {
			t.Errorf("%s: the message shows the password:\n%s", c.name, stderr)
		}
	}
}

// TestBenchSealed: with BRIDGE_BENCH_SEALED the bench runs a sealed mode
// beside raw and reliable on the same carrier, every message in, and says
// what share of the unsealed rate it kept.
func TestBenchSealed(t *testing.T) {
	code, stdout, stderr := output(t, []string{"bench"}, "BRIDGE_BENCH_TRANSPORTS=tcp", "BRIDGE_BENCH_COUNT=2000",
		"BRIDGE_BENCH_ROUNDS=1", "BRIDGE_BENCH_SEALED=true", "BRIDGE_BENCH_FORMAT=json")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	var rows []struct {
		Mode        string   `json:"mode"`
		Client      string   `json:"client"`
		Messages    int      `json:"messages"`
		MsgsPerSec  float64  `json:"msgs_per_sec"`
		SealedRatio *float64 `json:"sealed_ratio"`
	}
	if err := json.Unmarshal([]byte(stdout), &rows); err != nil {
		t.Fatal(err)
	}
	var modes []string
	for _, r := range rows {
		modes = append(modes, r.Mode)
		if r.Messages != 2000 {
			t.Errorf("%s: %d messages in; want 2000", r.Mode, r.Messages)
		}
		if (r.Mode == "sealed") != (r.SealedRatio != nil) {
			t.Errorf("%s: sealed ratio %v", r.Mode, r.SealedRatio)
		}
	}
	if strings.Join(modes, ",") != "raw,reliable,sealed" {
		t.Fatalf("modes %v; want raw, reliable and sealed", modes)
	}
	if want := rows[2].MsgsPerSec / rows[1].MsgsPerSec; *rows[2].SealedRatio-want > 0.001 || want-*rows[2].SealedRatio > 0.001 {
		t.Errorf("sealed ratio %v; want sealed/reliable = %.3f", *rows[2].SealedRatio, want)
	}
	if !strings.Contains(rows[2].Client, "sealed frames") || strings.Contains(rows[1].Client, "sealed") {
		t.Errorf("the clients are %q and %q; want only the second sealed", rows[1].Client, rows[2].Client)
	}
}
