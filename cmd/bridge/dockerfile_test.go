package main_test

// The Dockerfile checked without Docker.

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"fmt"
	"go/version"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// dockerInstruction is one instruction of a Dockerfile.
type dockerInstruction struct {
	cmd, args string // cmd upper-cased
	line      int
}

// dockerfile is the parts of the Dockerfile the tests read.
type dockerfile struct {
	instructions []dockerInstruction
	buildLine    int               // the line after the "# go-build:" marker
	globalArgs   map[string]string // ARG NAME=default before the first FROM
}

const dockerBuildMarker = "# go-build:"

// readDockerfile parses the repository's Dockerfile: instructions (lines
// continued with a backslash joined) and where the marked build line is.
func readDockerfile(t *testing.T, root string) dockerfile {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var df dockerfile
	lines := strings.Split(string(data), "\n")
	for i := 0; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		if line == dockerBuildMarker {
			df.buildLine = i + 2 // 1-based, the next line
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		start := i + 1
		for strings.HasSuffix(line, "\\") && i+1 < len(lines) {
			i++
			line = strings.TrimSuffix(line, "\\") + " " + strings.TrimSpace(lines[i])
		}
		cmd, args, _ := strings.Cut(line, " ")
		df.instructions = append(df.instructions, dockerInstruction{strings.ToUpper(cmd), strings.TrimSpace(args), start})
	}
	if df.buildLine == 0 {
		t.Fatalf("the Dockerfile has no %q line marking its go build", dockerBuildMarker)
	}
	// The ARGs before the first FROM are those a FROM may name: their
	// defaults are what a build without --build-arg uses.
	df.globalArgs = map[string]string{}
	for _, in := range df.instructions {
		if in.cmd == "FROM" {
			break
		}
		if in.cmd == "ARG" {
			name, value, _ := strings.Cut(in.args, "=")
			df.globalArgs[name] = value
		}
	}
	return df
}

// stages splits the instructions at each FROM.
func (df dockerfile) stages() [][]dockerInstruction {
	var stages [][]dockerInstruction
	for _, in := range df.instructions {
		if in.cmd == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) > 0 {
			stages[len(stages)-1] = append(stages[len(stages)-1], in)
		}
	}
	return stages
}

// fromImage is the image a FROM names, without --platform, with the
// global ARGs' defaults in place of ${NAME} or $NAME.
func (df dockerfile) fromImage(args string) string {
	fields := strings.Fields(args)
	for len(fields) > 0 && strings.HasPrefix(fields[0], "--") {
		fields = fields[1:]
	}
	if len(fields) == 0 {
		return ""
	}
	return os.Expand(fields[0], func(name string) string { return df.globalArgs[name] })
}

// dockerfileExposed lists the ports the Dockerfile EXPOSEs.
func dockerfileExposed(t *testing.T, root string) []string {
	t.Helper()
	var ports []string
	for _, in := range readDockerfile(t, root).instructions {
		if in.cmd == "EXPOSE" {
			for _, p := range strings.Fields(in.args) {
				ports = append(ports, strings.TrimSuffix(p, "/tcp"))
			}
		}
	}
	return ports
}

// dockerShellWords splits a shell command line into words, with single and double
// quotes and $VAR or ${VAR} expanded from vars (an unknown one is an
// error: the test could not reproduce the build).
func dockerShellWords(line string, vars map[string]string) ([]string, error) {
	var words []string
	var word strings.Builder
	inWord := false
	var quote byte
	for i := 0; i < len(line); i++ {
		ch := line[i]
		switch {
		case quote == '\'':
			if ch == '\'' {
				quote = 0
			} else {
				word.WriteByte(ch)
			}
		case ch == '$' && quote != '\'':
			name, n := "", 0
			if i+1 < len(line) && line[i+1] == '{' {
				end := strings.IndexByte(line[i:], '}')
				if end < 0 {
					return nil, fmt.Errorf("unclosed ${ in %q", line)
				}
				name, n = line[i+2:i+end], end
			} else {
				j := i + 1
				for j < len(line) && (line[j] == '_' || line[j] >= 'A' && line[j] <= 'Z' || line[j] >= 'a' && line[j] <= 'z' || line[j] >= '0' && line[j] <= '9') {
					j++
				}
				name, n = line[i+1:j], j-i-1
			}
			v, ok := vars[name]
			if !ok {
				return nil, fmt.Errorf("$%s in %q: the test does not know its value", name, line)
			}
			word.WriteString(v)
			inWord = true
			i += n
		case quote == '"':
			if ch == '"' {
				quote = 0
			} else if ch == '\\' && i+1 < len(line) && strings.IndexByte(`"\$`, line[i+1]) >= 0 {
				i++
				word.WriteByte(line[i])
			} else {
				word.WriteByte(ch)
			}
		case ch == '\'' || ch == '"':
			quote, inWord = ch, true
		case ch == ' ' || ch == '\t':
			if inWord {
				words = append(words, word.String())
				word.Reset()
				inWord = false
			}
		case strings.IndexByte(";&|<>`()", ch) >= 0:
			return nil, fmt.Errorf("%q: only one simple command is supported on the build line", line)
		default:
			word.WriteByte(ch)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unclosed quote in %q", line)
	}
	if inWord {
		words = append(words, word.String())
	}
	return words, nil
}

// dockerBuild is the Dockerfile's go build, as it would run outside Docker.
type dockerBuild struct {
	goVersion string   // of the builder image: "1.26" or "1.26.3"
	env       []string // the builder stage's ENV and the line's assignments
	args      []string // go build ...
	output    int      // index in args of -o's value
}

// parseDockerBuild finds the builder stage (FROM golang:...) and its marked
// go build line, with $TARGETOS and $TARGETARCH taken as this machine's.
func parseDockerBuild(t *testing.T, df dockerfile) dockerBuild {
	t.Helper()
	goImage := regexp.MustCompile(`^golang:(\d+\.\d+(?:\.\d+)?)(?:[-@]|$)`)
	for _, stage := range df.stages() {
		m := goImage.FindStringSubmatch(df.fromImage(stage[0].args))
		if m == nil {
			continue
		}
		b := dockerBuild{goVersion: m[1], output: -1}
		vars := map[string]string{
			"TARGETOS": runtime.GOOS, "TARGETARCH": runtime.GOARCH,
			"BUILDOS": runtime.GOOS, "BUILDARCH": runtime.GOARCH,
		}
		var run *dockerInstruction
		for i, in := range stage {
			switch {
			case in.cmd == "ENV":
				words, err := dockerShellWords(in.args, vars)
				if err != nil {
					t.Fatalf("Dockerfile:%d: %v", in.line, err)
				}
				for _, w := range words {
					k, v, ok := strings.Cut(w, "=")
					if !ok {
						t.Fatalf("Dockerfile:%d: ENV %s: write ENV NAME=value", in.line, w)
					}
					vars[k] = v
					b.env = append(b.env, w)
				}
			case in.line == df.buildLine:
				run = &stage[i]
			}
		}
		if run == nil || run.cmd != "RUN" {
			t.Fatalf("Dockerfile:%d: the line after %q is not a one-line RUN in the golang stage", df.buildLine, dockerBuildMarker)
		}
		words, err := dockerShellWords(run.args, vars)
		if err != nil {
			t.Fatalf("Dockerfile:%d: %v", run.line, err)
		}
		for len(words) > 0 && strings.HasPrefix(words[0], "--") { // RUN's own options: --mount=...
			words = words[1:]
		}
		for len(words) > 0 && strings.Contains(words[0], "=") && !strings.HasPrefix(words[0], "-") {
			b.env = append(b.env, words[0])
			words = words[1:]
		}
		if len(words) < 2 || words[0] != "go" || words[1] != "build" {
			t.Fatalf("Dockerfile:%d: the marked line runs %q; want go build", run.line, strings.Join(words, " "))
		}
		b.args = words
		for i, w := range words {
			if w == "-o" && i+1 < len(words) {
				b.output = i + 1
			}
		}
		return b
	}
	t.Fatal("the Dockerfile has no stage FROM golang:<version>")
	return dockerBuild{}
}

// TestDockerfile checks the image the Dockerfile describes without Docker:
// its builder's Go is recent enough for go.mod, its final stage is small
// and runs as a non-root user with no shell, and its go build line, run
// here with the same variables and flags, builds a static binary that runs
// and knows the same configuration as `go build ./cmd/bridge`.
func TestDockerfile(t *testing.T) {
	t.Parallel()
	root := composeRoot(t)
	df := readDockerfile(t, root)
	b := parseDockerBuild(t, df)

	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go\s+(\S+)\s*$`).FindSubmatch(mod)
	if m == nil {
		t.Fatal("go.mod has no go line")
	}
	modGo := "go" + string(m[1])
	builderGo := "go" + b.goVersion
	// golang:1.26 is the newest 1.26.x: compare it with go.mod's language
	// version; golang:1.26.3 with the whole version.
	want := modGo
	if strings.Count(b.goVersion, ".") == 1 {
		want = version.Lang(modGo)
	}
	if version.Compare(builderGo, want) < 0 {
		t.Errorf("the builder image has Go %s, older than go.mod's go %s", b.goVersion, m[1])
	}

	stages := df.stages()
	final := stages[len(stages)-1]
	base := df.fromImage(final[0].args)
	if base != "scratch" && !strings.HasPrefix(base, "gcr.io/distroless/static") {
		t.Errorf("the final image is FROM %s; want scratch or gcr.io/distroless/static (no shell, small)", base)
	}
	user := ""
	var entrypoint []string
	for _, in := range final {
		switch in.cmd {
		case "USER":
			user = in.args
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(in.args), &entrypoint); err != nil {
				t.Errorf("Dockerfile:%d: ENTRYPOINT %s is not in exec form: %v", in.line, in.args, err)
			}
		case "RUN":
			t.Errorf("Dockerfile:%d: the final stage runs %q: it has no shell", in.line, in.args)
		}
	}
	uid, _, _ := strings.Cut(user, ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		t.Errorf("the final stage's USER is %q; want a numeric non-root uid (Kubernetes' runAsNonRoot can check only a number)", user)
	}
	if !reflect.DeepEqual(entrypoint, []string{"/bridge"}) {
		t.Errorf("ENTRYPOINT %q; want [\"/bridge\"]", entrypoint)
	}
	if !slices.Contains(b.env, "CGO_ENABLED=0") {
		t.Errorf("the build sets %v; want CGO_ENABLED=0 (a static binary)", b.env)
	}
	for _, flag := range []string{"-trimpath", "./cmd/bridge"} {
		if !slices.Contains(b.args, flag) {
			t.Errorf("the build %q has no %s", b.args, flag)
		}
	}
	if b.output < 0 {
		t.Fatalf("the build %q has no -o: the test cannot tell where the binary goes", b.args)
	}

	// The same build here, into a temporary directory.
	out := filepath.Join(t.TempDir(), "bridge")
	args := slices.Clone(b.args)
	args[b.output] = out
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = root
	cmd.Env = append(composeBuildEnv(), b.env...)
	start := time.Now()
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v %s: %v\n%s", b.env, strings.Join(args, " "), err, msg)
	}
	t.Logf("built as the Dockerfile does in %v: %v %s", time.Since(start).Round(time.Millisecond), b.env, strings.Join(args, " "))

	f, err := elf.Open(out)
	if err != nil {
		t.Fatalf("the binary is not ELF: %v", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("the binary has a PT_INTERP program header: it is dynamically linked, and would not run on %s", base)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary needs shared libraries %v", libs)
	}

	gotEnv, err := exec.Command(out, "env").Output()
	if err != nil {
		t.Fatalf("%s env: %v", out, err)
	}
	wantEnv, err := exec.Command(bin, "env").Output()
	if err != nil {
		t.Fatalf("%s env: %v", bin, err)
	}
	if !bytes.Equal(gotEnv, wantEnv) {
		t.Errorf("the Dockerfile's binary lists other variables than go build ./cmd/bridge:\n%s\nwant\n%s", gotEnv, wantEnv)
	}
}

// composeBuildEnv is this process's environment without what would make a
// build here differ from the Dockerfile's: the Dockerfile sets its own.
func composeBuildEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "CGO_ENABLED", "GOOS", "GOARCH", "GOFLAGS", "GOTOOLCHAIN", "GOEXPERIMENT", "GOAMD64", "GOARM", "GOARM64", "GO386":
			continue
		}
		env = append(env, kv)
	}
	return env
}
