package delivery

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"unicode/utf8"
)

// TestCheckHeaderByWords: the word-at-a-time check refuses exactly what a
// byte-at-a-time reading of the rules refuses, and the word-at-a-time
// lowering of a name lowers what bytes.ToLower does, names and values of
// every length around the word size.
func TestCheckHeaderByWords(t *testing.T) {
	nameOK := func(b []byte) bool {
		if len(b) == 0 || len(b) > MaxHeaderName {
			return false
		}
		for _, c := range b {
			if c <= ' ' || c >= 0x7f || c == ':' {
				return false
			}
		}
		return true
	}
	valueOK := func(b []byte) bool {
		for _, c := range b {
			if c < ' ' && c != '\t' || c == 0x7f {
				return false
			}
		}
		return utf8.Valid(b)
	}
	r := rand.New(rand.NewPCG(1, 2))
	// Mostly plain bytes, with now and then one of those at the edges.
	edges := []byte{0, '\t', 0x1f, ' ', '!', ':', '~', 0x7f, 0x80, 0xc3, 0xa9, 0xff}
	gen := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			if r.IntN(12) == 0 {
				b[i] = edges[r.IntN(len(edges))]
			} else {
				b[i] = byte('!' + r.IntN(94))
			}
		}
		return b
	}
	for range 200000 {
		name, value := gen(r.IntN(20)), gen(r.IntN(40))
		want := nameOK(name) && valueOK(value)
		if got := checkHeader(string(name), string(value)) == nil; got != want {
			t.Fatalf("name %q value %q: accepted %v, want %v", name, value, got, want)
		}
		if nameOK(name) {
			prefix := []byte("x")
			if lower := appendLower(prefix, string(name)); !bytes.Equal(lower[1:], bytes.ToLower(name)) || lower[0] != 'x' {
				t.Fatalf("name %q lowered to %q", name, lower[1:])
			}
		}
	}
}

func BenchmarkHeaders(b *testing.B) {
	h := Headers{{"Bridge-Meta-H0", "vvvvvvvvvvvvvvvvvv"}, {"bridge-meta-h1", "vvvvvvvvvvvvvvvvvv"}, {"bridge-meta-h2", "vvvvvvvvvvvvvvvvvv"}}
	enc, _ := encodeHeaders(h)
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			encodeHeaders(h)
		}
	})
	b.Run("check-given", func(b *testing.B) {
		for b.Loop() {
			checkHeaders(h)
		}
	})
	b.Run("append", func(b *testing.B) {
		buf := make([]byte, 0, 256)
		for b.Loop() {
			appendHeaders(buf, h)
		}
	})
	b.Run("check", func(b *testing.B) {
		for b.Loop() {
			walkHeaders(enc)
		}
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		var arena []Header
		for b.Loop() {
			decodeHeaders(enc, &arena)
		}
	})
}

// TestDecodedHeadersOwnTheirSlice: headers decoded into one arena, as a
// consumer decodes many messages', are each their own: appending to one
// message's does not reach the next one's.
func TestDecodedHeadersOwnTheirSlice(t *testing.T) {
	var arena []Header
	first := decodeHeaders(mustEncode(Headers{{"a", "1"}}), &arena)
	second := decodeHeaders(mustEncode(Headers{{"b", "2"}, {"c", "3"}}), &arena)
	if &first[0] != &arena[0] || &second[0] != &arena[1] {
		t.Fatalf("the two were not decoded into one arena")
	}
	_ = append(first, Header{"x", "y"})
	if second[0] != (Header{"b", "2"}) || second[1] != (Header{"c", "3"}) || len(arena) != 3 {
		t.Fatalf("appending to the first message's headers changed the second's: %v", second)
	}
}
